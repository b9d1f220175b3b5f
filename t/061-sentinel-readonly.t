# authtokend through sentinel:// leaves a primary that was demoted under it:
# a write answered -READONLY drops the connection, and the next request asks
# Sentinel again and goes to the new primary. A stand-in Sentinel on
# loopback names the primary (read from a file, so the test can switch it)
# and never publishes +switch-master: only the -READONLY rule can move the
# daemon. Nodes: the file's redis-server and one replica of it.
use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup qw(track);
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Topology;

my $dir = issuer_setup();
ctl_ok({ stdin => "pw\n" }, 'createuser', 'lena', '--password-stdin');
my $first = redis_port();
my $second = replica_start('second',
                           options => ['--repl-diskless-sync-delay', '0']);

# The stand-in: answers every command with the address in $dir/primary
# (an array, as for SENTINEL get-master-addr-by-name; SUBSCRIBE gets the
# same, which the daemon takes as subscribed, and then hears nothing).
sub name_primary {
    open my $fh, '>', "$dir/primary.tmp" or die $!;
    print $fh $_[0];
    close $fh;
    rename "$dir/primary.tmp", "$dir/primary" or die $!;
}
name_primary($first);
my $listen = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                   LocalPort => 0, ReuseAddr => 1)
    or die "listen: $!";
my $standin = fork // die "fork: $!";
if ($standin == 0) {
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $listen->accept) {
        # One process per connection: the daemon's subscription stays open.
        my $kid = fork // die "fork: $!";
        if ($kid) { close $c; next }
        my $buf = '';
        while (sysread($c, $buf, 4096, length $buf)) {
            # One whole command: *N, then N bulk strings.
            next unless $buf =~ /\A\*(\d+)\r\n/;
            my $n = $1;
            my @parts = $buf =~ /\$\d+\r\n[^\r]*\r\n/g;
            next if @parts < $n;
            $buf = '';
            open my $fh, '<', "$dir/primary" or last;
            my $port = <$fh>;
            print $c "*2\r\n\$9\r\n127.0.0.1\r\n\$" . length($port)
                   . "\r\n$port\r\n";
        }
        POSIX::_exit(0);
    }
    POSIX::_exit(0);
}
track($standin);    # killed and reaped at the end

$ENV{AUTHTOKEN_REDIS} = 'sentinel://127.0.0.1:' . $listen->sockport . '/authtoken';
authtokend_start('--throttle-user-rate', '100/min', '--throttle-addr-rate', 'off');

my ($status) = obtain_direct('lena', 'wrong');
is($status, 400, 'a failed login through the stand-in Sentinel (throttle write)');

# The switch, as Sentinel would make it, but without telling anyone.
node_cmd($second, 'REPLICAOF', 'NO', 'ONE');
redis_cmd('REPLICAOF', '127.0.0.1', $second);
name_primary($second);
wait_until(10, sub {
    (eval { node_info($first, 'replication')->{master_link_status} } // '') eq 'up'
}) // die 'the old primary did not follow the new one';

my @statuses = map { (obtain_direct('lena', 'wrong'))[0] } 1 .. 3;
is($statuses[0], 503, 'the write on the demoted primary fails (-READONLY): 503');
is("@statuses[1, 2]", '400 400',
   'the next requests go to the new primary, named by Sentinel');
like(authtokend_log(), qr/READONLY/, 'the daemon logged the -READONLY');
($status) = obtain_direct('lena', 'pw');
is($status, 200, 'and lena logs in');

done_testing();
