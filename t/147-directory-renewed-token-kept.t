# The split layout's lifecycle (docs/operations.md, "Two stores") for a
# token the edge renews: sliding renewal (token_auto_refresh) pushes
# `expires` out in the token directory only, and nginx writes `last_used`
# and `last_addr` there. Past the user store's first expiry, within the
# renewed one, a DRF-mode login, `authtokenctl token` (without -r) and
# `authtokenctl backfill` hand back or keep the same key, as the one-store
# layout does, so the user's other devices are not logged out.
use strict;
use warnings;

use JSON::PP qw(decode_json);
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

issuer_setup();    # the user store: the test's Redis

my $dport = directory_setup();    # the token directory

# /r/ notes uses (and so renews in the directory, authtoken_touch).
directory_nginx_start(http => 'auth_token_last_used_interval 1s;', locations => <<'NGINX');
        location /r/ {
            auth_token on;
            auth_token_cache zone=tokens:1m valid=1s;
            auth_token_last_used on;
            alias html/;
        }
NGINX

$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
$ENV{AUTHTOKEN_TOKEN_TTL} = 3;
$ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
$ENV{AUTHTOKEN_TOKEN_MAX_TTL} = 120;
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');
authtokend_start();

{
    local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
    ctl_ok({ stdin => "$_-pw\n" }, 'createuser', $_, '--password-stdin') for qw(gina hank ivan);
}
my %token = (gina => obtain_token('gina', 'gina-pw'), hank => token_of('hank'), ivan => token_of('ivan'));
my %key = map { $_ => 'authtoken:token:' . token_digest($token{$_}) } keys %token;
my $first = redis_cmd('HGET', $key{gina}, 'expires');

# Every token used at the edge (as a second device would) until the user
# store's copy of each has expired, each use renewing it in the directory.
my $last = $first;
$last = $_ > $last ? $_ : $last for map { redis_cmd('HGET', $key{$_}, 'expires') } keys %token;
while (time < $last + 0.5) {
    is(edge_once($token{$_}, '/r/'), '200 ok', "$_ is accepted while in use") for sort keys %token;
    sleep 0.5;
}
for my $who (sort keys %token) {
    cmp_ok(redis_cmd('HGET', $key{$who}, 'expires'), '<=', time, "($who: the user store's copy has expired)");
    cmp_ok(redis_at($dport, 'HGET', $key{$who}, 'expires'), '>', time, "($who: the directory's renewed one has not)");
}

subtest 'a DRF-mode login after the first expiry hands back the renewed token' => sub {
    my $again = obtain_token('gina', 'gina-pw');
    is($again, $token{gina}, 'the login answers the same key');
    is(edge_once($token{gina}), '200 ok', 'and the other device keeps 200');
};

subtest '`authtokenctl token` (without -r) after the first expiry shows the renewed token' => sub {
    is(token_of('hank'), $token{hank}, 'the same key');
    is(edge_once($token{hank}), '200 ok', 'still accepted at the edge');
};

subtest '`authtokenctl backfill` keeps a renewed token' => sub {
    my $out = ctl_ok('backfill');
    unlike($out, qr/Replaced/, 'replaces no token') or diag $out;
    is(edge_once($token{ivan}), '200 ok', "ivan's token is still accepted at the edge");
    is(token_of('ivan'), $token{ivan}, 'and is still his');
};

subtest 'a token not renewed is replaced by the login as before' => sub {
    {
        local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
        ctl_ok({ stdin => "jade-pw\n" }, 'createuser', 'jade', '--password-stdin');
    }
    my $jade = obtain_token('jade', 'jade-pw');
    my $until = redis_cmd('HGET', 'authtoken:token:' . token_digest($jade), 'expires');
    sleep 0.1 while time < $until + 0.3;
    isnt(obtain_token('jade', 'jade-pw'), $jade, 'an expired, unused token is replaced');
    like(edge_once($jade), qr/^401/, 'and refused at the edge');
};

authtokend_stop();
done_testing();
