# One worker, one Redis connection, a thousand lookups in flight at once:
# every reply must reach the request that asked for it.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;

my $n = 1000;

redis_start();

# Token i belongs to user u<i>; every tenth is unknown, every tenth + 1 is
# an inactive user's.
my (@tokens, @expect, @seed);
for my $i (0 .. $n - 1) {
    my $token = sprintf '%040x', 0xabc000 + $i;
    push @tokens, $token;
    if ($i % 10 == 0) {
        push @expect, [401, '{"detail":"Invalid token."}'];
        next;
    }
    my $active = $i % 10 == 1 ? 0 : 1;
    push @seed, ['HSET', token_key($token),
                 uid => 1000 + $i, user => "u$i", active => $active];
    push @expect, $active ? [200, "u$i/" . (1000 + $i)]
                          : [401, '{"detail":"User inactive or deleted."}'];
}
redis_pipeline(@seed);

nginx_start(<<'HTTP', worker_connections => 4096,
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT backlog=4096;
        location /api/ {
            auth_token on;
            auth_token_timeout 20s;
            proxy_set_header X-User $auth_token_user;
            proxy_set_header X-Uid $auth_token_user_id;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
        }
        location /echo {
            return 200 "$http_x_user/$http_x_uid";
        }
    }
HTTP
            main_config => 'worker_rlimit_nofile 8192;');

# The worker's Redis connection up before Redis stops: a connect made
# while Redis is stopped completes in the kernel but not its handshake,
# and the timed-out retries would be counted here as more connections.
{
    my $res = http_read(http_send('/api/x', Authorization => "Token $tokens[2]"), 20);
    is($res && $res->{status}, 200, 'a first lookup: the connection is up');
}

redis_pause();
my @socks = map { http_send('/api/x', Authorization => "Token $tokens[$_]") }
            0 .. $n - 1;
sleep 1;    # all requests read by nginx, all lookups queued on one socket

my $clients = redis_connections();
redis_resume();

my ($ok, @wrong) = (0);
for my $i (0 .. $n - 1) {
    my $res = http_read($socks[$i], 20);
    my ($status, $body) = @{$expect[$i]};
    if ($res && $res->{status} == $status && $res->{body} eq $body) {
        $ok++;
    } else {
        push @wrong, sprintf '#%d: got %s %s, expected %d %s', $i,
            $res ? ($res->{status}, $res->{body}) : ('timeout', ''),
            $status, $body;
    }
}
is($ok, $n, "all $n concurrent lookups answered with their own verdict")
    or diag(join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]);

is($clients, 1, 'over a single Redis connection from the worker');

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal \d+/,
       'no alert in the error log');

# Counts established TCP connections to the Redis port. Redis is paused,
# so it cannot be asked (CLIENT LIST); the kernel can.
sub redis_connections {
    my $port = redis_port();
    my $hex = sprintf '%04X', $port;
    my $count = 0;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $file or next;
        while (<$fh>) {
            my @f = split;
            next unless @f > 3 && $f[3] eq '01';    # ESTABLISHED
            $count++ if $f[2] =~ /:$hex$/;          # remote side is redis
        }
    }
    return $count;
}

nginx_stop();
done_testing();
