# The module's behaviour beyond the DRF captures: exact header bytes,
# keywords, variables, expiry, malformed records, and playing by nginx's
# rules (satisfy, limit_except, error_page, subrequests, internal redirects).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;

our $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
our $bob   = '2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726';
our $old   = '0ff1ce0ff1ce0ff1ce0ff1ce0ff1ce0ff1ce0ff1';
our $utf8  = "caf\xc3\xa9";   # a valid UTF-8 key nobody has
our $unknown = 'feedfacefeedfacefeedfacefeedfacefeedface';

redis_start();
seed_token($alice, uid => 7, user => 'alice', active => 1);
seed_token($bob, uid => 8, user => 'bob', active => 0);
seed_token($old, uid => 9, user => 'olga', active => 1, expires => 1000000000);
# A record the module cannot read: no user field.
redis_cmd('HSET', token_key('garbled'),
          uid => 10, active => 1);

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<'_EOC_' . ($block->http_config // ''));
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_
    $block->set_value(user_files => ">>> secret.txt\nthe secret\n")
        unless defined $block->user_files;
});

run_tests();

__DATA__

=== TEST 1: a valid token reaches the upstream with the user's name and id
--- config
    location /api/ {
        auth_token on;
        proxy_set_header X-User $auth_token_user;
        proxy_set_header X-Uid $auth_token_user_id;
        proxy_set_header X-Status $auth_token_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo/;
    }
    location /echo/ {
        return 200 "$http_x_user $http_x_uid $http_x_status\n";
    }
--- request
GET /api/x
--- more_headers
Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 200
--- response_body
alice 7 ok
--- no_error_log
[error]



=== TEST 2: vertical tab and form feed separate like spaces (bytes.split)
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token\x0b\x0c$::alice"
--- error_code: 200
--- response_body
the secret



=== TEST 3: a latin-1 byte in the key is an invalid character
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token abc\xe9"
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
Content-Type: application/json
--- response_body chomp
{"detail":"Invalid token header. Token string should not contain invalid characters."}



=== TEST 4: a valid UTF-8 key nobody has is simply an invalid token
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token $::utf8"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 5: an overlong UTF-8 sequence is an invalid character, as in Python
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token \xc0\xaf"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token header. Token string should not contain invalid characters."}



=== TEST 6: several keywords are accepted; the first is the challenge
--- config
    location /s/ {
        auth_token on;
        auth_token_keyword Token Bearer;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: bearer 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 200
--- response_body
the secret



=== TEST 7: the challenge is the first configured keyword
--- config
    location /s/ {
        auth_token on;
        auth_token_keyword Bearer Token;
        alias html/;
    }
--- request
GET /s/secret.txt
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer
--- response_body chomp
{"detail":"Authentication credentials were not provided."}



=== TEST 8: a keyword that is not configured is not ours
--- config
    location /s/ {
        auth_token on;
        auth_token_keyword Bearer;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 401
--- response_body chomp
{"detail":"Authentication credentials were not provided."}



=== TEST 9: $auth_token_status is "missing"
--- config
    location /s/ {
        auth_token on;
        add_header X-Status $auth_token_status always;
        add_header X-User $auth_token_user always;
        alias html/;
    }
--- request
GET /s/secret.txt
--- error_code: 401
--- response_headers
X-Status: missing
!X-User



=== TEST 10: $auth_token_status is "malformed"
--- config
    location /s/ {
        auth_token on;
        add_header X-Status $auth_token_status always;
        add_header X-User $auth_token_user always;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token
--- error_code: 401
--- response_headers
X-Status: malformed
!X-User



=== TEST 11: $auth_token_status is "invalid"
--- config
    location /s/ {
        auth_token on;
        add_header X-Status $auth_token_status always;
        add_header X-User $auth_token_user always;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token nope
--- error_code: 401
--- response_headers
X-Status: invalid
!X-User



=== TEST 12: $auth_token_status is "inactive", and the inactive user's name is not given out
--- config
    location /s/ {
        auth_token on;
        add_header X-Status $auth_token_status always;
        add_header X-User $auth_token_user always;
        add_header X-User-Id $auth_token_user_id always;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token 2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726
--- error_code: 401
--- response_headers
X-Status: inactive
!X-User
!X-User-Id



=== TEST 13: $auth_token_status is "ok"
--- config
    location /s/ {
        auth_token on;
        add_header X-Status $auth_token_status always;
        add_header X-User $auth_token_user always;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 200
--- response_headers
X-Status: ok
X-User: alice



=== TEST 14: an expired token is an invalid token
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token $::old"
--- error_code: 401
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 15: a record the module cannot read fails closed with 503
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token garbled
--- error_code: 503
--- response_headers
Retry-After: 1
Content-Type: application/json
!WWW-Authenticate
--- response_body chomp
{"detail":"Service temporarily unavailable, try again later."}
--- error_log
malformed token record



=== TEST 16: HEAD gets the 401 status and headers without a body
--- config
    location /s/ { auth_token on; alias html/; }
--- request
HEAD /s/secret.txt
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
Content-Type: application/json
--- response_body



=== TEST 17: auth_token is inherited from the server level
--- config
    auth_token on;
    location /s/ { alias html/; }
--- request
GET /s/secret.txt
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
Content-Type: application/json
--- response_body chomp
{"detail":"Authentication credentials were not provided."}



=== TEST 18: "auth_token off" turns an inherited check off
--- config
    auth_token on;
    location /open/ { auth_token off; alias html/; }
--- request
GET /open/secret.txt
--- error_code: 200
--- response_headers
!WWW-Authenticate
--- response_body
the secret



=== TEST 19: satisfy any: an allowed address needs no token
--- config
    location /s/ {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_token on;
        alias html/;
    }
--- request
GET /s/secret.txt
--- error_code: 200
--- response_body
the secret



=== TEST 20: satisfy any: when every check fails, DRF's 401 body and challenge
--- config
    location /s/ {
        satisfy any;
        deny all;
        auth_token on;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token nope
--- error_code: 401
--- response_headers
WWW-Authenticate: Token
--- response_body chomp
{"detail":"Invalid token."}



=== TEST 21: satisfy any: a valid token passes a "deny all"
--- config
    location /s/ {
        satisfy any;
        deny all;
        auth_token on;
        alias html/;
    }
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 200
--- response_body
the secret



=== TEST 22: satisfy any with auth_basic: valid basic credentials pass without a token
--- config
    location /s/ {
        satisfy any;
        auth_basic "api";
        auth_basic_user_file ../html/htpasswd;
        auth_token on;
        alias html/;
    }
--- user_files
>>> secret.txt
the secret
>>> htpasswd
carol:{PLAIN}pass
--- request
GET /s/secret.txt
--- more_headers
Authorization: Basic Y2Fyb2w6cGFzcw==
--- error_code: 200
--- response_body
the secret



=== TEST 23: limit_except: the listed methods go without a token
--- config
    location /s/ {
        limit_except GET { auth_token on; }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo/;
    }
    location /echo/ { return 200 "$request_method\n"; }
--- request
GET /s/x
--- error_code: 200
--- response_body
GET



=== TEST 24: limit_except: other methods need a token
--- config
    location /s/ {
        limit_except GET { auth_token on; }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo/;
    }
    location /echo/ { return 200 "$request_method\n"; }
--- request
POST /s/x
--- error_code: 401
--- response_body chomp
{"detail":"Authentication credentials were not provided."}



=== TEST 25: error_page 401 takes over the body, like any nginx error
--- config
    location /s/ {
        auth_token on;
        error_page 401 /denied.json;
        alias html/;
    }
    location = /denied.json { default_type application/json; alias html/denied.json; }
--- user_files
>>> secret.txt
the secret
>>> denied.json
{"error":"custom"}
--- request
GET /s/secret.txt
--- error_code: 401
--- response_body
{"error":"custom"}



=== TEST 26: an upstream's own 401 passes through untouched
--- config
    location /api/ {
        auth_token on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
    }
    location /upstream/ {
        default_type text/plain;
        return 401 "upstream says no\n";
    }
--- request
GET /api/x
--- more_headers
Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b
--- error_code: 401
--- response_headers
Content-Type: text/plain
!WWW-Authenticate
--- response_body
upstream says no



=== TEST 27: subrequests skip the access phase, as with auth_basic
--- config
    location = /page.html { ssi on; alias html/page.html; }
    location /s/ { auth_token on; alias html/; }
--- user_files
>>> secret.txt
the secret
>>> page.html
before <!--# include virtual="/s/secret.txt" --> after
--- request
GET /page.html
--- error_code: 200
--- response_body
before the secret
 after



=== TEST 28: an internal redirect is checked again in its new location
--- config
    location /old/ {
        try_files /nonexistent @api;
    }
    location @api {
        auth_token on;
        root html;
    }
--- request
GET /old/x
--- error_code: 401
--- response_body chomp
{"detail":"Authentication credentials were not provided."}



=== TEST 29: no log line of ours carries a valid key, even at debug level
--- log_level: debug
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token $::alice"
--- error_code: 200
--- no_error_log eval
# nginx itself prints request headers at debug level ("http header:");
# nothing else may mention the key.
qr/^(?!.*http header: ).*\Q$::alice\E/



=== TEST 30: no log line of ours carries an inactive user's key, even at debug level
--- log_level: debug
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token $::bob"
--- error_code: 401
--- no_error_log eval
# nginx itself prints request headers at debug level ("http header:");
# nothing else may mention the key.
qr/^(?!.*http header: ).*\Q$::bob\E/
--- error_log
user "bob" of the token is inactive



=== TEST 31: no log line of ours carries an unknown key, even at debug level
--- log_level: debug
--- config
    location /s/ { auth_token on; alias html/; }
--- request
GET /s/secret.txt
--- more_headers eval
"Authorization: Token $::unknown"
--- error_code: 401
--- no_error_log eval
# nginx itself prints request headers at debug level ("http header:");
# nothing else may mention the key.
qr/^(?!.*http header: ).*\Q$::unknown\E/
--- error_log
token was not found for token authentication
