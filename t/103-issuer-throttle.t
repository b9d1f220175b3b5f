# Failed logins are throttled per username and per client address, with
# DRF's 429 wording and Retry-After; counters live in Redis, so a second
# authtokend instance shares them. The client address comes from
# X-Real-IP only when nginx (a trusted proxy, 127.0.0.1) sends it.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
authtokend_start('--throttle-user-rate', '3/min', '--throttle-addr-rate',
                 '6/min');
ctl_ok({ stdin => "right\n" }, 'createuser', 'victim', '--password-stdin');
ctl_ok({ stdin => "right\n" }, 'createuser', 'other', '--password-stdin');

# Three wrong passwords for victim from one address...
our @codes = map { (obtain_direct('victim', 'wrong'))[0] } 1 .. 3;
# ...then even the right password waits: the username is throttled.
our ($s429, $h429, $b429) = obtain_direct('victim', 'right');
# Another user from the same address is still fine (3 of 6 failures).
our ($s_other) = obtain_direct('other', 'right');
# Three more failures for unknown names from the same address fill the
# address window; then every username is refused from there...
obtain_direct("nobody$_", 'x') for 1 .. 3;
our ($s_addr, undef, $b_addr) = obtain_direct('other', 'right');
# ...but not from another client behind the trusted proxy.
our ($s_elsewhere) = obtain_direct('other', 'right',
                                   'X-Real-IP' => '198.51.100.7');
our $keys = redis_cmd('KEYS', 'authtoken:throttle:*');

is("@codes", '400 400 400', 'three failures answer 400');
is($s429, 429, 'the fourth attempt is throttled');
like($b429, qr/^\{"detail":"Request was throttled\. Expected available in (\d+) seconds?\."\}$/,
     "DRF's wording");
my ($n) = $b429 =~ /in (\d+) second/;
is($h429->{'retry-after'}, $n, 'Retry-After says the same number');
ok($n > 50 && $n <= 60, 'about a minute');
is($s_other, 200, 'another user from the same address still logs in');
is($s_addr, 429, 'until the address window is full');
is($s_elsewhere, 200, 'X-Real-IP from the trusted proxy is the client');
is(scalar(grep { /^authtoken:throttle:user:victim$/ } @$keys), 1,
   'counters live in Redis');

# A second daemon instance on the same Redis shares the counters.
our $first_port = authtokend_port();
authtokend_start('--throttle-user-rate', '3/min');
our ($s_second) = obtain_direct('victim', 'right');
is($s_second, 429, 'a second instance sees the same window');

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => <<'_EOC_');
    location = /api-token-auth/ {
        proxy_set_header X-Real-IP $remote_addr;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: through nginx, the throttled user gets 429 with Retry-After
--- request
POST /api-token-auth/
username=victim&password=right
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 429
--- response_headers_like
Retry-After: \d+
Content-Type: application/json
--- response_body_like: ^\{"detail":"Request was throttled\. Expected available in \d+ seconds?\."\}$
