# Sliding renewal with an absolute cap (token_auto_refresh, token_max_ttl;
# knox's AUTO_REFRESH and AUTO_REFRESH_MAX_TTL), end to end: authtokenctl
# creates tokens whose record carries `renew` and `cap`, nginx (cache on,
# auth_token_last_used every second) reports their uses, authtoken_touch
# pushes `expires` out, and the edge, whose cached entry still holds the old
# expiry, looks again instead of refusing. A token used all the time stops
# at its cap; an unused one expires at its ttl; without token_auto_refresh
# nothing is renewed (the default, with token_ttl a fixed lifetime).
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Process qw(wait_until);

issuer_setup();

my $ttl = 4;
my $cap = 9;
sub renewing {
    local $ENV{AUTHTOKEN_TOKEN_TTL} = $ttl;
    local $ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
    local $ENV{AUTHTOKEN_TOKEN_MAX_TTL} = $cap;
    return $_[0]->();
}
sub record {
    my ($token, @fields) = @_;
    return redis_cmd('HMGET', token_key($token), @fields);
}

nginx_start(<<'HTTP', workers => 2);
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_last_used_interval 1s;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            auth_token_cache zone=tokens:1m valid=1h;
            auth_token_last_used on;
            add_header X-Cache $auth_token_cache_status always;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");

sub get {
    my $res = http_request('/s/x', Authorization => "Token $_[0]");
    die 'no response' unless $res;
    return $res;
}

subtest 'the settings are checked together' => sub {
    local $ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
    my ($code, undef, $err) = ctl('users');
    isnt($code, 0, 'token_auto_refresh without token_ttl is refused');
    like($err, qr/token_auto_refresh needs token_ttl/, 'and says why');
    local $ENV{AUTHTOKEN_TOKEN_TTL} = '1h';
    local $ENV{AUTHTOKEN_TOKEN_MAX_TTL} = '30m';
    ($code, undef, $err) = ctl('users');
    like($err, qr/token_max_ttl \(1800 s\) is shorter than token_ttl \(3600 s\)/,
         'a cap below the lifetime is refused');
};

my $t0 = time;
renewing(sub { ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin') for qw(busy idle) });
my ($busy, $idle) = map { renewing(sub { token_of($_) }) } qw(busy idle);

subtest 'a token created with token_auto_refresh carries its renewal' => sub {
    my ($expires, $renew, $rcap) = @{ record($busy, 'expires', 'renew', 'cap') };
    cmp_ok(abs($expires - ($t0 + $ttl)), '<=', 1, 'expires is token_ttl from now');
    is($renew, $ttl, 'renew is its lifetime, token_ttl');
    cmp_ok(abs($rcap - ($t0 + $cap)), '<=', 1, 'cap is token_max_ttl from now');
};

subtest 'used within its window, a token is renewed through the edge, up to its cap' => sub {
    my $first = record($busy, 'expires')->[0];
    my (@ok, @refused, %cache);
    is(get($idle)->{status}, 200, 'the idle token is used once');
    while (time < $t0 + $cap + 2.5) {
        my $res = get($busy);
        $cache{ $res->{headers}{'x-cache'} }++;
        push @{ $res->{status} == 200 ? \@ok : \@refused }, time;
        sleep 0.25;
    }
    my $rcap = record($busy, 'cap')->[0];
    cmp_ok($ok[-1], '>', $first + 1, 'it is still allowed well after its first expiry');
    ok(!grep({ $_ < $rcap - 1 } @refused), 'never refused before its cap')
        or diag "refused at @{[ map { $_ - $t0 } @refused ]} s";
    ok(@refused && $refused[0] <= $rcap + 1.5, 'refused from its cap on')
        or diag "cap at " . ($rcap - $t0) . " s, last allowed at " . ($ok[-1] - $t0);
    is(record($busy, 'expires')->[0], $rcap, 'its expiry stopped at the cap');
    ok($cache{HIT} && $cache{MISS} && $cache{MISS} >= 2,
       'hits in between, and a fresh lookup when a cached expiry passed')
        or diag explain \%cache;
};

subtest 'an unused token is not renewed: it expires at its ttl' => sub {
    my ($expires) = @{ record($idle, 'expires') };
    cmp_ok($expires, '<=', int($t0) + $ttl + 1, 'its expiry moved by its one use at most');
    is(get($idle)->{status}, 401, 'and it is refused');
};

subtest 'with tokens_per_user = many, each new token carries its renewal' => sub {
    local $ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
    my $t1 = time;
    renewing(sub { ctl_ok({ stdin => "pw\n" }, 'createuser', 'multi', '--password-stdin') });
    my $second = renewing(sub { token_of('multi') });
    my ($expires, $renew, $rcap, $name) = @{ record($second, 'expires', 'renew', 'cap', 'name') };
    ok(defined $name, 'a token of the user\'s set (it has a name field)');
    is($renew, $ttl, 'renew is token_ttl');
    cmp_ok(abs($rcap - ($t1 + $cap)), '<=', 1, 'cap is token_max_ttl from now');
    cmp_ok(abs($expires - ($t1 + $ttl)), '<=', 1, 'expires is token_ttl from now');
};

subtest 'without token_auto_refresh, token_ttl is a fixed lifetime' => sub {
    local $ENV{AUTHTOKEN_TOKEN_TTL} = 3;
    ctl_ok({ stdin => "pw\n" }, 'createuser', 'fixed', '--password-stdin');
    my $fixed = token_of('fixed');
    my ($expires, $renew) = @{ record($fixed, 'expires', 'renew') };
    is($renew, undef, 'no renew field');
    is(get($fixed)->{status}, 200, 'used') for 1 .. 2;
    sleep 1.5;
    is(get($fixed)->{status}, 200, 'used again');
    ok(wait_until(3, sub { defined record($fixed, 'last_used')->[0] }), 'its use is recorded');
    is(record($fixed, 'expires')->[0], $expires, 'and its expiry is unchanged');
};

done_testing();
