# Every obtain_* case captured from real DRF (t/fixtures/
# drf-oracle-public.json), through nginx's `location = /api-token-auth/`
# proxied to authtokend: status, Content-Type, Allow and the JSON body.
# alice (password "wonderland") and bob (inactive, "builder") are made
# with authtokenctl; {alice_token} is alice's token as the CLI reports it.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::Oracle;
use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
# The captures send many wrong passwords; throttling has its own test.
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');
ctl_ok({ stdin => "wonderland\n" }, 'createuser', 'alice', '--password-stdin');
ctl_ok({ stdin => "builder\n" }, 'createuser', 'bob', '--password-stdin',
       '--inactive');
my $alice = token_of('alice');
my $bob = token_of('bob');
my $fill = oracle_placeholders(alice => $alice, bob => $bob);

# Allow as captured; WWW-Authenticate never (no obtain_* capture has one).
our (@raw, @body);
my $spec = oracle_spec(qr/^obtain_/, $fill, 'Allow', 'WWW-Authenticate');

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => <<'_EOC_');
    location = /api-token-auth/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
    }
_EOC_
    $block->set_value(no_error_log => "[error]\n[alert]\n");
});

Test::Base::spec_string($spec);
run_tests();
