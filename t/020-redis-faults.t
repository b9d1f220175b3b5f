# Redis failing under the module: nothing blocks the worker, requests fail
# closed with 503 and DRF's ServiceUnavailable body, and service comes back
# by itself when Redis does.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;

my $token = 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7';

redis_start();
seed_token($token, uid => 1, user => 'admin');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            auth_token_timeout 500ms;
            default_type application/json;
            alias html/;
        }
        location /open/ {
            alias html/;
        }
    }
HTTP

nginx_html(hello => "{\"hello\":true}\n");

sub get_api { http_request('/api/hello', Authorization => "Token $token", @_) }

my $r = get_api();
is($r->{status}, 200, 'a valid token passes while Redis is up');

subtest 'a stopped Redis never blocks the worker' => sub {
    redis_pause();
    my $slow = http_send('/api/hello', Authorization => "Token $token");
    sleep 0.05;    # the lookup is now in flight on the only worker
    my $t0 = time;
    my $open = http_request('/open/hello', -timeout => 2);
    my $open_elapsed = time - $t0;
    ok($open && $open->{status} == 200,
       'the same worker answers a location without auth_token');
    cmp_ok($open_elapsed, '<', 0.25,
           'at once, while the protected request still waits');

    my $res = http_read($slow, 3);
    ok($res, 'the protected request is answered');
    is($res->{status}, 503, 'with 503 after the lookup timeout');
    cmp_ok($res->{elapsed} + 0.05, '>=', 0.45, 'not before the timeout');
    is($res->{body},
       '{"detail":"Service temporarily unavailable, try again later."}',
       "DRF's ServiceUnavailable body");
    is($res->{headers}{'retry-after'}, '1', 'with Retry-After');
    is($res->{headers}{'content-type'}, 'application/json', 'as JSON');
    ok(!exists $res->{headers}{'www-authenticate'},
       'no challenge: the credentials were not judged');
    redis_resume();
};

like(nginx_error_log(),
     qr/\[error\].*auth token lookup failed: redis 127\.0\.0\.1:\d+: timed out after 500 ms/,
     'the timeout is logged at error level with the Redis address');

sub wait_for_status {
    my ($want, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        my $res = get_api(-timeout => 2);
        return time - $t0 if $res && $res->{status} == $want;
        sleep 0.02;
    }
    return undef;
}

ok(defined wait_for_status(200, 1), 'after SIGCONT lookups work again');

subtest 'a killed Redis answers 503 at once, and a restarted one 200 again' => sub {
    redis_kill();
    my $res = get_api(-timeout => 2);
    is($res->{status}, 503, 'Redis down: 503');
    cmp_ok($res->{elapsed}, '<', 0.4, 'without waiting for the timeout');
    like(nginx_error_log(), qr/auth token redis 127\.0\.0\.1:\d+: (connection lost|connect failed)/,
         'the lost connection is logged');

    redis_restart();
    seed_token($token, uid => 1, user => 'admin');
    my $took = wait_for_status(200, 1.5);
    ok(defined $took, 'Redis back: 200 again without a reload');
    diag(sprintf 'recovered %.0f ms after Redis came back', 1000 * ($took // 9))
        if $ENV{TEST_VERBOSE};
    cmp_ok($took // 9, '<', 1, 'within a second');
};

subtest 'a restarted, empty Redis refuses the token it no longer has' => sub {
    redis_restart();
    wait_for_status(401, 1.5);
    my $res = get_api();
    is($res->{status}, 401, 'the token is gone: 401, never a stale 200');
    is($res->{body}, '{"detail":"Invalid token."}', 'Invalid token.');
};

subtest 'a client that leaves during a lookup leaves nothing behind' => sub {
    redis_pause();
    my @clients = map { http_send('/api/hello', Authorization => "Token $token") }
                  1 .. 20;
    sleep 0.2;              # every request read, every lookup pending
    close $_ for @clients;  # then they all leave
    sleep 0.2;
    redis_resume();
    sleep 0.7;
    my $res = get_api();
    is($res->{status}, 401, 'the worker still serves (empty Redis: 401)');
    like(nginx_error_log(), qr/client prematurely closed connection/,
         'nginx noticed clients leaving mid-lookup (the abandon path ran)');
    unlike(nginx_error_log(), qr/signal \d+|exited on|\[alert\]|\[crit\]/,
           'no crash, no alert in the error log');
};

unlike(nginx_error_log(), qr/\Q$token\E/, 'the token never appears in the log');

nginx_stop();
done_testing();
