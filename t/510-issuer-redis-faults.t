# The issuer with Redis failing: paused (SIGSTOP) beyond redis_timeout_ms,
# killed (SIGKILL), restarted with its data, restarted empty. obtain and
# /healthz answer 503 JSON within a bounded time and recover by themselves
# when Redis is back; authtokenctl createuser during an outage fails with
# a clear message and a non-zero exit and leaves no half-written user:
# the whole keyspace is checked against the schema's invariants after
# every fault. A change that Redis only gets to after the CLI gave up is
# refused by its deadline (redis/lib/deadline.lua), so what the CLI
# reported stays true.
use strict;
use warnings;

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Hostile;

my $TIMEOUT_MS = 300;
my $UNAVAILABLE = '{"detail":"Service temporarily unavailable, try again later."}';

issuer_setup();
$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = $TIMEOUT_MS;   # the CLI too
authtokend_start('--redis-timeout-ms', $TIMEOUT_MS, '--threads', '4',
                 '--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                 '--throttle-user-addr-rate', 'off');
ctl_ok({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
my $bob = token_of('bob');

sub obtain {
    my ($user, $pw) = @_;
    my $t0 = time;
    my ($s, $h, $b) = obtain_direct($user, $pw);
    return ($s, $b, time - $t0, $h);
}

sub obtain_recovers {
    my ($limit) = @_;
    return wait_until($limit, sub { (obtain('bob', 'bob-pw'))[0] == 200 });
}

sub consistent {
    my ($name) = @_;
    my @p = keyspace_problems(auto_token => 1);
    is_deeply(\@p, [], "$name: the keyspace is consistent (no half-written user)");
}

my ($s, $b, $took) = obtain('bob', 'bob-pw');
is("$s $b", qq{200 {"token":"$bob"}}, 'obtain works with Redis up');
my $bin = AuthToken::Issuer::build_dir() . '/authtokenctl';

subtest 'Redis paused beyond the timeout' => sub {
    my $before = redis_snapshot();
    redis_pause();
    my ($s, $b, $took, $h) = obtain('bob', 'bob-pw');
    is("$s $b", "503 $UNAVAILABLE", 'obtain: 503 with the JSON body');
    like($h->{'content-type'}, qr{^application/json}, 'as JSON');
    cmp_ok($took, '<', 4 * $TIMEOUT_MS / 1000 + 0.5, 'within a bounded time (a few Redis timeouts)');
    diag(sprintf 'obtain with Redis paused: %.0f ms', 1000 * $took) if $ENV{TEST_VERBOSE};
    my @par = map { my $pid = fork // die; if (!$pid) { my ($c) = obtain('bob', 'bob-pw'); exit($c == 503 ? 0 : 1) } $pid } 1 .. 6;
    my $t0 = time;
    my @codes = map { waitpid($_, 0); $? >> 8 } @par;
    is_deeply(\@codes, [(0) x 6], '6 concurrent obtains: each 503');
    cmp_ok(time - $t0, '<', 3, 'all answered within 3 s');
    ($s, undef, $b) = daemon_request('GET', '/healthz');
    is("$s $b", "503 $UNAVAILABLE", 'healthz: 503');
    $t0 = time;
    my ($code, $out, $err) = ctl({ stdin => "p1-pw\n" }, 'createuser', 'paused1', '--password-stdin');
    my $ctl_took = time - $t0;
    isnt($code, 0, 'createuser during the pause exits non-zero');
    like($err, qr/^authtokenctl: redis: /m, 'an error about Redis');
    like($err, qr/timed? ?out|timeout/i, 'saying that Redis timed out');
    like($err, qr/127\.0\.0\.1:\d+/, 'and which Redis');
    unlike($out, qr/created successfully/, 'and does not claim success');
    cmp_ok($ctl_took, '<', 5, 'within a bounded time');
    diag("createuser during a pause said: $err") if $ENV{TEST_VERBOSE};
    redis_resume();
    my $back = obtain_recovers(2);
    ok(defined $back, 'obtain recovers once Redis resumes');
    cmp_ok($back // 9, '<', 1, 'within a second');
    ($s) = daemon_request('GET', '/healthz');
    is($s, 200, 'healthz: 200 again');
    consistent('after the pause');
    # What the CLI sent before giving up runs when Redis wakes up: the CLI
    # said it failed, so the user must not exist.
    sleep 0.2;
    is(redis_cmd('EXISTS', 'authtoken:username:paused1'), 0,
       'the user whose creation was reported as failed does not exist after Redis resumes');
    is_deeply(redis_snapshot(), $before, 'the keyspace is exactly as before the pause');
};

subtest 'a change Redis only gets after the CLI gave up is never made' => sub {
    ctl_ok({ stdin => "warm-pw\n" }, 'createuser', 'warm1', '--password-stdin');   # create_user.lua is cached
    my $before = redis_snapshot();
    # The CLI talks to Redis through a proxy that holds its script until the
    # CLI has given up and exited, then delivers it: what a stalled Redis
    # does with a command left in its socket buffer.
    my ($port, $proxy) = late_script_proxy();
    my ($code, $out, $err) = do {
        local $ENV{AUTHTOKEN_REDIS} = "redis://127.0.0.1:$port/0";
        ctl({ stdin => "held-pw\n" }, 'createuser', 'held1', '--password-stdin');
    };
    is($code, 3, 'createuser exits 3: Redis did not answer the change in time') or diag $err;
    like($err, qr/timed out.*made before then or not at all/, 'saying it was made before then or not at all');
    unlike($out, qr/created successfully/, 'and does not claim success');
    waitpid($proxy, 0);   # the script has reached Redis and been answered
    is(redis_cmd('EXISTS', 'authtoken:username:held1'), 0,
       'the script arrived after its deadline and created nothing');
    is_deeply(redis_snapshot(), $before, 'the keyspace is exactly as before');
    ($code, undef, $err) = ctl({ stdin => "held-pw\n" }, 'createuser', 'held1', '--password-stdin');
    is($code, 0, 'the same createuser succeeds directly') or diag $err;
    consistent('after the late script');
};

subtest 'Redis killed, then restarted with its data' => sub {
    redis_cmd('SAVE');   # redis-test.conf has no persistence: snapshot by hand
    my $before = redis_snapshot();
    redis_kill();
    my ($s, $b, $took) = obtain('bob', 'bob-pw');
    is("$s $b", "503 $UNAVAILABLE", 'obtain: 503');
    cmp_ok($took, '<', 0.5, 'at once (connection refused)');
    ($s, undef, $b) = daemon_request('GET', '/healthz');
    is("$s $b", "503 $UNAVAILABLE", 'healthz: 503');
    my ($code, $out, $err) = ctl({ stdin => "k1-pw\n" }, 'createuser', 'killed1', '--password-stdin');
    isnt($code, 0, 'createuser with Redis down exits non-zero');
    like($err, qr/^authtokenctl: redis: .*(refused|connect)/mi, 'saying it cannot connect');
    ($code, undef, $err) = ctl('token', 'bob', '-r');
    isnt($code, 0, 'token -r with Redis down exits non-zero');
    redis_restart();   # loads dump.rdb
    my $back = obtain_recovers(2);
    ok(defined $back, 'obtain recovers once Redis is back');
    cmp_ok($back // 9, '<', 1, 'within a second');
    diag(sprintf 'recovered %.0f ms after the restart', 1000 * ($back // 9)) if $ENV{TEST_VERBOSE};
    ($s, $b) = obtain('bob', 'bob-pw');
    is("$s $b", qq{200 {"token":"$bob"}}, 'bob\'s token is the same');
    is_deeply(redis_snapshot(), $before, 'the keyspace is what it was: the failed commands wrote nothing');
    consistent('after the restart');
    # Writes work again (the Functions library came back with the data:
    # Redis keeps functions in its RDB).
    ($code, undef, $err) = ctl({ stdin => "k2-pw\n" }, 'createuser', 'killed2', '--password-stdin');
    is($code, 0, 'createuser works again') or diag $err;
    ($s) = obtain('killed2', 'k2-pw');
    is($s, 200, 'and the new user logs in through the daemon');
};

# A restart closes every connection the daemon keeps in its pool: the
# first that finds its connection dead must not leave the others to fail a
# login each (with 128 connections, 128 logins answered 503).
subtest 'after a Redis restart, the idle pool connections fail no more logins' => sub {
    my @kids;
    for (1 .. 6) {   # logins at once: several connections in the pool
        my $pid = fork() // die "fork: $!";
        if (!$pid) { obtain('bob', 'bob-pw'); POSIX::_exit(0) }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    redis_cmd('SAVE');
    redis_restart();
    my @status = map { (obtain('bob', 'bob-pw'))[0] } 1 .. 6;
    my $failed = grep { $_ != 200 } @status;
    cmp_ok($failed, '<=', 1, "at most the first login fails (statuses: @status)");
    is($status[-1], 200, 'then logins succeed');
};

subtest 'Redis restarted empty' => sub {
    # An empty snapshot in place of the old one, then a restart from it.
    redis_cmd('FLUSHALL');
    redis_cmd('SAVE');
    redis_restart();
    my ($s, $b) = (0, '');
    wait_until(2, sub { ($s, $b) = obtain('bob', 'bob-pw'); $s != 503 });
    is("$s $b", '400 {"non_field_errors":["Unable to log in with provided credentials."]}',
       'bob is gone: 400 Unable to log in, not 503 and never his old token');
    ($s) = daemon_request('GET', '/healthz');
    is($s, 200, 'healthz: 200 (Redis answers)');
    my ($code, undef, $err) = ctl({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
    is($code, 0, 'bob can be created again') or diag $err;
    ($s, $b) = obtain('bob', 'bob-pw');
    is($s, 200, 'and logs in');
    isnt($b, qq{{"token":"$bob"}}, 'with a new token');
    consistent('after the empty restart');
};

subtest 'createuser racing a pause: whatever the CLI says is true, and final' => sub {
    # Pause Redis at random moments while createuser runs. Exit 0 ("created
    # successfully"): the user exists. Exit 1: it does not. Exit 3 (no
    # answer to the change in time): either, but final: nothing changes once
    # Redis has resumed and worked through what the CLI left behind.
    my (%said, @runs);
    for my $i (1 .. 12) {
        my $name = "race$i";
        my $pid = fork // die;
        if ($pid == 0) {
            my ($code, $out) = ctl({ stdin => "$name-pw\n" }, 'createuser', $name, '--password-stdin');
            exit($code == 0 && $out !~ /created successfully/ ? 9 : $code);
        }
        sleep 0.005 * ($i % 6);
        redis_pause();
        sleep 0.5;
        redis_resume();
        waitpid($pid, 0);
        $said{$name} = { 0 => 'created', 1 => 'failed', 3 => 'unknown' }->{$? >> 8} // 'exit ' . ($? >> 8);
    }
    sleep 0.3;
    my %exists = map { $_ => redis_cmd('EXISTS', "authtoken:username:$_") } keys %said;
    diag('createuser outcomes: ' . join ' ', map { "$_=$said{$_}/$exists{$_}" } sort keys %said)
        if $ENV{TEST_VERBOSE};
    my @wrong = grep { $said{$_} !~ /^(created|failed|unknown)$/
                       || ($said{$_} eq 'created' && !$exists{$_})
                       || ($said{$_} eq 'failed' && $exists{$_}) } sort keys %said;
    is_deeply(\@wrong, [], 'a user exists when the CLI said created, and not when it said failed');
    my $settled = redis_snapshot();
    sleep 1;
    is_deeply(redis_snapshot(), $settled, 'and a second later nothing has changed');
    consistent('after createuser raced pauses');
};

my $log = authtokend_log();
like($log, qr/redis failed: /, 'the daemon logs Redis failures with the cause');
unlike($log, qr/bob-pw|race\d+-pw/, 'and never a password');
my ($health) = daemon_request('GET', '/healthz');
is($health, 200, 'the daemon is still up and healthy after every fault');

done_testing();
