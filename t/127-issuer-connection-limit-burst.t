# authtokend under a burst of connections past max_connections: the ones
# over the limit are closed at once (docs/authtokend.md, "Connections,
# threads and limits"), and the daemon keeps serving afterwards, without
# leaking descriptors or threads, and still stops on SIGTERM with status 0.
# libmicrohttpd 0.9.75 deadlocks its event loop for good when it is handed
# a connection over its own limit ("Server reached connection limit"), so
# the daemon must never hand it one, however the counts race.
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Hostile;

$SIG{PIPE} = 'IGNORE';

my $MAX = 8;
issuer_setup();
authtokend_start('--max-connections', $MAX, '--read-timeout', '2',
                 '--request-timeout', '4');
my $port = authtokend_port();
my $pid = authtokend_pid();

sub proc_count {
    my ($what) = @_;
    if ($what eq 'fds') {
        opendir my $d, "/proc/$pid/fd" or return -1;
        return scalar grep { /^\d+$/ } readdir $d;
    }
    open my $fh, '<', "/proc/$pid/status" or return -1;
    while (<$fh>) { return $1 if /^Threads:\s+(\d+)/ }
    return -1;
}

sub healthz {
    my $r = raw_http($port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                     . "Connection: close\r\n\r\n", 2);
    return $r ? $r->{status} : 0;
}

is(healthz(), 200, 'before the burst: /healthz answers');
my ($fds_before, $threads_before) = (proc_count('fds'), proc_count('threads'));

# Clients, each opening connection after connection with a few pipelined
# requests on it, for 3 seconds: several times max_connections at once.
my $REQUESTS = ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" x 3)
    . "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
my @kids;
for (1 .. 24) {
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        my $end = time + 3;
        while (time < $end) {
            my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                          Timeout => 2) or next;
            syswrite($s, $REQUESTS);
            my $sel = IO::Select->new($s);
            my $buf;
            while ($sel->can_read(2)) { last unless sysread($s, $buf, 65536) }
            close $s;
        }
        POSIX::_exit(0);
    }
    push @kids, $kid;
}
waitpid($_, 0) for @kids;

# Connections over the limit were closed; the rest end within the
# keep-alive and request timeouts. Then the daemon must answer again.
my ($status, $t0) = (0, time);
while (time - $t0 < 8) {
    $status = healthz();
    last if $status == 200;
    sleep 0.2;
}
is($status, 200, 'after the burst: /healthz answers again')
    or diag(join "\n", grep { !/not complete in time/ }
                       split /\n/, authtokend_log());

# No connection's descriptor stays open: what remains beyond the start is
# one Redis connection per worker thread the burst started (workers are
# started as requests need them, at most one per connection slot).
my ($fds, $threads) = (0, 0);
$t0 = time;
while (time - $t0 < 8) {
    ($fds, $threads) = (proc_count('fds'), proc_count('threads'));
    last if $fds <= $fds_before + ($threads - $threads_before);
    sleep 0.2;
}
cmp_ok($fds, '<=', $fds_before + ($threads - $threads_before),
       "no connection left open ($fds_before descriptors and "
       . "$threads_before threads before, $fds and $threads after)");
cmp_ok($threads, '<=', $threads_before + $MAX,
       'at most max_connections worker threads started');

my $exit = authtokend_stop();
is($exit, 0, 'SIGTERM after the burst: exit status 0');

done_testing();
