# Every TokenAuthentication case captured from a real DRF 3.14
# (t/fixtures/drf-oracle-public.json, the hello_* view) must come out
# of nginx the same: status, WWW-Authenticate, Content-Type and JSON body.
# The blocks are generated from the fixture, in Test::Nginx::Socket's format.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::Oracle;
use AuthToken::TestRedis;

# Fresh keys for the placeholders, seeded as the issuer would.
my $alice = join '', map { sprintf '%02x', int rand 256 } 1 .. 20;
my $bob   = join '', map { sprintf '%02x', int rand 256 } 1 .. 20;
my $fill = oracle_placeholders(alice => $alice, bob => $bob);

redis_start();
seed_token($alice, uid => 1, user => 'alice', active => 1);
seed_token($bob,   uid => 2, user => 'bob',   active => 0);

our (@raw, @body);
my $spec = oracle_spec(qr/^hello_/, $fill, 'WWW-Authenticate');

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<'_EOC_');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_
    # The DRF view answers {"user": "<username>"} to an authenticated GET;
    # here the upstream builds the same body from $auth_token_user.
    $block->set_value(config => <<'_EOC_');
    location /api/ {
        auth_token on;
        proxy_set_header X-User $auth_token_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
    }
    location /upstream/ {
        default_type application/json;
        return 200 '{"user":"$http_x_user"}';
    }
_EOC_
    # nginx's own debug log prints request headers; t/011 checks that no
    # line of ours ever carries a key.
    $block->set_value(no_error_log => "[error]\n[alert]\n");
});

Test::Base::spec_string($spec);
run_tests();
