package AuthToken::TestRedis;

# A private redis-server for one .t file: started on a free 127.0.0.1 port
# before the tests, stopped when the file ends. Its port is exported as
# $ENV{TEST_NGINX_REDIS_PORT}, which Test::Nginx::Socket (ours or upstream's)
# substitutes into nginx.conf. Also: seeding token records the way the
# issuer writes them (see redis/SCHEMA.md), and pausing/killing the server
# to test faults.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup;

use Exporter 'import';
our @EXPORT = qw(redis_start redis_stop redis_cmd redis_pause redis_resume
                 redis_kill redis_restart redis_port seed_token seed_user
                 token_digest free_port redis_pipeline redis_socket);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my ($pid, $port, $dir);
my $owner = $$;   # only the process that started redis stops it

sub free_port {
    my $sock = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                     LocalPort => 0, Proto => 'tcp')
        or die "cannot find a free port: $!";
    my $p = $sock->sockport;
    close $sock;
    return $p;
}

sub redis_port { $port }
# The same server on a unix socket (also in $ENV{TEST_NGINX_REDIS_SOCKET}),
# or '' when the path would be too long for one (sun_path: 108 bytes).
sub redis_socket { length("$dir/redis.sock") < 100 ? "$dir/redis.sock" : '' }

sub _spawn {
    my $bin = $ENV{TEST_REDIS_SERVER} || 'redis-server';
    $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/redis.log";
        open STDERR, '>&', \*STDOUT;
        exec $bin, "$repo/redis/redis-test.conf", '--port', $port,
             (redis_socket() ? ('--unixsocket', redis_socket(), '--unixsocketperm', 700) : ()),
             '--dir', $dir, '--pidfile', "$dir/redis.pid";
        die "exec $bin: $!";
    }
    my $deadline = time + 10;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 0.2);
        if ($s) { close $s; return; }
        sleep 0.05;
    }
    die "redis-server did not start on port $port; see $dir/redis.log";
}

sub redis_start {
    return $port if $pid;
    $port = $ENV{TEST_NGINX_REDIS_PORT} = free_port();
    my $base = $ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot";
    $dir = "$base-redis-$$";
    $ENV{TEST_NGINX_REDIS_SOCKET} = redis_socket();
    remove_tree($dir);
    make_path($dir);
    _spawn();
    return $port;
}

sub redis_stop {
    unless ($pid) {    # killed by the test (redis_kill): only clean up
        remove_tree($dir) if $dir && !$ENV{TEST_NGINX_NO_CLEAN};
        return;
    }
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    undef $pid;
    remove_tree($dir) if $dir && !$ENV{TEST_NGINX_NO_CLEAN};
}

# Fault injection: SIGSTOP keeps the socket open but answers nothing.
sub redis_pause  { kill 'STOP', $pid }
sub redis_resume { kill 'CONT', $pid }

sub redis_kill {
    return unless $pid;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    undef $pid;
}

# Starts again on the same port (same dir, so an AOF/RDB would be reloaded).
sub redis_restart {
    redis_kill();
    _spawn();
}

sub _encode {
    my @args = @_;
    my $out = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        $out .= '$' . length($a) . "\r\n$a\r\n";
    }
    return $out;
}

sub _read_reply {
    my ($s) = @_;
    my $line = <$s>;
    die "redis: connection closed" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $type eq '+';
    die "redis error: $rest\n" if $type eq '-';
    return $rest + 0 if $type eq ':';
    if ($type eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length($buf));
            die "redis: short read" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($type eq '*') {
        return undef if $rest < 0;
        return [map { _read_reply($s) } 1 .. $rest];
    }
    die "redis: unexpected reply '$line'";
}

# Runs one command on a fresh connection, binary-safe. Dies on an error reply.
sub redis_cmd {
    my @args = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or die "cannot connect to redis on $port: $!";
    binmode $s;
    print $s _encode(@args);
    my $reply = _read_reply($s);
    close $s;
    return $reply;
}

# Runs many commands on one connection (each an array ref), pipelined;
# returns the replies in order.
sub redis_pipeline {
    my @cmds = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
        or die "cannot connect to redis on $port: $!";
    binmode $s;
    print $s join '', map { _encode(@$_) } @cmds;
    my @replies = map { _read_reply($s) } @cmds;
    close $s;
    return @replies;
}

sub token_digest { sha256_hex($_[0]) }

# Writes a token record as the issuer would (redis/SCHEMA.md): keyed by the
# SHA-256 of the key, never the key itself.
sub seed_token {
    my ($key, %f) = @_;
    my @fields = (uid => $f{uid} // 1, user => $f{user} // 'alice',
                  active => $f{active} // 1, created => '2026-11-27T00:00:00Z');
    push @fields, expires => $f{expires} if defined $f{expires};
    redis_cmd('HSET', "authtoken:token:" . token_digest($key), @fields);
}

# A user with a token, for tests of the module alone.
sub seed_user {
    my (%f) = @_;
    seed_token($f{token}, uid => $f{uid}, user => $f{user},
               active => $f{active});
}

END { local $?; redis_stop() if $$ == $owner }

1;
