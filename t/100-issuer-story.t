# The issuer's story end to end, through nginx + module + authtokend:
# users made with authtokenctl get a token at once that nginx accepts;
# obtain-token (form, JSON, multipart) answers that same token; rotation,
# revocation, deactivation, activation and deletion reach nginx at once.
# Each step has its own user, set up here in the story's order, so the
# blocks below check the state each step left.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
authtokend_start();

# 1. A superuser made with the CLI has a token at once.
ctl_ok({ stdin => "s3cret-admin\n" }, 'createuser', 'admin', '--superuser',
       '--password-stdin', '--email', 'admin@example.org');
our $admin = token_of('admin');

# 2. token -r rotates: the old key must fail, the new one work.
ctl_ok({ stdin => "rot-pass\n" }, 'createuser', 'rot', '--password-stdin');
our $rot_old = token_of('rot');
our $rot_new = token_of('rot', '-r');

# 3. deactivate, activate, deleteuser, revoke.
for my $u (qw(deact react gone revoked)) {
    ctl_ok({ stdin => "$u-pass\n" }, 'createuser', $u, '--password-stdin');
}
our $deact = token_of('deact');
ctl_ok('deactivate', 'deact');
our $react = token_of('react');
ctl_ok('deactivate', 'react');
ctl_ok('activate', 'react');
our $gone = token_of('gone');
ctl_ok('deleteuser', 'gone');
our $revoked = token_of('revoked');
ctl_ok('revoke', 'revoked');
# After the revocation, obtain-token makes a new token (checked in TEST 15).
# Made here, not in the block's --- init: upstream Test::Nginx evaluates a
# block's sections before its init runs.
our $revoked_new = AuthToken::Issuer::obtain_token('revoked', 'revoked-pass');
die "same token after revoke" if $revoked_new eq $revoked;

# 4. With auto_create_token off, a user has no token until it logs in.
ctl_ok({ stdin => "late-pass\n" }, 'createuser', 'late', '--password-stdin',
       '--no-auto-create-token');

# 5. A user without a token whose first login creates it (TEST 17 checks
# that token through nginx). Made here, not in the block's --- init, for
# the same reason as step 3's.
our $first_login_token;
ctl_ok({ stdin => "first-pass\n" }, 'createuser', 'first', '--password-stdin',
       '--no-auto-create-token');
$first_login_token = AuthToken::Issuer::obtain_token('first', 'first-pass');

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

=== TEST 1: the superuser's token from `authtokenctl token` authenticates at once
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::admin"
--- error_code: 200
--- response_body
admin



=== TEST 2: obtain-token with a form body answers that same token
--- request
POST /api-token-auth/
username=admin&password=s3cret-admin
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_headers
Content-Type: application/json
Allow: POST, OPTIONS
--- response_body eval
qq{{"token":"$::admin"}}



=== TEST 3: obtain-token with a JSON body answers that same token
--- request
POST /api-token-auth/
{"username": "admin", "password": "s3cret-admin"}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 200
--- response_body eval
qq{{"token":"$::admin"}}



=== TEST 4: obtain-token with a multipart body answers that same token
--- raw_request eval
my $b = "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n"
      . "admin\r\n--XyZ\r\nContent-Disposition: form-data; "
      . "name=\"password\"\r\n\r\ns3cret-admin\r\n--XyZ--\r\n";
"POST /api-token-auth/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Type: multipart/form-data; boundary=XyZ\r\n"
. "Content-Length: " . length($b) . "\r\n\r\n$b"
--- error_code: 200
--- response_body eval
qq{{"token":"$::admin"}}



=== TEST 5: a wrong password gets DRF's 400
--- request
POST /api-token-auth/
username=admin&password=nope
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body chomp
{"non_field_errors":["Unable to log in with provided credentials."]}



=== TEST 6: after `token rot -r` the old key is refused
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::rot_old"
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 7: after `token rot -r` the new key works
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::rot_new"
--- error_code: 200
--- response_body
rot



=== TEST 8: and obtain-token answers the new key
--- request
POST /api-token-auth/
username=rot&password=rot-pass
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body eval
qq{{"token":"$::rot_new"}}



=== TEST 9: a deactivated user's token: "User inactive or deleted."
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::deact"
--- error_code: 401
--- response_body chomp
{"detail":"User inactive or deleted."}



=== TEST 10: a deactivated user cannot log in
--- request
POST /api-token-auth/
username=deact&password=deact-pass
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body chomp
{"non_field_errors":["Unable to log in with provided credentials."]}



=== TEST 11: activated again, the same token works again
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::react"
--- error_code: 200
--- response_body
react



=== TEST 12: a deleted user's token is an invalid token
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::gone"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 13: a deleted user cannot log in
--- request
POST /api-token-auth/
username=gone&password=gone-pass
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body chomp
{"non_field_errors":["Unable to log in with provided credentials."]}



=== TEST 14: a revoked token is refused
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::revoked"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 15: after revoke, obtain-token creates a new token that works
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::revoked_new"
--- error_code: 200
--- response_body
revoked



=== TEST 16: with auto_create_token off the first login creates the token
--- request
POST /api-token-auth/
username=late&password=late-pass
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body_like: ^\{"token":"[0-9a-f]{40}"\}$



=== TEST 17: the token a first login created authenticates through nginx
--- request
GET /api/hello
--- more_headers eval
"Authorization: Token $::first_login_token"
--- error_code: 200
--- response_body
first
