# `authtokenctl import-django` writes in bounded, atomic batches
# (UserStore::kImportBatch = 500 users per FCALL) and is resumable:
# - an import of AUTHTOKEN_IMPORT_USERS (default 10^4) users while another
#   client PINGs Redis every 10 ms: the worst PING is printed (speed is
#   measured, not asserted here); what is asserted is the bound: the import
#   makes exactly two FCALLs per 500 users (a 'check' pass, then a 'write'
#   pass), counted with INFO commandstats;
# - the CLI killed (SIGKILL) mid-import leaves whole batches only (the user
#   count is a multiple of 500), and re-running the same file finishes the
#   job: it reports the users already imported as unchanged, and the
#   keyspace equals a clean import's (sealed keys compared by presence:
#   each sealing draws a fresh nonce);
# - Redis paused (SIGSTOP) mid-import under a 300 ms timeout: the CLI exits
#   3 naming the batch it gave up on and the batches written, which is
#   exactly what Redis holds once it resumes (the batch in flight whole or
#   not at all), and a re-run finishes the job.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(:sys_wait_h);
use AuthToken::TestRedis;
use AuthToken::Issuer;

my $n = $ENV{AUTHTOKEN_IMPORT_USERS} || 10_000;
my $batch = 500;
my $batches = int(($n + $batch - 1) / $batch);

my $dir = issuer_setup();
my $dump = "$dir/dump.json";
{
    my $hash = 'pbkdf2_sha256$1000$c2FsdHNhbHQ$'
        . 'I5sHFPDHtczZE9Btbt5n5WMUluj33c4L2rs6+hyW1lI=';
    my @rows;
    for my $i (1 .. $n) {
        push @rows, qq({"model": "auth.user", "pk": $i, "fields": {)
            . qq("password": "$hash", "last_login": null, )
            . qq("is_superuser": false, "username": "user$i", )
            . qq("first_name": "", "last_name": "", )
            . qq("email": "user$i\@example.org", "is_staff": false, )
            . qq("is_active": true, "date_joined": "2026-11-27T20:26:24.247Z", )
            . qq("groups": [], "user_permissions": []}});
    }
    for my $i (1 .. $n) {
        my $key = sprintf('%040x', $i * 7919 + 1);
        push @rows, qq({"model": "authtoken.token", "pk": "$key", )
            . qq("fields": {"user": $i, "created": "2026-11-27T20:26:24.574Z"}});
    }
    open my $out, '>', $dump or die "$dump: $!";
    print $out "[\n", join(",\n", @rows), "\n]\n";
    close $out;
}

# The keyspace, with each sealed key replaced by a mark of its presence.
sub keyspace {
    my @keys = sort @{ redis_cmd('KEYS', 'authtoken:*') };
    my @types = redis_pipeline(map { ['TYPE', $_] } @keys);
    my @reads = map {
        $types[$_] eq 'hash'   ? ['HGETALL', $keys[$_]]
      : $types[$_] eq 'string' ? ['GET', $keys[$_]]
      : $types[$_] eq 'zset'   ? ['ZRANGE', $keys[$_], 0, -1, 'WITHSCORES']
      :                          ['TYPE', $keys[$_]]
    } 0 .. $#keys;
    my @values = redis_pipeline(@reads);
    my %space;
    for my $i (0 .. $#keys) {
        my $v = $values[$i];
        if ($types[$i] eq 'hash') {
            my %h = @$v;
            $h{token_sealed} = 'present' if exists $h{token_sealed};
            $v = join("\0", map { "$_=$h{$_}" } sort keys %h);
        } elsif (ref $v) {
            $v = join(',', @$v);
        }
        $space{$keys[$i]} = "$types[$i]: $v";
    }
    return \%space;
}

sub ctl_path { ($ENV{AUTHTOKEN_BUILD_DIR} || 'build') . '/authtokenctl' }

# 1. Killed mid-import, then re-run.
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', "$dir/killed.out";
    open STDERR, '>&', \*STDOUT;
    exec ctl_path(), 'import-django', $dump or die "exec: $!";
}
my $seen = 0;
my $until = time + 60;
while (time < $until) {
    $seen = redis_cmd('ZCARD', 'authtoken:users');
    last if $seen > 0;
    sleep 0.001;
}
kill 'KILL', $pid;
waitpid($pid, 0);
my $killed_at = redis_cmd('ZCARD', 'authtoken:users');
diag("killed with $killed_at of $n users imported");
ok($killed_at > 0 && $killed_at < $n,
   "the CLI was killed mid-import ($killed_at of $n users written)");
is($killed_at % $batch, 0,
   'a killed import leaves whole batches of 500 users only');

my ($code, $out, $err) = ctl('import-django', $dump);
is($code, 0, 're-running the file after the kill succeeds') or diag($err);
my $new = $n - $killed_at;
like($out, qr/\($new new, 0 updated, $killed_at unchanged\)\.\n$killed_at users were already imported with the same fields and were left alone/,
     're-running reports the users the killed run wrote as already imported');
my $resumed = keyspace();
is(scalar(grep { /^authtoken:user:/ } keys %$resumed), $n,
   'every user is in Redis after the re-run');

($code, $out, $err) = ctl('import-django', $dump);
like($out, qr/\(0 new, 0 updated, $n unchanged\)/,
     'a third run changes nothing');
is_deeply(keyspace(), $resumed, 'and leaves the keyspace as it was');

# 2. Redis stops answering mid-import (SIGSTOP): the CLI gives up on a
# batch and says exactly which batches were written; after Redis resumes,
# Redis holds those batches and perhaps the one in flight (atomic: whole or
# nothing), never a part of one; re-running the file finishes the job.
redis_cmd('FLUSHALL');
$pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', "$dir/paused.out";
    open STDERR, '>', "$dir/paused.err";
    exec ctl_path(), '--redis-timeout-ms', '300', 'import-django', $dump
        or die "exec: $!";
}
$until = time + 60;
while (time < $until) {
    last if redis_cmd('ZCARD', 'authtoken:users') > 0;
    sleep 0.001;
}
redis_pause();
waitpid($pid, 0);
my $paused_code = $? >> 8;
redis_resume();
sleep 0.2;
my $paused_err = do { local (@ARGV, $/) = "$dir/paused.err"; <> } // '';
is($paused_code, 3, 'a CLI that gives up on a batch exits 3') or diag($paused_err);
my ($k, $total, $before, $users_before) = $paused_err =~
    /interrupted in batch (\d+) of (\d+) \(users \d+-\d+\): batches 1-(\d+) \((\d+) users\) were imported, batch \1 was written whole or not at all; re-running the same file finishes the job/;
ok(defined $k, 'it names the batch it gave up on and the batches written')
    or diag($paused_err);
my $after_pause = redis_cmd('ZCARD', 'authtoken:users');
ok(defined $k && ($after_pause == ($k - 1) * $batch
                  || $after_pause == $k * $batch)
   && $users_before == ($k - 1) * $batch,
   "what it said is what Redis holds ($after_pause users after batch "
   . ($k // '?') . ' was interrupted)');
($code, $out, $err) = ctl('import-django', $dump);
like($out, qr/\(\d+ new, 0 updated, $after_pause unchanged\)/,
     're-running after the timeout finishes the job') or diag($err);
is(redis_cmd('ZCARD', 'authtoken:users'), $n, 'every user is then imported');

# 3. A clean import of the same file, while another client PINGs.
redis_cmd('FLUSHALL');
redis_cmd('CONFIG', 'RESETSTAT');
# Every command over 1 ms into the slow log (the batches, not the
# commands they run), with its time: the per-batch figure.
redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', 1000);
redis_cmd('CONFIG', 'SET', 'slowlog-max-len', 100_000);
redis_cmd('SLOWLOG', 'RESET');
my $pinger = fork // die "fork: $!";
if ($pinger == 0) {
    my $r = AuthToken::Process::redis_client(redis_port());
    my $worst = 0;
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    while (!$stop) {
        my $t0 = time;
        $r->ping;
        my $dt = time - $t0;
        $worst = $dt if $dt > $worst;
        sleep 0.01;
    }
    open my $w, '>', "$dir/worst-ping" or die;
    print $w $worst;
    close $w;
    POSIX::_exit(0);
}
my $t0 = time;
($code, $out, $err) = ctl('import-django', $dump);
my $took = time - $t0;
kill 'TERM', $pinger;
waitpid($pinger, 0);
is($code, 0, 'a clean import succeeds') or diag($err);
like($out, qr/in $batches batches \($n new, 0 updated, 0 unchanged\)\.\n\z/,
     'a clean import reports its batches and every user new');
my $worst = do { local (@ARGV, $/) = "$dir/worst-ping"; <> } // 'none';
my %stats = map { /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/ ? ($1 => [$2, $3]) : () }
    split /\r?\n/, redis_cmd('INFO', 'commandstats');
my ($calls, $usec) = @{ $stats{fcall} || [0, 0] };
my ($writes, $worst_write, $write_us) = (0, 0, 0);
for my $entry (@{ redis_cmd('SLOWLOG', 'GET', -1) }) {
    my ($us, $args) = @$entry[2, 3];
    next unless $args->[0] =~ /^fcall$/i && ($args->[-1] // '') eq 'write';
    $writes++;
    $write_us += $us;
    $worst_write = $us if $us > $worst_write;
}
redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', 10_000);
diag(sprintf('import of %d users: %.2f s; %d FCALLs, %.2f ms per FCALL '
             . '(check and write, %d users each); write batches over 1 ms: '
             . '%d, mean %.2f ms, slowest %.2f ms; worst PING from another '
             . 'client %.1f ms',
             $n, $took, $calls, $calls ? $usec / $calls / 1000 : 0, $batch,
             $writes, $writes ? $write_us / $writes / 1000 : 0,
             $worst_write / 1000, $worst * 1000));
is($calls, 2 * $batches,
   "each FCALL carries at most $batch users: a check and a write per batch");
is_deeply(keyspace(), $resumed,
          'the keyspace after a killed and re-run import equals a clean one');

done_testing();
