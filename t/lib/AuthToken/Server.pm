package AuthToken::Server;

# For the tests that need more than one request at a time (faults,
# concurrency): start a private nginx from a given http{} body on a free
# 127.0.0.1 port, talk raw HTTP to it, and stop it at the end. The block
# format tests use Test::Nginx::Socket instead.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup;
use AuthToken::Process;

use Exporter 'import';
our @EXPORT = qw(nginx_start nginx_stop nginx_reload nginx_pid nginx_port
                 nginx_error_log nginx_workers http_request http_send
                 http_read nginx_html);
our @EXPORT_OK = qw(nginx_conf_text);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my ($root, $port, $started, $valgrind_pid);
my $owner = $$;

sub nginx_port { $port }
sub _root { $root }

# Writes html/$name under the server root (what `root`/`alias html/` serve).
sub nginx_html {
    my ($name, $content) = @_;
    open my $fh, '>', "$root/html/$name" or die "$root/html/$name: $!";
    print $fh $content // '';
    close $fh or die "$root/html/$name: $!";
}

# The nginx.conf of a server root: the http{} body $http (any
# $TEST_NGINX_* in it replaced from the environment) in a main context with
# the modules of $TEST_NGINX_LOAD_MODULES, logs and temp paths under
# $opt{root}. %opt: workers (1), log_level (info), worker_connections
# (1024), valgrind (foreground, one process), main_config (more main-context
# lines). Also what AuthToken::Topology's edges run.
sub nginx_conf_text {
    my ($http, %opt) = @_;
    my $root = $opt{root};
    my $modules = join '', map { "load_module $_;\n" }
                            split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    my $workers = $opt{workers} || 1;
    my $process = $opt{valgrind} ? "daemon off;\nmaster_process off;"
                                 : "daemon on;\nmaster_process on;";
    my $conns = $opt{worker_connections} || 1024;
    my $user = $> == 0 ? "user root root;\n" : '';
    my $main = $opt{main_config} || '';
    my $level = $opt{log_level} || 'info';
    $http =~ s/\$TEST_NGINX_(\w+)/$ENV{"TEST_NGINX_$1"}/g;
    return <<"CONF";
$modules$user
worker_processes $workers;
$process
error_log logs/error.log $level;
pid logs/nginx.pid;
$main
events { worker_connections $conns; accept_mutex off; }
http {
    access_log logs/access.log;
    client_body_temp_path $root/tmp/body;
    proxy_temp_path $root/tmp/proxy;
    fastcgi_temp_path $root/tmp/fastcgi;
    uwsgi_temp_path $root/tmp/uwsgi;
    scgi_temp_path $root/tmp/scgi;
    $http
}
CONF
}

sub _write_conf {
    my ($http, %opt) = @_;
    open my $fh, '>', "$root/conf/nginx.conf" or die $!;
    print $fh nginx_conf_text($http, %opt, root => $root);
    close $fh;
}

# nginx_start($http_body, workers => N, log_level => 'info'): the body may
# use $TEST_NGINX_SERVER_PORT (our listen port) and any other $TEST_NGINX_*.
sub nginx_start {
    my ($http, %opt) = @_;
    $opt{log_level} ||= 'info';
    my $base = $ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot";
    $root = "$base-$$";
    remove_tree($root);
    make_path("$root/conf", "$root/logs", "$root/html", "$root/tmp");
    $port = $ENV{TEST_NGINX_SERVER_PORT} = free_port();
    _write_conf($http, %opt);
    if ($opt{valgrind}) {
        # One process in the foreground under memcheck (master_process off).
        $valgrind_pid = spawn("$root/logs/stdout.log",
            'valgrind', '--tool=memcheck', '--leak-check=full',
            '--show-leak-kinds=definite', '--num-callers=40',
            "--log-file=$opt{valgrind}", nginx_binary(),
            '-p', "$root/", '-c', 'conf/nginx.conf');
    } else {
        nginx_prefix_start($root);
    }
    $started = 1;
    wait_port($port, what => 'nginx', log => "$root/logs/error.log",
              timeout => $opt{valgrind} ? 60 : 5);
    return $root;
}

sub nginx_pid { pid_file("$root/logs/nginx.pid") }

# The worker pids, from the process table (children of the master).
sub nginx_workers {
    my $master = nginx_pid() or return;
    my @pids = map { /^\s*(\d+)\s+(\d+)/ && $2 == $master ? $1 : () }
               `ps -eo pid=,ppid=`;
    return @pids;
}

sub nginx_reload {
    my ($http, %opt) = @_;
    $opt{log_level} ||= 'info';
    _write_conf($http, %opt) if defined $http;
    kill 'HUP', nginx_pid();
    sleep 0.5;
}

sub nginx_stop {
    return unless $started;
    if ($valgrind_pid) {
        # A graceful stop, so exit_process runs and leaks are meaningful.
        kill 'QUIT', $valgrind_pid;
        my $status;
        my $deadline = time + 60;
        while (time < $deadline) {
            last if defined($status = wait_exit($valgrind_pid, 0));
            # Under valgrind a signal is seen only when epoll_wait()
            # returns: a connection wakes it.
            IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 0.2);
            sleep 0.2;
        }
        stop_pid($valgrind_pid, signal => 'KILL') unless defined $status;
        undef $valgrind_pid;
        $started = 0;
        return;
    }
    nginx_prefix_stop($root);
    $started = 0;
}

sub nginx_error_log {
    open my $fh, '<', "$root/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

# Sends one request and returns the socket without reading: many can be
# in flight at once. %h: headers; method/path default GET /.
sub http_send {
    my ($path, %h) = @_;
    my $method = delete $h{-method} || 'GET';
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or die "connect: $!";
    binmode $s;
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n";
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    print $s "$req\r\n";
    return $s;
}

# Reads a whole response (Connection: close) within $timeout seconds.
# Returns { status, headers => {lc name => value}, body, elapsed } or
# undef on timeout.
sub http_read {
    my ($s, $timeout) = @_;
    my $start = time;
    my $sel = IO::Select->new($s);
    my $buf = '';
    while (1) {
        my $left = $timeout - (time - $start);
        return undef if $left <= 0;
        return undef unless $sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        last if !$n;
    }
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    return undef unless defined $head && $head =~ m{^HTTP/1\.\d (\d+)};
    my %headers;
    for my $line (split /\r\n/, $head) {
        $headers{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }
    return { status => $1 + 0, headers => \%headers, body => $body // '',
             elapsed => time - $start };
}

sub http_request {
    my ($path, %h) = @_;
    my $timeout = delete $h{-timeout} || 5;
    return http_read(http_send($path, %h), $timeout);
}

END {
    if ($$ == $owner) {
        local $?;
        nginx_stop();
        remove_tree($root) if $root && !$ENV{TEST_NGINX_NO_CLEAN};
    }
}

1;
