# The split layout's lifecycle (docs/operations.md, "Two stores") for a
# token the edge renews: sliding renewal (token_auto_refresh) pushes
# `expires` out in the token directory only, and nginx writes `last_used`
# and `last_addr` there. Past the user store's first expiry, within the
# renewed one, a DRF-mode login, `authtokenctl token` (without -r) and
# `authtokenctl backfill` hand back or keep the same key, as the one-store
# layout does, so the user's other devices are not logged out. What
# operators see (GET /api-tokens/, `authtokenctl tokens`, `authtokenctl
# users`, the admin API) is the directory's expiry and last use; with the
# directory down, the user store's, without an error, and a token that
# renews is handed back, not replaced. `directory sync` counts the entries
# it applied, not those the directory already had.
use strict;
use warnings;

use JSON::PP qw(decode_json);
use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

issuer_setup();    # the user store: the test's Redis

my $dport = directory_setup();    # the token directory

# /r/ notes uses (and so renews in the directory, authtoken_touch).
directory_renewing_nginx_start();

$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
$ENV{AUTHTOKEN_TOKEN_TTL} = 3;
$ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
$ENV{AUTHTOKEN_TOKEN_MAX_TTL} = 120;
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');
authtokend_start();

ctl_ok({ stdin => "root-pw\n" }, 'createuser', 'root', '--superuser', '--password-stdin');
{
    local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
    ctl_ok({ stdin => "$_-pw\n" }, 'createuser', $_, '--password-stdin') for qw(gina hank ivan jack kate lena);
}
my $root = token_of('root', '-r', '--ttl', '3600s');    # outlives the file
sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }
my %token = (gina => obtain_token('gina', 'gina-pw'), hank => token_of('hank'), ivan => token_of('ivan'));
my %key = map { $_ => token_key($token{$_}) } keys %token;
my $first = redis_cmd('HGET', $key{gina}, 'expires');

# Every token of @who used at the edge (as a second device would) until
# the user store's copy of each has expired, each use renewing it in the
# directory.
sub use_past_first_expiry {
    my @who = @_;
    my $last = 0;
    $last = $_ > $last ? $_ : $last for map { redis_cmd('HGET', $key{$_}, 'expires') } @who;
    while (time < $last + 0.5) {
        is(edge_once($token{$_}, '/r/'), '200 ok', "$_ is accepted while in use") for @who;
        sleep 0.5;
    }
    for my $who (@who) {
        cmp_ok(redis_cmd('HGET', $key{$who}, 'expires'), '<=', time, "($who: the user store's copy has expired)");
        cmp_ok(redis_at($dport, 'HGET', $key{$who}, 'expires'), '>', time, "($who: the directory's renewed one has not)");
    }
}
use_past_first_expiry(sort keys %token);

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

subtest 'what operators see is the directory\'s expiry and last use' => sub {
    my ($expires, $used, $addr) = @{ redis_at($dport, 'HMGET', $key{gina}, qw(expires last_used last_addr)) };
    ok($used && $addr, '(the directory has last_used and last_addr)');
    my (undef, undef, $body) = daemon_request('GET', '/api-tokens/',
        headers => { Authorization => "Token $token{gina}" });
    my ($t) = @{ decode_json($body) };
    is($t->{expires}, iso($expires), 'GET /api-tokens/: the renewed expires');
    is($t->{last_used}, iso($used), 'its last_used');
    is($t->{last_address}, $addr, 'and its last_address');
    my ($c) = @{ decode_json(ctl_ok('tokens', 'gina', '--json')) };
    is_deeply([@$c{qw(expires last_used last_address)}], [iso($expires), iso($used), $addr],
              '`authtokenctl tokens --json`: the same');
    like(ctl_ok('users'), qr/^\d+ +gina +yes +no +no +yes$/m, '`authtokenctl users`: gina has a token, not expired');
    (undef, undef, $body) = daemon_request('GET', '/api-admin/users/gina/',
        headers => { Authorization => "Token $root" });
    my $u = decode_json($body);
    is($u->{token_expires}, $expires, 'the admin API: the renewed token_expires');
    is($u->{token_expired}, JSON::PP::false, 'and not expired');
    (undef, undef, $body) = daemon_request('GET', '/api-admin/users/?search=gina',
        headers => { Authorization => "Token $root" });
    is(decode_json($body)->{results}[0]{token_expires}, $expires, 'its user list too');

    kill 'STOP', directory_pid();
    my ($status, undef, $list) = daemon_request('GET', '/api-admin/users/gina/',
        headers => { Authorization => "Token $root" });
    my ($code, $out, $err) = ctl('tokens', 'gina', '--json');
    kill 'CONT', directory_pid();
    is($code, 0, 'directory stopped: `authtokenctl tokens` still lists');
    is(decode_json($out)->[0]{expires}, iso(redis_cmd('HGET', $key{gina}, 'expires')),
       'the user store\'s expiry');
    like($err, qr/warning: the token directory \S+ did not answer .*: the expiry and last use shown are the user store's, without the edges' renewals/,
         'and says that what it shows misses the edges\' renewals');
    unlike($err, qr/did not take the pending changes/, 'and nothing of changes: none were pending');
    is($status, 200, 'directory stopped: the admin API still answers 200');
    is(decode_json($list)->{token_expires}, redis_cmd('HGET', $key{gina}, 'expires'),
       'with the user store\'s expiry');
    like(authtokend_log(), qr/cannot read its token records .* the user store's expiry and last use are shown/,
         'and the daemon logs why');
};

subtest 'a token not renewed is replaced by the login as before' => sub {
    {
        local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
        ctl_ok({ stdin => "jade-pw\n" }, 'createuser', 'jade', '--password-stdin');
    }
    my $jade = obtain_token('jade', 'jade-pw');
    my $until = redis_cmd('HGET', token_key($jade), 'expires');
    sleep 0.1 while time < $until + 0.3;
    isnt(obtain_token('jade', 'jade-pw'), $jade, 'an expired, unused token is replaced');
    like(edge_once($jade), qr/^401/, 'and refused at the edge');
};

# The directory stopped: no renewed expiry can be read, so a token that
# renews is handed back (its own users: the stop outlasts the others'
# renewal of 3 s).
%token = (%token, jack => obtain_token('jack', 'jack-pw'), kate => token_of('kate'), lena => token_of('lena'));
$key{$_} = token_key($token{$_}) for qw(jack kate lena);
use_past_first_expiry(qw(jack kate lena));
subtest 'directory down: a DRF-mode login, `token` and `backfill` hand back a token that renews' => sub {
    kill 'STOP', directory_pid();
    my ($status, undef, $body) = obtain_direct('jack', 'jack-pw');
    my ($code, $out) = ctl('token', 'kate');
    my (undef, $filled) = ctl('backfill');
    kill 'CONT', directory_pid();
    is("$status $body", qq(200 {"token":"$token{jack}"}), 'the login answers the same key');
    like($out, qr/^Generated token $token{kate} for user kate$/m, '`authtokenctl token` shows the same key');
    unlike($filled, qr/Replaced/, '`backfill` replaces no token');
    ctl_ok('directory', 'sync');
    for my $who (qw(jack kate lena)) {
        is(redis_cmd('EXISTS', $key{$who}), 1, "$who still holds the token (user store)");
        is(redis_at($dport, 'EXISTS', $key{$who}), 1, 'and the token directory keeps it, after a sync');
    }
    like(authtokend_log(), qr/cannot read the renewed expiry of token [0-9a-f]+ .*no token that renews is swept or replaced/,
         'the daemon says what decided');
};

authtokend_stop();

subtest '`directory sync` counts only the entries it applied' => sub {
    ctl_ok('deactivate', 'jade');
    my $seq = outbox_seq();
    is(redis_at($dport, 'HGET', 'authtoken:directory', 'applied'), $seq, '(the directory has every entry)');
    # As after a replayer that applied the last entry and stopped before
    # acknowledging it.
    redis_cmd('SET', 'authtoken:outbox-acked', $seq - 1);
    like(ctl_ok('directory', 'sync'), qr/^Applied 0 outbox entries; the directory has every change up to $seq\.$/m,
         'the entry the directory already had is not counted');
    is(pending(), 0, 'and it is acknowledged');
    ctl_ok('activate', 'jade');
    redis_cmd('SET', 'authtoken:outbox-acked', outbox_seq() - 1);
    redis_at($dport, 'HSET', 'authtoken:directory', 'applied', outbox_seq() - 1);
    like(ctl_ok('directory', 'sync'), qr/^Applied 1 outbox entries;/m, 'one it did apply is');
};

done_testing();
