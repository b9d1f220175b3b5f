package AuthToken::Cleanup;

# What every t/lib helper that starts a process relies on to stop it even
# when the test does not end normally.
#
# The helpers stop their processes (redis-server, authtokend, nginx, wrk,
# forked proxies) from END blocks, and Perl runs END blocks when the test
# returns, calls exit or dies -- but not when a signal kills it.  So the
# signals that end a test run from outside (TERM from prove or a timeout,
# INT from ^C, HUP, ALRM from an alarm nobody caught) become
# exit(128 + N), which runs the END blocks.  A handler the test set itself
# is left alone; SIGKILL cannot be helped.
#
# SIGPIPE is not turned into an exit: a helper that writes to a pipe or a
# socket its peer may close ignores it around that write (see
# AuthToken::Issuer::ctl), so the write fails with EPIPE instead.
#
# track($pid) / untrack($pid): a forked helper process (no END of its own)
# that is killed with SIGKILL and reaped at the end unless it was reaped
# before.

use strict;
use warnings;

use Config;
use POSIX ":sys_wait_h";

use Exporter 'import';
our @EXPORT_OK = qw(track untrack);

my $owner = $$;
my %tracked;
my %signo;
@signo{ split ' ', $Config{sig_name} } = split ' ', $Config{sig_num};

for my $sig (qw( TERM INT HUP ALRM )) {
    my $cur = $SIG{$sig};
    next if defined $cur && $cur ne '' && $cur ne 'DEFAULT';
    $SIG{$sig} = sub {
        $SIG{$sig} = 'DEFAULT';       # a second one ends it for good
        exit(128 + $signo{$sig});
    };
}

sub track   { $tracked{$_[0]} = 1 if $_[0] }
sub untrack { delete $tracked{$_[0]} if $_[0] }

END {
    if ($$ == $owner) {
        local $?;
        for my $pid (keys %tracked) {
            next if waitpid($pid, WNOHANG) == $pid;
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
    }
}

1;
