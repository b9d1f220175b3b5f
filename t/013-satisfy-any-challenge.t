# Under "satisfy any", a client that another access check lets in after the
# token check said 401 gets the page, without the module's challenge.  Since
# nginx 1.23 the core then walks the WWW-Authenticate entries through their
# `next` links to hide them, so every header entry the module adds must be
# complete (ngx_list_push memory is not zeroed).  An incomplete entry reads
# uninitialised memory there: valgrind reports it, and under ASan (which
# fills new allocations) the worker crashes.  The blocks matter most run
# against the newer nginx (make test-nginx-matrix, make test-asan).
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
    $block->set_value(http_config => <<'_EOC_' . ($block->http_config // ''));
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
_EOC_
    $block->set_value(request => 'GET /s/secret.txt');
    $block->set_value(error_code => 200);
    $block->set_value(response_body => "the secret\n");
    $block->set_value(response_headers => "!WWW-Authenticate\n");
    $block->set_value(no_error_log => "[alert]\n[crit]\nsignal\n");
});

run_tests();

__DATA__

=== TEST 1: satisfy any: an allowed client without a token gets the page and no challenge



=== TEST 2: satisfy any: an allowed client with an unknown token gets the page and no challenge (after a Redis lookup)
--- more_headers
Authorization: Token feedfacefeedfacefeedfacefeedfacefeedface



=== TEST 3: satisfy any: an allowed client with an inactive user's token gets the page and no challenge
--- more_headers
Authorization: Token 2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726



=== TEST 4: satisfy any: an allowed client with a malformed header gets the page and no challenge
--- more_headers
Authorization: Token a b
