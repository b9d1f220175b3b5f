# Deactivating a user reaches the cache through the revocation channel, not
# through valid=: a token that is a cache HIT is refused with "User
# inactive or deleted." on the next request after `authtokenctl
# deactivate` returns, from a fresh lookup; `activate` lets it through
# again, also from a fresh lookup. valid= is an hour and the sequence check
# runs only every second, so neither can stand in for the message that
# authtoken_set_active (redis/authtoken.lua) publishes.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::CacheEdge;
use AuthToken::Issuer;

issuer_setup();
ctl_ok({ stdin => "pw\n" }, 'createuser', 'rita', '--password-stdin');
my $token = token_of('rita');

cache_nginx_start(cache => 'valid=1h invalid=1h',
                  headers => ['X-User $auth_token_user']);

# Until the worker is subscribed (and has passed its first sequence
# check), the cache is bypassed.
wait_subscribed(5);
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
