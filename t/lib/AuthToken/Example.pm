package AuthToken::Example;

# For the tests that run what the documentation and the example configs
# show, as written: blocks read out of docs/*.md (each one marked
# "<!-- t/NNN-name.t: NAME -->" on the line before its fenced block), a
# throwaway TLS certificate, whole nginx.conf files (the examples are
# complete configurations, not http{} bodies) started on free ports, and
# curl as the client.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);

use AuthToken::Process;

use Exporter 'import';
our @EXPORT = qw(repo_file doc_blocks test_certificate conf_nginx_start
                 conf_nginx_stop conf_nginx_test conf_nginx_root curl slurp);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my ($root, $started);

sub repo_file {
    my ($path) = @_;
    open my $fh, '<', "$repo/$path" or die "$repo/$path: $!";
    local $/;
    return <$fh>;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh> // '';
}

# The blocks of $doc marked for $test: { NAME => text of the fenced block }.
# Dies on a marker without a block, so a broken marker cannot pass silently.
sub doc_blocks {
    my ($doc, $test) = @_;
    my $text = repo_file($doc);
    my %blocks;
    while ($text =~ /^<!-- \Q$test\E: ([\w-]+) -->\n(```\w*\n(.*?)^```)?/msg) {
        my ($name, $body) = ($1, $3);
        die "$doc: marker $name has no fenced block right after it\n"
            unless defined $body;
        die "$doc: marker $name appears twice\n" if exists $blocks{$name};
        $blocks{$name} = $body;
    }
    return \%blocks;
}

# A self-signed certificate for api.example.org under $dir: (pem, key).
sub test_certificate {
    my ($dir) = @_;
    make_path($dir);
    my ($pem, $key) = ("$dir/api.example.org.pem", "$dir/api.example.org.key");
    my $out = qx{openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=api.example.org -days 2 -keyout '$key' -out '$pem' 2>&1};
    die "openssl req failed: $out" if $?;
    return ($pem, $key);
}

sub conf_nginx_root { $root }

sub _prepare {
    my ($conf) = @_;
    my $base = $ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot";
    $root = "$base-conf-$$";
    remove_tree($root);
    make_path("$root/conf", "$root/logs", "$root/tmp", "$root/html");
    open my $fh, '>', "$root/conf/nginx.conf" or die $!;
    print $fh $conf;
    close $fh or die $!;
    # As root the workers would run as nobody, who cannot read the tree.
    return $> == 0 ? ('-g', 'user root root;') : ();
}

# `nginx -t` of a whole configuration: (exit code, output).
sub conf_nginx_test {
    my ($conf) = @_;
    my @g = _prepare($conf);
    my $out = qx{@{[nginx_binary()]} -t -p $root/ -c conf/nginx.conf @{[
                   @g ? "-g '$g[1]'" : '']} 2>&1};
    return ($? >> 8, $out);
}

# Starts nginx from a whole configuration and waits for $port to listen.
sub conf_nginx_start {
    my ($conf, $port) = @_;
    conf_nginx_stop();
    my @g = _prepare($conf);
    nginx_prefix_start($root, @g ? $g[1] : ());
    $started = 1;
    wait_port($port, what => 'nginx', log => "$root/logs/error.log",
              timeout => 5);
    return $root;
}

sub conf_nginx_stop {
    return unless $started;
    $started = 0;
    nginx_prefix_stop($root);
}

# curl with the given arguments: { status, version, headers => { lc name
# => [values] }, body } of the last response. -k for the test certificate.
sub curl {
    my (@args) = @_;
    my $hdrs = ($root // "/tmp") . "/curl-headers-$$";
    unlink $hdrs;
    open my $out, '-|', 'curl', '-sS', '-k', '--max-time', '10',
         '-D', $hdrs, '-w', '\n%{http_version} %{response_code}', @args
        or die "curl: $!";
    local $/;
    my $text = <$out> // '';
    close $out;
    my ($body, $version, $status) = $text =~ /\A(.*)\n(\S+) (\d+)\z/s
        or die "unexpected curl output: $text";
    my %headers;
    if (open my $h, '<', $hdrs) {
        my $all = <$h> // '';
        # With -L the file holds every response; keep the last one's.
        my @responses = split /\r\n\r\n/, $all;
        my $last = $responses[-1] // '';
        for my $line (split /\r\n/, $last) {
            push @{ $headers{lc $1} }, $2 if $line =~ /^([^:\s]+):\s*(.*)$/;
        }
    }
    return { status => $status + 0, version => $version,
             headers => \%headers, body => $body };
}

END {
    local $?;    # keep the test's exit status (stopping nginx sets $?)
    if ($$ == $owner) {
        conf_nginx_stop();
        remove_tree($root) if $root && !$ENV{TEST_NGINX_NO_CLEAN};
    }
}

1;
