# With the cache on, a token revoked, regenerated, or whose user is
# deactivated through authtokenctl is refused by nginx at once: measured
# over 100 trials from the moment the command returns. The target is 50 ms
# at p99; the test fails past 100 ms at p99, or when one trial is still
# accepted after 1 s.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::CacheEdge;
use AuthToken::Issuer;

issuer_setup();
ctl_ok({ stdin => "pw\n" }, 'createuser', 'rita', '--password-stdin');

cache_nginx_start(cache => 'valid=1h invalid=1h');

# Until each worker is subscribed, the cache is bypassed.
wait_subscribed(3);

my @actions = (
    [regenerate => sub { token_of('rita', '-r') }],
    [revoke     => sub { ctl_ok('revoke', 'rita'); undef }],
    [deactivate => sub { ctl_ok('deactivate', 'rita'); undef }],
);

my (@latency, @failures);
for my $trial (1 .. 100) {
    my ($name, $act) = @{ $actions[$trial % @actions] };
    ctl_ok('activate', 'rita');
    my $token = token_of('rita');
    get($token);
    my $res = get($token);
    unless ($res->{status} == 200 && $res->{headers}{'x-cache'} eq 'HIT') {
        push @failures, "trial $trial: not cached before $name";
        next;
    }

    $act->();
    my $acked = time;
    my $refused;
    while (time - $acked < 1) {
        my $r = get($token);
        if ($r->{status} == 401) {
            $refused = time - $acked;
            last;
        }
    }
    if (defined $refused) {
        push @latency, $refused;
    } else {
        push @failures, "trial $trial: still accepted 1 s after $name";
    }
}

is(scalar @failures, 0, 'every revocation reached nginx within a second')
    or diag(join "\n", @failures[0 .. ($#failures < 9 ? $#failures : 9)]);
is(scalar @latency, 100, '100 trials measured');

my @sorted = sort { $a <=> $b } @latency;
my $p50 = $sorted[int(@sorted * 0.50)] // 9;
my $p99 = $sorted[int(@sorted * 0.99) - 1] // 9;
diag(sprintf 'revocation to refusal through the cache: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d trials)',
     1000 * $p50, 1000 * $p99, 1000 * ($sorted[-1] // 9), scalar @sorted);
# The documented figure is 50 ms at p99; twice that is the margin for a
# loaded CI machine (the ASan run included). The per-trial loop above
# gives up at 1 s, so a 1 s bound here could never fail.
cmp_ok($p99, '<', 0.100, 'p99 within 100 ms (the documented 50 ms, with a 2x margin)');

nginx_stop();
authtokend_stop();
done_testing();
