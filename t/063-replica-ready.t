# redis/replica-ready, run as an operator runs it (redis-cli connection
# options, a password with -a or in REDISCLI_AUTH, an ACL user), against a
# primary and replicas on loopback:
#   - it sets replica-priority only once the replica has synced, exits 0
#     and says so, also when redis-cli warns on stderr (-a): a warning is
#     not CONFIG SET's reply;
#   - a refusal that waiting will not change (a user without +info:
#     NOPERM; a wrong password: WRONGPASS) ends it at once with exit 1 and
#     Redis's error, instead of waiting forever;
#   - a user without +config|set is found out up front (ACL DRYRUN), on a
#     primary too, where it would otherwise wait forever: exit 1; a user
#     without the ACL rights to check is told so, and it goes on; the
#     user redis/users.acl ships for it passes the check silently;
#   - a Redis that does not answer yet keeps it waiting, and its progress
#     line says why (redis-cli's last error); once Redis is up and synced
#     it goes on;
#   - a listener that accepts and never answers (a host that drops
#     packets) cannot hang it: every redis-cli call has a time limit
#     (REPLICA_READY_TIMEOUT), and it keeps waiting, saying so; a CONFIG
#     SET that runs out of time is tried again (a scripted stand-in);
#   - no redis-cli in PATH: exit 2 at once, naming Debian's redis-tools.
# The progress line comes every REPLICA_READY_REPORT_SECONDS (60 by
# default; 1 here).
use strict;
use warnings;

use Test::More;
use FindBin;
use POSIX ();
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Time::HiRes qw(sleep);

use AuthToken::Cleanup qw(track untrack);
use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Topology;

my $script = "$FindBin::Bin/../redis/replica-ready";
my $base = ($ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot") . "-replica-ready-$$";
remove_tree($base);
make_path($base);
END { local $?; remove_tree($base) if $base && !$ENV{TEST_NGINX_NO_CLEAN} }

redis_start();
# The replica's full sync waits 2 s on the primary: time to see the script
# wait for it.
redis_cmd('CONFIG', 'SET', 'repl-diskless-sync-delay', '2');

my @edge_replica = ('--replica-priority', '0', '--requirepass', 'secret');

# Runs replica-ready with @args and %env in the background: { pid, out, err }.
my $runs = 0;
sub ready_start {
    my ($env, @args) = @_;
    my $run = { out => "$base/run-" . ++$runs . '.out',
                err => "$base/run-$runs.err" };
    $run->{pid} = fork // die "fork: $!";
    if ($run->{pid} == 0) {
        $ENV{$_} = $env->{$_} for keys %$env;
        open STDOUT, '>', $run->{out} or POSIX::_exit(127);
        open STDERR, '>', $run->{err} or POSIX::_exit(127);
        exec $script, @args or POSIX::_exit(127);
    }
    track($run->{pid});
    return $run;
}

# Waits up to $timeout s for it to exit: its exit status, or undef (then it
# is stopped).
sub ready_wait {
    my ($run, $timeout) = @_;
    my $status = wait_exit($run->{pid}, $timeout);
    if (!defined $status) {
        stop_pid($run->{pid}, timeout => 1);
    }
    untrack($run->{pid});
    return defined $status ? $status >> 8 : undef;
}

sub slurp {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return <$fh> // '';
}

# The replicas have a password (so that -a makes redis-cli warn).
sub replica { redis_client($_[0], password => 'secret') }
sub priority { (replica($_[0])->config_get('replica-priority'))[1] }

# --- the normal path, the password given with -a ---------------------------
{
    my $port = replica_start('replica-a', options => \@edge_replica, nowait => 1);
    my $run = ready_start({}, 100, '-p', $port, '-a', 'secret');
    # Until the sync (2 s away), the priority stays 0.
    sleep 1;
    my $link = replica($port)->info('replication');
    is($link->{master_link_status}, 'down', 'the replica has not synced yet')
        or diag(explain($link));
    is(priority($port), '0', '... and replica-ready leaves its priority at 0');
    my $status = ready_wait($run, 10);
    is($status, 0, 'once it has synced, replica-ready exits 0, although '
                   . 'redis-cli warned about -a on stderr')
        or diag(slurp($run->{err}));
    is(replica($port)->info('replication')
           ->{master_link_status}, 'up', '... the replica has synced');
    is(priority($port), '100', '... and its replica-priority is 100');
    is(slurp($run->{out}), "replica-ready: synced; replica-priority 100\n",
       '... which it says on stdout');
    like(slurp($run->{err}), qr/Warning: Using a password/,
         'redis-cli\'s warning is let through on stderr');
    unlike(slurp($run->{err}), qr/replica-ready:/, '... and nothing else is said');
}

# --- refusals that waiting will not change ---------------------------------
{
    my $port = replica_port('replica-a');
    replica($port)->config_set('replica-priority', '0');
    # An ACL user that may set the priority but not read INFO.
    replica($port)
        ->acl('SETUSER', 'noinfo', 'on', '>pw', '+config|set', '+ping');

    my $run = ready_start({ REDISCLI_AUTH => 'pw' }, 100, '-p', $port, '--user', 'noinfo');
    my $status = ready_wait($run, 5);
    is($status, 1, 'a user without +info: replica-ready exits 1 at once (within 5 s)')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: INFO replication: NOPERM .*'info' command$/m,
         '... with Redis\'s NOPERM error');

    $run = ready_start({}, 100, '-p', $port, '-a', 'wrong');
    $status = ready_wait($run, 5);
    is($status, 1, 'a wrong password: replica-ready exits 1 at once (within 5 s)')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}), qr/^replica-ready: .*WRONGPASS/m, '... saying WRONGPASS');
    is(priority($port), '0', 'neither set the priority');
}

# --- a Redis that does not answer yet ---------------------------------------
{
    # Its port, with nothing listening there yet.
    my $port = replica_start('replica-b', options => \@edge_replica, nowait => 1);
    replica_kill('replica-b');
    my $run = ready_start({ REPLICA_READY_REPORT_SECONDS => 1, REDISCLI_AUTH => 'secret' },
                          100, '-p', $port);
    my $said = wait_log($run->{err}, qr/^replica-ready: no sync with a primary yet/, 5);
    ok($said, 'a Redis that refuses connections: replica-ready keeps waiting and '
              . 'says so every REPLICA_READY_REPORT_SECONDS')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: no sync with a primary yet \(\d+ s\); last error: Could not connect to Redis at 127\.0\.0\.1:$port: Connection refused$/m,
         '... naming redis-cli\'s last error');
    ok(kill(0, $run->{pid}), '... still running');
    replica_start('replica-b', options => \@edge_replica, nowait => 1);
    my $status = ready_wait($run, 10);
    is($status, 0, 'once Redis is up and synced it exits 0')
        or diag(slurp($run->{err}));
    is(priority($port), '100', '... with replica-priority 100');
}

# --- the right to CONFIG SET, checked up front --------------------------------
{
    # On the primary: it would wait there forever, and only after a sync
    # (on another node, one day) find out that CONFIG SET is refused.
    my $primary = redis_port();
    redis_cmd('ACL', 'SETUSER', 'noset', 'on', '>pw', '+info', '+ping',
              '+acl|whoami', '+acl|dryrun');
    my $run = ready_start({ REDISCLI_AUTH => 'pw' }, 100, '-p', $primary,
                          '--user', 'noset');
    my $status = ready_wait($run, 5);
    is($status, 1, 'a user without +config|set: replica-ready exits 1 at once '
                   . '(within 5 s), on the primary too')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: user "noset" may not CONFIG SET replica-priority 100 \(ACL DRYRUN: This user has no permissions to run the 'config\|set' command\): give it \+config\|set$/m,
         '... saying which user lacks which right');

    # The user redis/users.acl ships for it: checked, and nothing to say.
    my $port = replica_port('replica-a');
    replica($port)->config_set('replica-priority', '0');
    my ($shipped) = map { /^user authtoken-replica-ready (.*\S)\s*$/ ? $1 : () }
        split /\n/, slurp("$FindBin::Bin/../redis/users.acl");
    ok($shipped, 'redis/users.acl ships a user for replica-ready')
        or $shipped = 'off';
    replica($port)->acl('SETUSER', 'authtoken-replica-ready', split(' ', $shipped),
                        'on', '>pw');
    $run = ready_start({ REDISCLI_AUTH => 'pw' }, 100, '-p', $port,
                       '--user', 'authtoken-replica-ready');
    is(ready_wait($run, 5), 0, 'as redis/users.acl\'s authtoken-replica-ready, '
                               . 'replica-ready sets the priority and exits 0')
        or diag(slurp($run->{err}));
    is(slurp($run->{err}), '', '... having checked its right to CONFIG SET (nothing said)');
    is(priority($port), '100', '... and the priority is 100');

    # A user that may CONFIG SET but not use ACL: it cannot be checked;
    # replica-ready says so and goes on (CONFIG SET itself will tell).
    replica($port)->config_set('replica-priority', '0');
    replica($port)->acl('SETUSER', 'noacl', 'on', '>pw', '+info',
                        '+config|set');
    $run = ready_start({ REDISCLI_AUTH => 'pw' }, 100, '-p', $port, '--user', 'noacl');
    $status = ready_wait($run, 5);
    is($status, 0, 'a user without ACL rights but with +config|set: replica-ready '
                   . 'sets the priority and exits 0')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: could not check that the user may CONFIG SET replica-priority \(ACL WHOAMI: NOPERM .*'acl\|whoami' command\); going on$/m,
         '... having said that it could not check the right up front');
    is(priority($port), '100', '... and the priority is 100');
}

# --- a listener that accepts and never answers ------------------------------
{
    my $listener = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                         LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "listen: $!";
    my $port = $listener->sockport;
    my $holder = fork // die "fork: $!";
    if ($holder == 0) {
        # No END blocks here (AuthToken::Cleanup makes TERM an exit).
        $SIG{TERM} = 'DEFAULT';
        my @held;
        while (my $c = $listener->accept) { push @held, $c }
        POSIX::_exit(0);
    }
    track($holder);
    close $listener;

    my $run = ready_start({ REPLICA_READY_REPORT_SECONDS => 1, REPLICA_READY_TIMEOUT => 1 },
                          100, '-p', $port);
    my $said = wait_log($run->{err}, qr/^replica-ready: no sync with a primary yet/, 6);
    ok($said, 'a listener that never answers: replica-ready does not hang on '
              . 'redis-cli, it keeps waiting and says so')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: no sync with a primary yet \(\d+ s\); last error: redis-cli got no answer within 1 s$/m,
         '... naming the time limit redis-cli ran out of');
    ok(kill(0, $run->{pid}), '... still running');
    ready_wait($run, 0);
    stop_pid($holder, timeout => 1);
    untrack($holder);

    $run = ready_start({ REPLICA_READY_TIMEOUT => '0' }, 100, '-p', $port);
    is(ready_wait($run, 5), 2, 'REPLICA_READY_TIMEOUT 0: a usage error, exit 2');
    like(slurp($run->{err}), qr/^replica-ready: REPLICA_READY_TIMEOUT: /m,
         '... naming the setting');
}

# --- a CONFIG SET that gets no answer in time --------------------------------
{
    # A scripted Redis stand-in (exact replies forced): a synced replica
    # whose first CONFIG SET is never answered; it logs each command.
    my $listener = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                         LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "listen: $!";
    my $port = $listener->sockport;
    my $log = "$base/stand-in.log";
    my $stand_in = fork // die "fork: $!";
    if ($stand_in == 0) {
        $SIG{TERM} = 'DEFAULT';
        my (@held, $config_sets);
        while (my $c = $listener->accept) {
            my @cmd;
            my $n = (<$c> // '') =~ /^\*(\d+)/ ? $1 : 0;
            for (1 .. $n) {
                my $len = (<$c> // '') =~ /^\$(\d+)/ ? $1 : 0;
                read($c, my $arg, $len + 2);
                push @cmd, substr($arg, 0, $len);
            }
            open my $fh, '>>', $log or POSIX::_exit(1);
            print $fh "@cmd\n";
            close $fh;
            my $name = uc(join ' ', @cmd[0 .. ($#cmd < 1 ? $#cmd : 1)]);
            my $reply
                = $name eq 'INFO REPLICATION'
                ? "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
                : $name eq 'ACL WHOAMI' ? 'default'
                : $name eq 'ACL DRYRUN' ? 'OK'
                : $name eq 'CONFIG SET' ? (++$config_sets == 1 ? undef : 'OK')
                :                         "ERR unknown command";
            if (!defined $reply) { push @held, $c; next }
            print $c $reply =~ /^ERR/ ? "-$reply\r\n"
                   : $reply eq 'OK'   ? "+OK\r\n"
                   : '$' . length($reply) . "\r\n$reply\r\n";
            close $c;
        }
        POSIX::_exit(0);
    }
    track($stand_in);
    close $listener;

    my $run = ready_start({ REPLICA_READY_REPORT_SECONDS => 1, REPLICA_READY_TIMEOUT => 1 },
                          100, '-p', $port);
    my $status = ready_wait($run, 6);
    is($status, 0, 'a CONFIG SET that got no answer within REPLICA_READY_TIMEOUT '
                   . 'is tried again, and the second one\'s OK ends it with 0')
        or diag(slurp($run->{err}));
    is(scalar(() = slurp($log) =~ /^CONFIG SET replica-priority 100$/mg), 2,
       '... after exactly two CONFIG SETs');
    like(slurp($run->{err}),
         qr/^replica-ready: no sync with a primary yet \(\d+ s\); CONFIG SET replica-priority 100: redis-cli got no answer within 1 s$/m,
         '... its progress line saying which call ran out of time');
    stop_pid($stand_in, timeout => 1);
    untrack($stand_in);
}

# --- no redis-cli ----------------------------------------------------------------
{
    # A PATH with the tools the script uses, but no redis-cli.
    my $bin = "$base/bin-without-redis-cli";
    make_path($bin);
    for my $tool (qw(date grep sleep tail timeout tr)) {
        my ($path) = grep { -x "$_/$tool" } qw(/usr/bin /bin);
        symlink("$path/$tool", "$bin/$tool") or die "symlink $tool: $!";
    }
    my $run = ready_start({ PATH => $bin }, 100, '-p', replica_port('replica-a'));
    my $status = ready_wait($run, 5);
    is($status, 2, 'no redis-cli in PATH: replica-ready exits 2 at once (within 5 s)')
        or diag(slurp($run->{err}));
    like(slurp($run->{err}),
         qr/^replica-ready: redis-cli not found in PATH \(Debian: apt-get install redis-tools\)$/m,
         '... naming the Debian package that has it');
}

done_testing();
