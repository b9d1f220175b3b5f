# auth_token_redis password= and db=: AUTH and SELECT are sent on connect,
# ahead of any lookup; a wrong password fails closed and says so.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use AuthToken::TestRedis;
use AuthToken::Server;

my $token = '77ef650bd8240910af65f4d890b1036f507031c6';

redis_start();
redis_pipeline(['SELECT', 3],
               ['HSET', token_key($token),
                uid => 2, user => 'carol', active => 1],
               ['CONFIG', 'SET', 'requirepass', 's3cret']);

my $http = <<'HTTP';
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT PASSWORD db=3;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            alias html/;
        }
    }
HTTP

(my $right = $http) =~ s/PASSWORD/password=s3cret/;
nginx_start($right);
nginx_html('x');

my $res = http_request('/api/x', Authorization => "Token $token");
is($res->{status}, 200, 'the right password and db: the token is found');
is($res->{headers}{'x-user'}, 'carol', 'in database 3');

(my $wrong = $http) =~ s/PASSWORD/password=wrong/;
nginx_reload($wrong);
$res = http_request('/api/x', Authorization => "Token $token");
is($res->{status}, 503, 'a wrong password fails closed: 503');
is($res->{body}, '{"detail":"Service temporarily unavailable, try again later."}',
   'with DRF\'s ServiceUnavailable body');
is($res->{headers}{'x-user'}, undef, 'and no identity');
like(nginx_error_log(), qr/\[error\].*auth token redis 127\.0\.0\.1:\d+: AUTH failed:/,
     'the AUTH failure is logged');
like(nginx_error_log(), qr/auth token lookup failed: redis 127\.0\.0\.1:\d+: (?:NOAUTH|AUTH failed)/,
     'and the lookup behind it fails with Redis\'s own reason');
unlike(nginx_error_log(), qr/s3cret/, 'the password is never logged');

# A refused setup is no reason to reset the reconnect backoff: a TCP connect
# alone proves nothing. Each of the worker's two links (lookups, revocation
# subscription) may reach the 500 ms cap in about 1 s, so 3 s allow about
# 2 x (5 + 4) attempts; resetting on connect made about 2 x 60.
subtest 'a wrong password: reconnects back off, and the log is not flooded' => sub {
    sub connections_received {
        my (undef, $info) = redis_pipeline(['AUTH', 's3cret'], ['INFO', 'stats']);
        my ($n) = $info =~ /total_connections_received:(\d+)/;
        return $n;
    }
    sleep 0.5;
    my $log_before = length nginx_error_log();
    my $before = connections_received();
    sleep 3;
    my $made = connections_received() - $before - 1;   # minus our own
    my @lines = grep { /\[error\].*auth token redis/ }
                split /\n/, substr(nginx_error_log(), $log_before);
    diag("connections in 3 s: $made; error lines: " . scalar @lines);
    cmp_ok($made, '<=', 24, 'at most 24 connections in 3 s');
    cmp_ok($made, '>=', 2, 'but it does keep trying');
    cmp_ok(scalar @lines, '<=', 6, 'at most 6 error lines in those 3 s');
};

# Fixing the password on the Redis side heals the module without a reload:
# the failed connection is dropped and set up again.
redis_pipeline(['AUTH', 's3cret'], ['CONFIG', 'SET', 'requirepass', 'wrong']);
my $healed;
for (1 .. 50) {
    $res = http_request('/api/x', Authorization => "Token $token");
    last if $healed = $res->{status} == 200;
    sleep 0.05;
}
ok($healed, 'once Redis accepts the password, lookups work again by themselves');

nginx_stop();
redis_pipeline(['AUTH', 'wrong'], ['CONFIG', 'SET', 'requirepass', '']);
done_testing();
