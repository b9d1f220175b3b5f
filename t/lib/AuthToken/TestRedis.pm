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
use MIME::Base64 qw(encode_base64url);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);

use AuthToken::Cleanup;
use AuthToken::Process;

use Exporter 'import';
our @EXPORT = qw(redis_start redis_stop redis_cmd redis_pause redis_resume
                 redis_kill redis_restart redis_port seed_token seed_user
                 token_digest token_key free_port redis_pipeline redis_socket
                 redis_server_start redis_receive_queue);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my ($pid, $port, $dir);
my $owner = $$;   # only the process that started redis stops it

sub redis_port { $port }
# The same server on a unix socket (also in $ENV{TEST_NGINX_REDIS_SOCKET}),
# or '' when the path would be too long for one (sun_path: 108 bytes).
sub redis_socket { length("$dir/redis.sock") < 100 ? "$dir/redis.sock" : '' }

# A redis-server from redis/redis-test.conf (or $conf) on $port, with its
# data and redis.log in $dir and @opts added: its pid, once it listens.
# Also what AuthToken::Topology starts its replicas with.
sub redis_server_start {
    my ($port, $dir, %opt) = @_;
    my $log = "$dir/redis.log";
    my $pid = spawn($log, $ENV{TEST_REDIS_SERVER} || 'redis-server',
                    $opt{conf} || "$repo/redis/redis-test.conf",
                    '--port', $port, '--dir', $dir,
                    @{ $opt{options} || [] });
    wait_port($port, what => $opt{what} || 'redis-server', log => $log,
              pid => $pid);
    return $pid;
}

sub _spawn {
    $pid = redis_server_start($port, $dir, options => [
        (redis_socket() ? ('--unixsocket', redis_socket(), '--unixsocketperm', 700) : ()),
        '--pidfile', "$dir/redis.pid"]);
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
    if ($pid) {    # else killed by the test (redis_kill): only clean up
        stop_pid($pid, cont => 1);
        undef $pid;
    }
    remove_tree($dir) if $dir && !$ENV{TEST_NGINX_NO_CLEAN};
}

# Fault injection: SIGSTOP keeps the socket open but answers nothing.
sub redis_pause  { kill 'STOP', $pid }
sub redis_resume { kill 'CONT', $pid }

sub redis_kill {
    return unless $pid;
    stop_pid($pid, signal => 'KILL');
    undef $pid;
}

# Bytes waiting unread in the receive queues of the test Redis's TCP
# connections (/proc/net/tcp and tcp6, the rx_queue column): with Redis
# stopped (redis_pause), a command sent to it shows up here.
sub redis_receive_queue {
    my $total = 0;
    my $hex_port = sprintf '%04X', $port;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $file or next;
        while (<$fh>) {
            my @f = split ' ';
            next unless @f > 4 && $f[1] =~ /:\Q$hex_port\E$/ && $f[3] eq '01';
            my (undef, $rx) = split /:/, $f[4];
            $total += hex $rx;
        }
        close $fh;
    }
    return $total;
}

# Starts again on the same port (same dir, so an AOF/RDB would be reloaded).
sub redis_restart {
    redis_kill();
    _spawn();
}

# Runs one command on a fresh connection, binary-safe. Dies on an error reply.
sub redis_cmd { redis_at($port, @_) }

# Runs many commands on one connection (each an array ref), pipelined;
# returns the replies in order. Dies on the first error reply.
sub redis_pipeline { redis_calls(redis_client($port), @_) }

sub token_digest { sha256_hex($_[0]) }

# The name of a token record (redis/SCHEMA.md, schema version 3):
# authtoken:token:<base64url of the SHA-256 of the key, no padding>. Takes
# the token key, or its digest (64 lowercase hex digits: no DRF key looks
# like that); token_key($x, 'hex') is the name of schema versions 1 and 2.
sub token_key {
    my ($key, $spelling) = @_;
    my $digest = $key =~ /\A[0-9a-f]{64}\z/ ? $key : token_digest($key);
    return "authtoken:token:$digest" if ($spelling // '') eq 'hex';
    return 'authtoken:token:' . encode_base64url(pack 'H*', $digest);
}

# Writes a token record as the issuer would (redis/SCHEMA.md): keyed by the
# SHA-256 of the key, never the key itself, in an unmarked database marked
# schema version 3 (whose name it uses).
sub seed_token {
    my ($key, %f) = @_;
    my @fields = (uid => $f{uid} // 1, user => $f{user} // 'alice',
                  active => $f{active} // 1, created => '2026-11-27T00:00:00Z');
    push @fields, expires => $f{expires} if defined $f{expires};
    redis_cmd('SET', 'authtoken:schema', '3', 'NX');
    redis_cmd('HSET', token_key($key), @fields);
}

# A user with a token, for tests of the module alone.
sub seed_user {
    my (%f) = @_;
    seed_token($f{token}, uid => $f{uid}, user => $f{user},
               active => $f{active});
}

END { local $?; redis_stop() if $$ == $owner }

1;
