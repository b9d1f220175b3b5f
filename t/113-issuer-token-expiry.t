# Token expiry, through nginx + module + authtokend: a token whose record's
# `expires` has passed is refused at the edge, reported as expired by
# `authtokenctl users` and `backfill`, and replaced (a new key, the old
# record deleted) by the next login or `authtokenctl token`, never handed
# out again. token_ttl and `token --ttl/--expires` give new tokens an
# `expires`; without them tokens never expire (DRF: t/010, t/101).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Test::More;
use JSON::PP qw(decode_json);

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
# The daemon gives tokens it creates a lifetime of one day.
authtokend_start('--token-ttl', '1d');

sub expires_of { redis_cmd('HGET', token_key($_[0]), 'expires') }
sub expire { redis_cmd('HSET', token_key($_[0]), 'expires', int(time()) - 60) }
sub near { my ($got, $want, $name) = @_; ok(defined $got && abs($got - $want) <= 1, $name) or diag("got " . ($got // 'undef') . ", want $want") }

# Without token_ttl (the CLI here has none), a token never expires: DRF.
ctl_ok({ stdin => "plain-pass\n" }, 'createuser', 'plain', '--password-stdin');
our $plain = token_of('plain');
is(expires_of($plain), '0', 'a token made without token_ttl never expires (expires 0)');

# 1. users and backfill report expired tokens, and backfill replaces them.
for my $u (qw(lapsed bf)) {
    ctl_ok({ stdin => "$u-pass\n" }, 'createuser', $u, '--password-stdin');
}
our $lapsed_old = token_of('lapsed');
our $bf_old = token_of('bf');
expire($_) for $lapsed_old, $bf_old;
like(ctl_ok('users'), qr/^\d+\s+lapsed\s+yes\s+no\s+no\s+expired$/m,
     'users shows an expired token as expired');
my ($bf_json) = grep { $_->{username} eq 'bf' } @{ decode_json(ctl_ok('users', '--json')) };
ok(!$bf_json->{has_token} && $bf_json->{token_expired},
   'users --json: has_token false, token_expired true');
like(ctl_ok('backfill'), qr/^Created tokens for 0 users; 1 already had one\.\nReplaced 2 expired tokens\.$/m,
     'backfill replaces expired tokens and says so');
our $bf_new = token_of('bf');
isnt($bf_new, $bf_old, 'backfill gave bf a new key');
is(redis_cmd('EXISTS', token_key($bf_old)), 0,
   'the expired record is deleted');

# 2. authtokenctl token replaces an expired token (drf_create_token: an
# expired token is as good as none).
ctl_ok({ stdin => "ctlexp-pass\n" }, 'createuser', 'ctlexp', '--password-stdin');
our $ctlexp_old = token_of('ctlexp');
expire($ctlexp_old);
our $ctlexp_new = token_of('ctlexp');
isnt($ctlexp_new, $ctlexp_old, 'token NAME replaces an expired token');
is(token_of('ctlexp'), $ctlexp_new, 'and then answers the new one');
is(redis_cmd('EXISTS', token_key($ctlexp_old)), 0,
   'the expired record is deleted');

# 3. A login replaces an expired token; the new one gets token_ttl.
ctl_ok({ stdin => "relog-pass\n" }, 'createuser', 'relog', '--password-stdin');
our $relog_old = token_of('relog');
expire($relog_old);
my $seq = redis_cmd('GET', 'authtoken:revocation-seq');
our $relog_new = AuthToken::Issuer::obtain_token('relog', 'relog-pass');
isnt($relog_new, $relog_old, 'obtain-token replaces an expired token');
is(redis_cmd('EXISTS', token_key($relog_old)), 0,
   'the expired record is deleted');
cmp_ok(redis_cmd('GET', 'authtoken:revocation-seq'), '>=', $seq + 2,
       'its revocation (and the new digest) published');
near(expires_of($relog_new), time() + 86400, 'the login token expires after token_ttl (1d)');
like(authtokend_log(), qr/obtain-token for "?relog"?.*: 200 \(new token, replacing the old one\)/,
     'the daemon logs the replacement');
is(AuthToken::Issuer::obtain_token('relog', 'relog-pass'), $relog_new,
   'the next login answers the same, live, token');

# 4. token --ttl / --expires, and token_ttl for the CLI.
ctl_ok({ stdin => "ttl-pass\n" }, 'createuser', 'ttl', '--password-stdin',
       '--no-auto-create-token');
our $ttl_token = token_of('ttl', '--ttl', '1h30m');
near(expires_of($ttl_token), time() + 5400, 'token --ttl 1h30m: expires = now + 5400');
my $at = int(time()) + 1000;
our $at_token = token_of('ttl', '-r', '--expires', $at);
is(expires_of($at_token), $at, 'token -r --expires T: expires = T');
is(token_of('ttl', '--ttl', '5m'), $at_token, 'an existing live token keeps its expiry');
{
    my ($code, undef, $err) = ctl('token', 'ttl', '--ttl', 'soon');
    is($code, 2, 'a bad --ttl is a usage error');
    like($err, qr/--ttl: expected a duration/, 'saying what was expected');
}
{
    my ($code, undef, $err) = ctl('token', 'ttl', '-r', '--expires', int(time()) - 5);
    is($code, 2, '--expires in the past is a usage error');
    like($err, qr/--expires: \d+ is not in the future/, 'saying so');
    is(token_of('ttl'), $at_token, 'and nothing was replaced');
}
{
    local $ENV{AUTHTOKEN_TOKEN_TTL} = '2m';
    ctl_ok({ stdin => "envttl-pass\n" }, 'createuser', 'envttl', '--password-stdin');
    near(expires_of(token_of('envttl')), time() + 120,
         'token_ttl 2m: createuser gives expires = now + 120');
}

# 5. An expired token at the edge (kept expired for the blocks below).
ctl_ok({ stdin => "edge-pass\n" }, 'createuser', 'edge', '--password-stdin');
our $edge_old = token_of('edge');
expire($edge_old);

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<'_EOC_');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_
    $block->set_value(config => <<'_EOC_');
    location /api/ {
        auth_token on;
        proxy_set_header X-User $auth_token_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
    }
    location /upstream/ {
        return 200 "$http_x_user\n";
    }
    location = /api-token-auth/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
    }
_EOC_
    $block->set_value(no_error_log => "[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: an expired token gets 401 "Invalid token." at the edge
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::edge_old"
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 2: a login through nginx answers a new key in place of an expired one
--- request
POST /api-token-auth/
username=edge&password=edge-pass
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body_like eval
qr/^\{"token":"(?!$::edge_old)[0-9a-f]{40}"\}$/



=== TEST 3: the key a login made in place of an expired one authenticates
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::relog_new"
--- error_code: 200
--- response_body
relog



=== TEST 4: the expired key it replaced stays refused
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::relog_old"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 5: the key authtokenctl token made in place of an expired one authenticates
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::ctlexp_new"
--- error_code: 200
--- response_body
ctlexp



=== TEST 6: the key backfill made in place of an expired one authenticates
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::bf_new"
--- error_code: 200
--- response_body
bf



=== TEST 7: a token made without token_ttl still authenticates (never expires)
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::plain"
--- error_code: 200
--- response_body
plain
