# authtokend's unix socket lets in the group of the directory it is in,
# whatever the umask. The systemd unit (packaging/authtokend.service) runs
# the daemon with UMask=0077 and the socket in /run/authtokend, a setgid
# directory of nginx's group: nginx's workers, another user, must be able
# to connect, and users outside that group must not.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use lib dirname(__FILE__) . '/lib';
use AuthToken::Issuer;
use AuthToken::Process;

plan skip_all => 'needs root, to connect as other users' if $>;

my $nobody = getpwnam('nobody') // plan skip_all => 'no user nobody';
my $nginx_group = getgrnam('nogroup') // plan skip_all => 'no group nogroup';
my $other_group = getgrnam('daemon') // plan skip_all => 'no group daemon';

issuer_setup();
my $top = tempdir('authtoken-socket-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $top;
my $run = "$top/run";            # /run/authtokend, as the unit makes it
mkdir $run or die;
chown 0, $nginx_group, $run;
chmod 02750, $run;
my $sock = "$run/authtokend.sock";

my $log = "$top/authtokend.log";
my $umask = umask 077;    # what the child inherits
my $pid = spawn($log, AuthToken::Issuer::build_dir() . '/authtokend',
                '--listen', "unix:$sock");
umask $umask;
ok(wait_socket($sock, pid => $pid), 'authtokend listens on the unix socket under umask 0077')
    or diag(do { local (@ARGV, $/) = $log; <> });

my @st = stat $sock;
is(sprintf('%04o', ($st[2] // 0) & 07777), '0660', 'the socket is 0660 whatever the umask');
is($st[5], $nginx_group, 'it has the group of its setgid directory');

# GET /healthz over the socket as uid/gid; true if an HTTP answer came.
sub answered_as {
    my ($uid, $gid) = @_;
    my $child = fork // die "fork: $!";
    if (!$child) {
        POSIX::setgid($gid);
        $) = "$gid $gid";
        POSIX::setuid($uid);
        POSIX::_exit(3) unless $> == $uid && $) =~ /^$gid\b/;
        my $s = IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM)
            or POSIX::_exit(1);
        print $s "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
        my $line = <$s> // '';
        POSIX::_exit($line =~ m{^HTTP/1\.[01] \d{3} } ? 0 : 2);
    }
    waitpid($child, 0);
    return $? >> 8;
}

is(answered_as($nobody, $nginx_group), 0,
   "a user of nginx's group (nobody:nogroup) connects and gets an answer");
isnt(answered_as($nobody, $other_group), 0,
     'a user outside that group cannot connect');

is(stop_pid($pid, timeout => 10), 0, 'authtokend stops cleanly on SIGTERM');
ok(!-e $sock, 'and removes its socket');

done_testing();
