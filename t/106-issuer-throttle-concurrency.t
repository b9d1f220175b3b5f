# Concurrent logins cannot get past the failed-login throttle: the check
# reserves the attempt in the same Redis script, so N wrong passwords sent
# at once are checked at most `limit` times and the rest get 429, per
# (username, address) and per address. The figures are printed (diag).
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;

# A hash that costs something, as in production: the race is the time
# between the check and the recorded failure. The address comes from
# X-Real-IP (set in the environment, which an old daemon would ignore).
$ENV{AUTHTOKEN_PBKDF2_ITERATIONS} = 200000;
issuer_setup();
ctl_ok({ stdin => "right\n" }, 'createuser', 'target', '--password-stdin');
$ENV{AUTHTOKEN_REAL_IP_HEADER} = 'X-Real-IP';
authtokend_start('--max-connections', '300');
my $port = authtokend_port();

# Opens every connection and sends every request before reading any.
sub burst {
    my (@requests) = @_;
    my @socks = map { login_send($port, @$_) } @requests;
    my %count;
    for my $s (@socks) {
        my $res = login_read($s, 60);
        $count{ $res ? $res->{status} : 'timeout' }++;
    }
    return \%count;
}
sub show { my $c = shift; join ', ', map { "$c->{$_} x $_" } sort keys %$c }

my $one_user = burst(map { ['target', 'wrong',
                            headers => { 'X-Real-IP' => '192.0.2.1' }] } 1 .. 40);
diag('40 wrong passwords at once for one user: ' . show($one_user));
ok(($one_user->{400} // 0) <= 5,
   'at most the limit (5/min) of them are checked');
is(($one_user->{400} // 0) + ($one_user->{429} // 0), 40,
   'the rest are throttled');

my $one_addr = burst(map { ["user$_", 'wrong',
                            headers => { 'X-Real-IP' => '192.0.2.2' }] } 1 .. 120);
diag('120 failed logins at once from one address: ' . show($one_addr));
ok(($one_addr->{400} // 0) <= 20,
   'at most the address limit (20/min) of them are checked');
is(($one_addr->{400} // 0) + ($one_addr->{429} // 0), 120,
   'the rest are throttled');

# The owner, from elsewhere, is not locked out by any of this.
is(login($port, 'target', 'right',
         headers => { 'X-Real-IP' => '192.0.2.3' })->{status}, 200,
   'the owner logs in from another address');

# In-flight attempts are capped per username, whatever the address: 30
# wrong passwords at once from 30 addresses are not all hashed at once.
ctl_ok({ stdin => "right\n" }, 'createuser', 'spread', '--password-stdin');
my $spread = burst(map { ['spread', 'wrong',
                          headers => { 'X-Real-IP' => "198.51.100.$_" }] } 1 .. 30);
diag('30 wrong passwords at once for one user from 30 addresses: '
     . show($spread));
ok(($spread->{429} // 0) > 0, 'attempts in flight per username are capped');
is(($spread->{400} // 0) + ($spread->{429} // 0), 30, 'each gets 400 or 429');

done_testing();
