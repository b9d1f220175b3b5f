package AuthToken::Issuer;

# The issuer for the t/ suite: a real authtokend on a free 127.0.0.1 port,
# talking to the .t file's private redis-server (AuthToken::TestRedis), and
# authtokenctl against the same Redis and secret. The daemon's port is
# exported as $ENV{TEST_NGINX_AUTHTOKEND_PORT} so nginx configs can
# proxy_pass to it. Binaries come from $ENV{AUTHTOKEN_BUILD_DIR} (default:
# build/). New passwords use 1000 PBKDF2 iterations to keep tests fast,
# which needs the named insecure_test_hashing setting.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempfile);
use HTTP::Tiny;
use IPC::Open3 qw(open3);
use Symbol qw(gensym);

use AuthToken::Cleanup;
use AuthToken::Process;
use AuthToken::TestRedis;

use Exporter 'import';
our @EXPORT = qw(issuer_setup authtokend_start authtokend_stop authtokend_port
                 authtokend_log authtokend_pid ctl ctl_ok token_of
                 daemon_request obtain_direct obtain_token);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my ($dir, $daemon_pid, $daemon_port, $daemon_log);

sub build_dir { $ENV{AUTHTOKEN_BUILD_DIR} || "$repo/build" }

# Redis (started if needed), a fresh secret file, and the AUTHTOKEN_*
# environment both binaries read.
sub issuer_setup {
    redis_start();
    my $base = $ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot";
    $dir = "$base-issuer-$$";
    remove_tree($dir);
    make_path($dir);
    $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . redis_port() . '/0';
    $ENV{AUTHTOKEN_SECRET_FILE} = "$dir/secret";
    $ENV{AUTHTOKEN_PBKDF2_ITERATIONS} //= 1000;
    $ENV{AUTHTOKEN_INSECURE_TEST_HASHING} //= 'on';
    my ($code, $out, $err) = ctl('init-secret', "$dir/secret");
    die "init-secret failed: $err" if $code;
    return $dir;
}

sub authtokend_port { $daemon_port }
sub authtokend_pid { $daemon_pid }
sub authtokend_log {
    open my $fh, '<', $daemon_log or return '';
    local $/;
    return <$fh>;
}

# Starts authtokend with extra flags; waits until it accepts connections.
sub authtokend_start {
    my (@flags) = @_;
    issuer_setup() unless $dir;
    authtokend_stop() if $daemon_pid;
    $daemon_port = $ENV{TEST_NGINX_AUTHTOKEND_PORT} = free_port();
    $daemon_log = "$dir/authtokend.log";
    my $bin = build_dir() . '/authtokend';
    $daemon_pid = spawn($daemon_log, $bin, '--listen',
                        "127.0.0.1:$daemon_port", @flags);
    eval {
        wait_port($daemon_port, what => 'authtokend', log => $daemon_log,
                  pid => $daemon_pid);
        1;
    } or do {
        my $error = $@;
        undef $daemon_pid unless kill 0, $daemon_pid;    # reaped: it exited
        die $error;
    };
    return $daemon_port;
}

# SIGTERM, then the exit status (undef if it had to be killed).
sub authtokend_stop {
    return unless $daemon_pid;
    my $status = stop_pid($daemon_pid, timeout => 10);
    undef $daemon_pid;
    return $status;
}

# Runs authtokenctl; returns (exit code, stdout, stderr). A leading hash
# ref gives options: { stdin => "text" }.
sub ctl {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    my @cmd = (build_dir() . '/authtokenctl', @_);
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, @cmd);
    {
        # The CLI may exit (refusing a name, say) before it reads its
        # input: the write must then fail with EPIPE, not kill the test
        # with SIGPIPE before its END blocks stop redis, authtokend, nginx.
        local $SIG{PIPE} = 'IGNORE';
        print $in $opt->{stdin} if defined $opt->{stdin};
        close $in;
    }
    local $/;
    my $stdout = <$out> // '';
    my $stderr = <$err> // '';
    waitpid($pid, 0);
    return ($? >> 8, $stdout, $stderr);
}

# Like ctl, but dies unless it succeeds; returns stdout.
sub ctl_ok {
    my ($code, $out, $err) = ctl(@_);
    die "authtokenctl @_ failed ($code): $err" if $code;
    return $out;
}

# The user's token via `authtokenctl token NAME` (created if needed).
sub token_of {
    my ($name, @flags) = @_;
    my $out = ctl_ok('token', $name, @flags);
    $out =~ /^Generated token ([0-9a-f]{40}) for user \Q$name\E$/m
        or die "unexpected output of token $name: $out";
    return $1;
}

# One request straight to the daemon: (status, headers hash ref, body).
sub daemon_request {
    my ($method, $path, %opt) = @_;
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    my $res = $http->request($method, "http://127.0.0.1:$daemon_port$path",
                             { headers => $opt{headers} || {},
                               (defined $opt{body}
                                    ? (content => $opt{body}) : ()) });
    return ($res->{status}, $res->{headers}, $res->{content});
}

# POST /api-token-auth/ with a form body, straight to the daemon.
sub obtain_direct {
    my ($username, $password, %headers) = @_;
    my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
    my $body = $http->www_form_urlencode({ username => $username,
                                           password => $password });
    return daemon_request('POST', '/api-token-auth/',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     %headers },
        body => $body);
}

# The token a login straight to the daemon answers with; dies unless the
# answer is 200 {"token":"<40 hex>"}.
sub obtain_token {
    my ($username, $password) = @_;
    my ($status, undef, $body) = obtain_direct($username, $password);
    die "obtain: $status $body" unless $status == 200;
    my ($token) = $body =~ /^\{"token":"([0-9a-f]{40})"\}$/
        or die "no token in $body";
    return $token;
}

END {
    if ($$ == $owner) {
        local $?;
        authtokend_stop();
        remove_tree($dir) if $dir && !$ENV{TEST_NGINX_NO_CLEAN};
    }
}

1;
