# Where the check sits in nginx's access phase: after allow/deny, auth_basic
# and auth_request (as access_by_lua does), so a denied client gets 403
# without a word about its token and without a Redis command, and under
# "satisfy any" an allowed client passes even with Redis down. Also what
# nginx's own access machinery does with our verdicts: auth_delay, satisfy
# any with Redis down, the identity variables only for "ok", and a HEAD 401
# without a body.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use IO::Select;

use AuthToken::Hostile qw(raw_connect);

my $valid    = 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7';
my $inactive = '0b1e6a5bd4bd2c8f3dbea0b6e2e5d8b5c0f3b8a1';
my $unknown  = "4c4e1e0ab8f8bd6a0f0d2b1ed5a4c7e2a0f6a9d3";

redis_start();
seed_token($valid, uid => 7, user => 'admin');
seed_token($inactive, uid => 8, user => 'sleeper', active => 0);

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    log_format ids '$uri status=$status user="$auth_token_user" '
                   'uid="$auth_token_user_id" token=$auth_token_status';
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        access_log logs/ids.log ids;
        auth_token_timeout 300ms;
        add_header X-Auth-User $auth_token_user always;
        add_header X-Auth-User-Id $auth_token_user_id always;

        location /denied/ {
            deny all;
            auth_token on;
            alias html/;
        }
        location /any-allowed/ {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            auth_token on;
            alias html/;
        }
        location /any-denied/ {
            satisfy any;
            deny all;
            auth_token on;
            alias html/;
        }
        location /delayed/ {
            auth_delay 600ms;
            auth_token on;
            alias html/;
        }
        location /api/ {
            auth_token on;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "hello\n");

# After Redis was stopped, the link may be reconnecting: wait for a 200.
sub wait_until_up {
    for (1 .. 100) {
        my $r = http_request('/api/hello', Authorization => "Token $valid");
        return 1 if $r && $r->{status} == 200;
        sleep 0.05;
    }
    return 0;
}

sub hmget_calls {
    my ($n) = redis_cmd('INFO', 'commandstats') =~ /cmdstat_hmget:calls=(\d+)/;
    return $n // 0;
}

my %kinds = (
    valid     => "Token $valid",
    inactive  => "Token $inactive",
    unknown   => "Token $unknown",
    malformed => 'Token a b',
    missing   => undef,
);

subtest '"deny" refuses with 403 before any token is looked at' => sub {
    my $before = hmget_calls();
    for my $kind (sort keys %kinds) {
        my $r = http_request('/denied/hello',
                             defined $kinds{$kind}
                                 ? (Authorization => $kinds{$kind}) : ());
        is($r->{status}, 403, "$kind token: 403");
        ok(!exists $r->{headers}{'www-authenticate'},
           "$kind token: no challenge");
        unlike($r->{body}, qr/detail/, "$kind token: no DRF body");
    }
    is(hmget_calls() - $before, 0, 'and Redis was not asked once');
};

subtest '"satisfy any" with "allow" passes without Redis, even when it is down' => sub {
    my $before = hmget_calls();
    my $r = http_request('/any-allowed/hello');
    is($r->{status}, 200, 'no token, allowed address: 200');
    $r = http_request('/any-allowed/hello', Authorization => "Token $unknown");
    is($r->{status}, 200, 'unknown token, allowed address: 200');
    is(hmget_calls() - $before, 0, 'Redis was not asked');

    redis_pause();
    $r = http_request('/any-allowed/hello', Authorization => "Token $valid");
    redis_resume();
    is($r->{status}, 200, 'Redis stopped, allowed address: 200, not 503');
    ok(wait_until_up(), 'Redis back');
};

subtest '"satisfy any" when nothing allows and Redis is down: 503, fail closed' => sub {
    redis_pause();
    my $r = http_request('/any-denied/hello', Authorization => "Token $valid");
    redis_resume();
    is($r->{status}, 503, '503, not 403 and not a pass');
    is($r->{body},
       '{"detail":"Service temporarily unavailable, try again later."}',
       "DRF's ServiceUnavailable body");
    is($r->{headers}{'retry-after'}, '1', 'with Retry-After');
    ok(wait_until_up(), 'Redis back');
    $r = http_request('/any-denied/hello', Authorization => "Token $valid");
    is($r->{status}, 200, 'the valid token passes');
};

subtest 'auth_delay holds our 401, not our 200' => sub {
    my $r = http_request('/delayed/hello', Authorization => "Token $unknown");
    is($r->{status}, 401, 'unknown token: 401');
    cmp_ok($r->{elapsed}, '>=', 0.55, 'after auth_delay (600ms)');
    is($r->{body}, '{"detail":"Invalid token."}', "with DRF's body");
    $r = http_request('/delayed/hello');
    cmp_ok($r->{elapsed}, '>=', 0.55, 'no token: 401 delayed too');
    $r = http_request('/delayed/hello', Authorization => "Token $valid");
    is($r->{status}, 200, 'valid token: 200');
    cmp_ok($r->{elapsed}, '<', 0.55, 'not delayed');
};

subtest 'the identity variables are set only when the token lets the request in' => sub {
    my $r = http_request('/api/hello', Authorization => "Token $valid");
    is($r->{status}, 200, 'valid token: 200');
    is($r->{headers}{'x-auth-user'}, 'admin', '$auth_token_user');
    is($r->{headers}{'x-auth-user-id'}, '7', '$auth_token_user_id');

    $r = http_request('/api/hello', Authorization => "Token $inactive");
    is($r->{status}, 401, 'inactive user: 401');
    ok(!exists $r->{headers}{'x-auth-user'}, 'no $auth_token_user');
    ok(!exists $r->{headers}{'x-auth-user-id'}, 'no $auth_token_user_id');

    $r = http_request('/any-allowed/hello', Authorization => "Token $inactive");
    is($r->{status}, 200, 'inactive user, allowed address: 200');
    ok(!exists $r->{headers}{'x-auth-user'},
       'the inactive user\'s name does not go with it');

    sleep 0.2;
    open my $fh, '<', AuthToken::Server::_root() . '/logs/ids.log' or die $!;
    my @lines = grep { m{^/api/hello status=401} } <$fh>;
    ok(@lines, 'the 401 is in the access log');
    like($lines[-1], qr/user="-" uid="-" token=inactive/,
         'logged with its status but without the name');
};

# Every byte the server sends until it closes the connection: a HEAD
# response announces the GET's Content-Length, so a parser that trusts it
# would wait for a body, and one that does not would never see it.
sub head_bytes {
    my (@headers) = @_;
    my $s = raw_connect(nginx_port());
    print $s "HEAD /api/hello HTTP/1.1\r\nHost: x\r\n",
             (map { "$_\r\n" } @headers), "Connection: close\r\n\r\n";
    my $sel = IO::Select->new($s);
    my ($buf, $t0) = ('', time);
    while (time - $t0 < 5 && $sel->can_read(5 - (time - $t0))) {
        last unless sysread($s, $buf, 65536, length $buf);
    }
    close $s;
    my $end = index($buf, "\r\n\r\n");
    my ($status) = $buf =~ m{^HTTP/1\.1 (\d+)};
    return ($status, $end < 0 ? undef : substr($buf, 0, $end),
            $end < 0 ? undef : substr($buf, $end + 4));
}

subtest 'a HEAD request gets its 401 without a body' => sub {
    my ($status, $head, $rest) = head_bytes("Authorization: Token $unknown");
    is($status, 401, 'unknown token: 401');
    like($head, qr/\r\nWWW-Authenticate: Token(\r\n|\z)/i, 'with the challenge');
    like($head, qr/\r\nContent-Length: 27(\r\n|\z)/i,
         "announcing the GET's body length");
    is($rest, '', 'and not one byte after the header, up to the close');

    ($status, $head, $rest) = head_bytes();
    is($status, 401, 'no token: 401');
    is($rest, '', 'without a body either');
};

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal/,
       'no alert, no crash');

done_testing();
