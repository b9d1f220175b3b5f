# tokens_per_user = many in the split layout (docs/operations.md, "Two
# stores"): sliding renewal pushes a token's `expires` out in the token
# directory only, so the user store's copy passes while the edge still
# renews the token. A login (and `authtokenctl token`) sweeps the user's
# expired tokens and counts the rest toward token_limit_per_user: it must
# judge each by the directory's renewed expiry, as the edges do. A token
# still in use is neither swept (the user's other device stays logged in)
# nor left out of the limit's count (drop_oldest drops the oldest, not the
# one in use); with the directory down no token that renews is swept. The
# login's log line says what it deleted: expired tokens swept, or the
# oldest dropped at the limit.
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
directory_renewing_nginx_start();

$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
$ENV{AUTHTOKEN_TOKEN_TTL} = 3;
$ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
$ENV{AUTHTOKEN_TOKEN_MAX_TTL} = 120;
$ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');
my @throttle_off = ('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');
authtokend_start(@throttle_off);    # token_limit_per_user 100, refuse

ctl_ok({ stdin => "$_-pw\n" }, 'createuser', $_, '--password-stdin') for qw(u3 vera xena);

# POST /api-token-auth/ with a token name: (status, body).
sub login_as {
    my ($user, $name) = @_;
    my ($status, undef, $body) = daemon_request('POST', '/api-token-auth/',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        body => "username=$user&password=$user-pw&name=$name");
    return ($status, $body);
}
sub login {
    my ($status, $body) = login_as(@_);
    die "login @_: $status $body" unless $status == 200;
    my ($token) = $body =~ /^\{"token":"([0-9a-f]{40})"\}$/ or die "no token in $body";
    return $token;
}
sub store_expires { redis_cmd('HGET', token_key($_[0]), 'expires') }
sub names_of {
    my ($token) = @_;
    my ($status, undef, $body) = daemon_request('GET', '/api-tokens/',
        headers => { Authorization => "Token $token" });
    return "$status" unless $status == 200;
    return join ' ', sort map { $_->{name} } @{ decode_json($body) };
}

my %t;
$t{u3_stale} = login('u3', 'stale');     # never used: expires for real
$t{u3_laptop} = login('u3', 'laptop');   # in use at the edge
$t{xena_laptop} = login('xena', 'laptop');
# vera: two older tokens that outlive the file, then the one in use.
$t{vera_desk} = token_of('vera', '--name', 'desk', '--ttl', '3600s');
$t{vera_tablet} = token_of('vera', '--name', 'tablet', '--ttl', '3600s');
$t{vera_laptop} = login('vera', 'laptop');
my @in_use = qw(u3_laptop xena_laptop vera_laptop);

# The tokens in use are used at the edge (as the other device would) until
# the user store's copy of each has expired, each use renewing it in the
# directory.
sub use_all { edge_once($t{$_}, '/r/') for @in_use }
my $last = 0;
$last = $_ > $last ? $_ : $last for map { store_expires($t{$_}) } @in_use, 'u3_stale';
while (time < $last + 0.5) {
    is(edge_once($t{$_}, '/r/'), '200 ok', "$_ is accepted while in use") for @in_use;
    sleep 0.5;
}
for my $which (@in_use) {
    cmp_ok(store_expires($t{$which}), '<=', time, "($which: the user store's copy has expired)");
    cmp_ok(redis_at($dport, 'HGET', token_key($t{$which}), 'expires'), '>', time,
           "($which: the directory's renewed one has not)");
}

subtest 'a login from another device keeps the token the edge renews and sweeps the expired one' => sub {
    use_all();
    my $phone = login('u3', 'phone');
    is(edge_once($t{u3_laptop}, '/r/'), '200 ok', 'the laptop keeps 200 at the edge');
    is(names_of($t{u3_laptop}), 'laptop phone', 'and its GET /api-tokens/ lists the laptop and the phone');
    is(redis_cmd('EXISTS', token_key($t{u3_stale})), 0, 'the unused, expired token is swept');
    like(edge_once($t{u3_stale}, '/r/'), qr/^401/, 'and refused at the edge');
    my @lines = grep { /obtain-token for "u3"/ } split /\n/, authtokend_log();
    like($lines[-1], qr/: 200 \(new token, 1 expired token swept\)$/,
         'the log line says an expired token was swept, not that the oldest was dropped at the limit');
};

subtest 'a login answered 503 (directory down) deletes no token that renews' => sub {
    use_all();
    kill 'STOP', directory_pid();
    my ($status) = login_as('xena', 'phone');
    kill 'CONT', directory_pid();
    is($status, 503, 'the login is answered 503');
    is(redis_cmd('EXISTS', token_key($t{xena_laptop})), 1, 'the laptop\'s token is still in the user store');
    is(edge_after_reconnect($t{xena_laptop}), '200 ok', 'and accepted at the edge');
    like(authtokend_log(), qr/cannot read the renewed expiry of token [0-9a-f]+ .*no token that renews is swept or replaced/,
         'the daemon logs why it kept it');
};

subtest 'drop_oldest drops the oldest token, not the one the edge renews' => sub {
    authtokend_start(@throttle_off, '--token-limit-per-user', '3', '--token-limit-policy', 'drop_oldest');
    use_all();
    my $phone = login('vera', 'phone');
    is(edge_once($t{vera_laptop}, '/r/'), '200 ok', 'the token in use keeps 200 at the edge');
    like(edge_once($t{vera_desk}, '/r/'), qr/^401/, 'the oldest is dropped to make room');
    is(edge_once($t{vera_tablet}, '/r/'), '200 ok', 'the next oldest stays');
    is(names_of($phone), 'laptop phone tablet', 'GET /api-tokens/ lists the three');
    my @lines = grep { /obtain-token for "vera"/ } split /\n/, authtokend_log();
    like($lines[-1], qr/: 200 \(new token, the oldest dropped at the limit\)$/,
         'the log line says the oldest was dropped at the limit');
};

authtokend_stop();
done_testing();
