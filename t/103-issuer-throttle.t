# Failed logins are throttled, with DRF's 429 wording and Retry-After;
# counters live in Redis, so a second authtokend instance shares them.
#   - per (username, client address), hard: the guesser at one address is
#     stopped, the account's owner at another address is not;
#   - per client address, hard;
#   - per username from anywhere, soft: a progressive delay, never a 429.
# Failures of inactive users count; Retry-After runs from the oldest
# failure in the window; every counter expires.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;

issuer_setup();
ctl_ok({ stdin => "right\n" }, 'createuser', $_, '--password-stdin')
    for qw(victim other timer popular);
ctl_ok({ stdin => "right\n" }, 'createuser', 'sleeper', '--password-stdin',
       '--inactive');
sub from { ('X-Real-IP' => $_[0]) }

# --- The soft per-username window: delays, never refuses. ---
authtokend_start('--throttle-user-rate', '2/min', '--throttle-max-delay', '2',
                 '--throttle-user-addr-rate', 'off', '--throttle-addr-rate',
                 'off', '--real-ip-header', 'X-Real-IP');
our @soft = map { login(authtokend_port(), 'popular', 'wrong',
                        headers => { from("192.0.2.$_") }) } 1 .. 4;
our $soft_ok = login(authtokend_port(), 'popular', 'right',
                     headers => { from('192.0.2.99') });
is(join(' ', map { $_->{status} } @soft), '400 400 400 400',
   'a full username window never answers 429');
ok($soft[0]{elapsed} < 0.8 && $soft[1]{elapsed} < 0.8,
   'the first failures are not delayed');
ok($soft[2]{elapsed} >= 0.95, 'the first one past the window waits 1 s')
    or diag("waited $soft[2]{elapsed} s");
ok($soft[3]{elapsed} >= 1.95, 'the next one twice as long')
    or diag("waited $soft[3]{elapsed} s");
is($soft_ok->{status}, 200, 'the owner still logs in, later');
ok($soft_ok->{elapsed} >= 1.95 && $soft_ok->{elapsed} < 4,
   'after throttle_max_delay at most') or diag("waited $soft_ok->{elapsed} s");
like(authtokend_log(), qr/\[warn\] obtain-token for "popular" from 192\.0\.2\.3: delayed 1000 ms/,
     'the delay is logged');

# --- The hard windows. ---
authtokend_start('--throttle-user-addr-rate', '3/min', '--throttle-addr-rate',
                 '6/min', '--real-ip-header', 'X-Real-IP');
my $port = authtokend_port();
# Three wrong passwords for victim from one address...
our @codes = map { login($port, 'victim', 'wrong', headers => { from('192.0.2.1') })->{status} } 1 .. 3;
# ...then even the right password waits there...
our $r429 = login($port, 'victim', 'right', headers => { from('192.0.2.1') });
# ...but not from another address: nobody can lock the owner out.
our $owner_elsewhere = login($port, 'victim', 'right', headers => { from('192.0.2.2') });
# Another user from the same address is still fine (3 of 6 failures).
our $s_other = login($port, 'other', 'right', headers => { from('192.0.2.1') })->{status};
# Three more failures for unknown names from the same address fill the
# address window; then every username is refused from there...
login($port, "nobody$_", 'x', headers => { from('192.0.2.1') }) for 1 .. 3;
our $r_addr = login($port, 'other', 'right', headers => { from('192.0.2.1') });
# ...but not from another client behind the trusted proxy.
our $s_elsewhere = login($port, 'other', 'right', headers => { from('198.51.100.7') })->{status};

is("@codes", '400 400 400', 'three failures answer 400');
is($r429->{status}, 429, 'the fourth attempt from that address is throttled');
like($r429->{body}, qr/^\{"detail":"Request was throttled\. Expected available in (\d+) seconds?\."\}$/,
     "DRF's wording");
my ($n) = $r429->{body} =~ /in (\d+) second/;
is($r429->{headers}{'retry-after'}, $n, 'Retry-After says the same number');
ok($n > 50 && $n <= 60, 'about a minute');
is($owner_elsewhere->{status}, 200,
   'the same user from another address still logs in');
is($s_other, 200, 'another user from the same address still logs in');
is($r_addr->{status}, 429, 'until the address window is full');
is($s_elsewhere, 200, 'X-Real-IP from the trusted proxy is the client');

# Retry-After counts from the oldest failure in the window, not the newest.
my $t0 = time;
login($port, 'timer', 'wrong', headers => { from('192.0.2.30') });
sleep 3.2;
login($port, 'timer', 'wrong', headers => { from('192.0.2.30') }) for 1 .. 2;
our $r_timer = login($port, 'timer', 'right', headers => { from('192.0.2.30') });
is($r_timer->{status}, 429, 'the window of timer is full');
my $left = 60 - (time - $t0);
ok($r_timer->{headers}{'retry-after'} <= int($left) + 1
   && $r_timer->{headers}{'retry-after'} >= int($left) - 2,
   'Retry-After is when the oldest failure leaves the window')
    or diag("Retry-After $r_timer->{headers}{'retry-after'}, expected ~$left");

# An inactive user's failed logins count, even with the right password.
our @sleeper = map { login($port, 'sleeper', 'right', headers => { from('192.0.2.40') })->{status} } 1 .. 4;
is("@sleeper", '400 400 400 429', "an inactive user's failures are counted");

# Every counter expires with its window: nothing is kept forever.
our $keys = redis_cmd('KEYS', 'authtoken:throttle:*');
ok(scalar(grep { /^authtoken:throttle:user-addr:192\.0\.2\.1\|victim$/ } @$keys),
   'counters live in Redis, per (address, username)');
for my $key (@$keys) {
    my $ttl = redis_cmd('PTTL', $key);
    my $window = $key =~ /^authtoken:throttle:user:/ ? 3600_000 : 70_000;
    ok($ttl > 0 && $ttl <= $window, "$key expires ($ttl ms)");
}

# A second daemon instance on the same Redis shares the counters.
authtokend_start('--throttle-user-addr-rate', '3/min', '--real-ip-header',
                 'X-Real-IP');
is(login(authtokend_port(), 'victim', 'right', headers => { from('192.0.2.1') })->{status},
   429, 'a second instance sees the same window');

# For the block below: nginx's own address has three failures for victim.
login(authtokend_port(), 'victim', 'wrong', headers => { from('127.0.0.1') }) for 1 .. 3;

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
