# The WWW-Authenticate entry the module adds is a complete header entry, so
# nginx >= 1.23, which walks such entries through their `next` links, never
# reads uninitialised memory (ngx_list_push memory is not zeroed).  Two
# places in nginx walk it:
#   - auth_request copies a 401 subrequest's WWW-Authenticate entries into
#     the main request by following `next` (auth_token_verify as the target);
#   - under "satisfy any", when a later access check says OK, the core hides
#     every challenge by following `next` (the module's check runs last in
#     the access phase, so today only a third-party handler after it would
#     get there; the blocks pin the behaviour).
# An incomplete entry crashes the worker under ASan, which fills new
# allocations, and valgrind reports it: the blocks matter most against the
# newer nginx (make test-nginx-matrix).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;

redis_start();
seed_token('2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726',
           uid => 8, user => 'bob', active => 0);

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<'_EOC_');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_
    $block->set_value(user_files => ">>> secret.txt\nthe secret\n");
    $block->set_value(config => <<'_EOC_');
    location /s/ {
        satisfy any;
        auth_token on;
        allow 127.0.0.1;
        deny all;
        alias html/;
    }
    location /r/ {
        auth_request /auth;
        alias html/;
    }
    location = /auth {
        internal;
        auth_token_verify;
    }
_EOC_
    $block->set_value(no_error_log => "[alert]\n[crit]\nsignal\n");
    if ($block->request =~ m{^GET /s/}) {
        $block->set_value(error_code => 200);
        $block->set_value(response_body => "the secret\n");
        $block->set_value(response_headers => "!WWW-Authenticate\n");
    } else {
        $block->set_value(error_code => 401);
        $block->set_value(response_headers => "WWW-Authenticate: Token\n");
    }
});

run_tests();

__DATA__

=== TEST 1: auth_request to auth_token_verify: no token, 401 with exactly one challenge
--- request
GET /r/secret.txt



=== TEST 2: auth_request to auth_token_verify: an unknown token, 401 with the challenge (after a Redis lookup)
--- request
GET /r/secret.txt
--- more_headers
Authorization: Token feedfacefeedfacefeedfacefeedfacefeedface



=== TEST 3: auth_request to auth_token_verify: an inactive user's token, 401 with the challenge
--- request
GET /r/secret.txt
--- more_headers
Authorization: Token 2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726



=== TEST 4: auth_request to auth_token_verify: a malformed header, 401 with the challenge
--- request
GET /r/secret.txt
--- more_headers
Authorization: Token a b



=== TEST 5: satisfy any: an allowed client without a token gets the page and no challenge
--- request
GET /s/secret.txt



=== TEST 6: satisfy any: an allowed client with an unknown token gets the page and no challenge
--- request
GET /s/secret.txt
--- more_headers
Authorization: Token feedfacefeedfacefeedfacefeedfacefeedface
