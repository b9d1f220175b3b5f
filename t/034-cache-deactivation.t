# Deactivating a user reaches the cache through the revocation channel, not
# through valid=: a token that is a cache HIT is refused with "User
# inactive or deleted." on the next request after `authtokenctl
# deactivate` returns, from a fresh lookup; `activate` lets it through
# again, also from a fresh lookup. valid= is an hour and the sequence check
# runs only every second, so neither can stand in for the message that
# redis/set_active.lua publishes.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;

issuer_setup();
ctl_ok({ stdin => "pw\n" }, 'createuser', 'rita', '--password-stdin');
my $token = token_of('rita');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m valid=1h invalid=1h;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            add_header X-Cache $auth_token_cache_status always;
            add_header X-User $auth_token_user always;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");

sub get {
    my $res = http_request('/s/x', Authorization => "Token $_[0]");
    die "no response" unless $res;
    return $res;
}

sub seen { my $r = $_[0]; ($r->{headers}{'x-cache'} // '') . " $r->{status}" }

# Until the worker is subscribed (and has passed its first sequence
# check), the cache is bypassed.
my $t0 = time;
sleep 0.02 until seen(get('0' x 40)) !~ /^BYPASS/ || time - $t0 > 5;
isnt(seen(get('0' x 40)), 'BYPASS 401', 'the worker subscribed');

# A message is applied by the worker's event loop, so it may land a moment
# after the command returns: 50 ms, far below the 1 s of the sequence
# check that would otherwise cover a lost message.
sub settle { sleep 0.05 }

subtest 'a cached token of a deactivated user is refused at once' => sub {
    is(seen(get($token)), 'MISS 200', 'first request looks the token up');
    is(seen(get($token)), 'HIT 200', 'second is a cache hit');

    ctl_ok('deactivate', 'rita');
    settle();
    my $res = get($token);
    is(seen($res), 'MISS 401', 'the next request is looked up again and refused');
    is($res->{body}, '{"detail":"User inactive or deleted."}', "with DRF's inactive body");
    is($res->{headers}{'www-authenticate'}, 'Token', 'and the Token challenge');
    is(seen(get($token)), 'HIT 401', 'the refusal is cached in turn');
};

subtest 'activating the user again lets the token through, from a fresh lookup' => sub {
    ctl_ok('activate', 'rita');
    settle();
    my $res = get($token);
    is(seen($res), 'MISS 200', 'looked up again and accepted');
    is($res->{headers}{'x-user'}, 'rita', 'as the same user');
    is(seen(get($token)), 'HIT 200', 'and cached again');
};

nginx_stop();
authtokend_stop();
done_testing();
