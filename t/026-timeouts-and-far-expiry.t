# One location's short auth_token_timeout gives up on its own lookup; it
# does not reset the worker's shared Redis connection under the lookups of
# locations that are willing to wait longer. And a token whose expiry is
# far off (any 18-digit number is a valid one) is cached for the full
# valid= time: the arithmetic that bounds an entry by its token's expiry
# must not overflow.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;

my $token = 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7';
my $far   = 'fa00000000000000000000000000000000000001';
my $probe = 'fa00000000000000000000000000000000000002';

redis_start();
seed_token($token, uid => 7, user => 'admin');
seed_token($probe, uid => 9, user => 'probe');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /fast/ {
            auth_token on;
            auth_token_timeout 100ms;
            alias html/;
        }
        location /patient/ {
            auth_token on;
            auth_token_timeout 5s;
            alias html/;
        }
        location /cached/ {
            auth_token on;
            auth_token_cache zone=tokens:1m valid=30s;
            add_header X-Cache $auth_token_cache_status always;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "hello\n");

subtest 'a short auth_token_timeout does not reset the connection for all' => sub {
    redis_pause();
    my $patient = http_send('/patient/hello', Authorization => "Token $token");
    sleep 0.05;
    my $fast = http_request('/fast/hello', Authorization => "Token $token",
                            -timeout => 3);
    is($fast->{status}, 503, 'the impatient location gives up: 503');
    sleep 0.4;
    redis_resume();
    my $r = http_read($patient, 5);
    ok($r, 'the patient request is answered');
    is($r->{status}, 200, 'with 200 once Redis answers, not a 503');
    unlike(nginx_error_log(), qr/no reply for \d+ ms, reconnecting/,
           'the connection was not torn down');
};

subtest 'a token expiring in the far future is cached for valid=' => sub {
    for (1 .. 100) {   # wait for the revocation subscription
        my $r = http_request('/cached/hello', Authorization => "Token $probe");
        last if ($r->{headers}{'x-cache'} // '') ne 'BYPASS';
        sleep 0.05;
    }
    # (2^64 / 1000 rounded up) seconds from now: left * 1000 wraps around
    # 2^64 to a few hundred ms.
    seed_token($far, uid => 8, user => 'far', expires => int(time()) + 18446744073709552 + 1);
    my $r = http_request('/cached/hello', Authorization => "Token $far");
    is($r->{status}, 200, 'the far-off token is valid');
    is($r->{headers}{'x-cache'}, 'MISS', 'looked up once');
    sleep 2.5;
    $r = http_request('/cached/hello', Authorization => "Token $far");
    is($r->{headers}{'x-cache'}, 'HIT', 'still a HIT 2.5 s later');
};

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal \d+/,
       'no alert, no crash');

done_testing();
