# authtokend's GET /metrics: known logins straight to the daemon (good,
# wrong passwords, unknown users, an inactive user, throttled, bad bodies),
# then a scrape whose every counter equals what was sent and whose hash
# histogram counted every hash; the text is read by a real Prometheus
# parser (python3-prometheus-client). Also: the queue and in-flight gauges
# while hashes wait for the one hashing slot, Redis errors by cause, a
# token the daemon replaced, the process_* families against /proc, 405 for
# other methods, and --no-metrics.
use strict;
use warnings;

use IPC::Run qw(run);
use POSIX ();
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;
use AuthToken::Process qw(wait_until);

issuer_setup();
{
    # Tokens are then made by the daemon's logins, where they are counted.
    local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
    ctl_ok({ stdin => "a-pass\n" }, 'createuser', 'alice', '--password-stdin');
    ctl_ok({ stdin => "b-pass\n" }, 'createuser', 'bob', '--password-stdin');
    ctl_ok({ stdin => "c-pass\n" }, 'createuser', 'carol', '--password-stdin',
           '--inactive');
    ctl_ok({ stdin => "m-pass\n" }, 'createuser', 'mallory', '--password-stdin');
    ctl_ok({ stdin => "s-pass\n" }, 'createuser', 'slow', '--password-stdin');
}
# A stored hash far costlier than the policy's (1000 iterations in t/): a
# check against it takes long enough to be seen waiting and in flight.
redis_cmd('HSET', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:slow'),
          'password', 'pbkdf2_sha256$3000000$slowSaltSlowSalt$'
                      . 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');

# One hashing slot, so that hashes queue; only the (username, address)
# window throttles, at 3 failures a minute.
my @daemon_flags = ('--threads', '1', '--redis-timeout-ms', '300',
                    '--throttle-user-addr-rate', '3/min',
                    '--throttle-addr-rate', 'off', '--throttle-user-rate', 'off');
authtokend_start(@daemon_flags);

# The scrape, read by prometheus_client's parser: { 'name{l="v",...}' => value,
# 'TYPE family' => type } (a counter's family name has no _total).
# The parser dies on anything the format does not allow; every family must
# have its HELP and a TYPE.
my $parser = <<'PY';
import sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
for family in text_string_to_metric_families(text):
    if not family.documentation or family.type == "unknown":
        sys.exit("family %s has no HELP or TYPE" % family.name)
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        value = "%d" % s.value if s.value == int(s.value) else repr(s.value)
        print("%s{%s}\t%s\t%s\t%s" % (s.name, labels, value, family.type, family.name))
PY

sub parse {
    my ($text) = @_;
    my ($out, $err) = ('', '');
    run(['/usr/bin/python3', '-c', $parser], \$text, \$out, \$err)
        or die "prometheus_client rejects the scrape: $err\n$text";
    my %m;
    for (split /\n/, $out) {
        my ($k, $v, $type, $family) = split /\t/;
        $m{$k} = $v;
        $m{"TYPE $family"} = $type;
    }
    return \%m;
}

sub scrape {
    my ($s, $h, $b) = daemon_request('GET', '/metrics');
    die "scrape: $s $b" unless $s == 200;
    return wantarray ? (parse($b), $h, $b) : parse($b);
}

sub delta {
    my ($before, $after, $key) = @_;
    die "no sample $key" unless defined $after->{$key};
    return $after->{$key} - ($before->{$key} // 0);
}

sub logins { qq(authtokend_logins_total{outcome="$_[0]"}) }
sub redis_errors { qq(authtokend_redis_errors_total{cause="$_[0]"}) }
sub bucket { qq(authtokend_password_hash_duration_seconds_bucket{le="$_[0]"}) }
my $hash_count = 'authtokend_password_hash_duration_seconds_count{}';
my $created = 'authtokend_tokens_created_total{}';
my $revoked = 'authtokend_tokens_revoked_total{}';
my $waiting = 'authtokend_password_hashes_waiting{}';
my $in_flight = 'authtokend_password_hashes_in_flight{}';
my @outcomes = qw(ok wrong_credentials inactive throttled bad_request
                  unavailable server_error token_limit withheld);
my @causes = qw(connect timeout connection_lost readonly reply_error);
my @les = qw(0.001 0.002 0.005 0.01 0.02 0.05 0.1 0.2 0.5 1 2 +Inf);

sub status_of { (obtain_direct(@_))[0] }

subtest 'the scrape is Prometheus text 0.0.4, every series there from the start' => sub {
    my ($m, $h) = scrape();
    like($h->{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'content type');
    is($h->{'cache-control'}, 'no-store', 'never cached');
    is($m->{logins($_)}, 0, "logins_total{outcome=$_} is 0") for @outcomes;
    is($m->{redis_errors($_)}, 0, "redis_errors_total{cause=$_} is 0") for @causes;
    is($m->{bucket($_)}, 0, "hash bucket le=$_ is 0") for @les;
    is($m->{'TYPE authtokend_password_hash_duration_seconds'}, 'histogram', 'a histogram');
    is($m->{'TYPE authtokend_logins'}, 'counter', 'logins_total is a counter');
    is($m->{$_}, 0, "$_ is 0") for $created, $revoked, $waiting, $in_flight;
};

subtest 'every login outcome and every hash is counted exactly' => sub {
    my $before = scrape();
    is(status_of('alice', 'a-pass'), 200, 'alice logs in') for 1 .. 3;
    is(status_of('bob', 'b-pass'), 200, 'bob logs in') for 1 .. 2;
    is(status_of('alice', 'wrong'), 400, 'alice, wrong password');
    is(status_of('bob', 'wrong'), 400, 'bob, wrong password');
    is(status_of('ghost', 'x'), 400, 'an unknown user') for 1 .. 2;
    is(status_of('carol', 'c-pass'), 400, 'carol is inactive') for 1 .. 2;
    is(status_of('mallory', 'wrong'), 400, 'mallory, wrong password') for 1 .. 3;
    is(status_of('mallory', 'wrong'), 429, 'then throttled') for 1 .. 2;
    my ($s) = daemon_request('POST', '/api-token-auth/',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        body => 'username=alice');
    is($s, 400, 'no password field');
    ($s) = daemon_request('POST', '/api-token-auth/',
        headers => { 'Content-Type' => 'application/json' }, body => '{"username":');
    is($s, 400, 'malformed JSON');
    ($s) = daemon_request('POST', '/api-token-auth/',
        headers => { 'Content-Type' => 'text/plain' }, body => 'x');
    is($s, 415, 'an unsupported media type');

    my $after = scrape();
    my %sent = (ok => 5, wrong_credentials => 7, inactive => 2, throttled => 2,
                bad_request => 3, unavailable => 0, server_error => 0,
                token_limit => 0, withheld => 0);
    is(delta($before, $after, logins($_)), $sent{$_}, "$sent{$_} $_") for @outcomes;
    is(delta($before, $after, $hash_count), 14,
       '14 hashes: 5 good, 4 wrong or unknown, 2 inactive, 3 of mallory; none throttled or bad');
    is(delta($before, $after, bucket('+Inf')), 14, 'the +Inf bucket is the count');
    is(delta($before, $after, bucket('2')), 14, 'every hash of 1000 iterations under 2 s');
    my $prev = 0;
    for my $le (@les) {
        cmp_ok($after->{bucket($le)}, '>=', $prev, "bucket le=$le is cumulative");
        $prev = $after->{bucket($le)};
    }
    cmp_ok(delta($before, $after, 'authtokend_password_hash_duration_seconds_sum{}'),
           '>', 0, 'the sum grew');
    is(delta($before, $after, $created), 2, "two tokens made: alice's and bob's first logins");
    is(delta($before, $after, $revoked), 0, 'none revoked');
    is(delta($before, $after, redis_errors($_)), 0, "no Redis error ($_)") for @causes;
};

subtest 'a token that cannot be handed back is replaced: one created, one revoked' => sub {
    my $before = scrape();
    my $old = token_of('bob');
    redis_cmd('HDEL', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:bob'),
              'token_sealed');
    my ($s, undef, $body) = obtain_direct('bob', 'b-pass');
    is($s, 200, 'bob logs in');
    unlike($body, qr/$old/, 'with a new token');
    my $after = scrape();
    is(delta($before, $after, $created), 1, 'one created');
    is(delta($before, $after, $revoked), 1, 'one revoked');
};

subtest 'hashes waiting for the one slot and the one in flight' => sub {
    my $before = scrape();
    my @socks = map { login_send(authtokend_port(), 'slow', "wrong$_") } 1 .. 3;
    # Polled with a plain GET and two regexes: the real parser's process
    # start (scrape()) can take longer, on a loaded machine, than the
    # moment being looked for. That moment's exposition is parsed after.
    my ($seen, $seen_text);
    my $t0 = time;
    while (time - $t0 < 20) {
        my ($s, undef, $text) = daemon_request('GET', '/metrics');
        if ($s == 200
            && $text =~ /^authtokend_password_hashes_in_flight 1$/m
            && $text =~ /^authtokend_password_hashes_waiting 2$/m) {
            ($seen, $seen_text) = (1, $text);
            last;
        }
        sleep 0.01;
    }
    ok($seen, 'one hash in flight and two waiting, at one moment');
    if ($seen) {
        my $m = parse($seen_text);
        is("$m->{$in_flight} $m->{$waiting}", '1 2', 'as the parser reads that moment');
    }
    is(login_read($_, 60)->{status}, 400, 'a slow wrong password') for @socks;
    my $after = scrape();
    is($after->{$in_flight}, 0, 'none in flight after');
    is($after->{$waiting}, 0, 'none waiting after');
    is(delta($before, $after, $hash_count), 3, 'three hashes');
    is(delta($before, $after, bucket('0.01')), 0,
       'each timed as its own run of 3 million iterations, not as 1000');
    is(delta($before, $after, logins('wrong_credentials')), 3, 'three wrong credentials');
};

subtest 'Redis errors by cause, and the logins they make unavailable' => sub {
    my $before = scrape();
    redis_pause();
    is(status_of('alice', 'a-pass'), 503, 'Redis paused: 503');
    redis_resume();
    my $paused = scrape();
    is(delta($before, $paused, redis_errors('timeout')), 1, 'one timeout');
    is(delta($before, $paused, logins('unavailable')), 1, 'one unavailable login');

    my $b2 = scrape();
    redis_kill();
    is(status_of('alice', 'a-pass'), 503, 'Redis gone: 503') for 1 .. 3;
    my $down = scrape();
    is(delta($b2, $down, logins('unavailable')), 3, 'three unavailable logins');
    is(delta($b2, $down, redis_errors('connect')), 3, 'no connection, three times');
    is(delta($b2, $down, redis_errors($_)), 0, "no $_") for qw(timeout connection_lost);
    redis_restart();
    my $t0 = time;
    sleep 0.05 until (daemon_request('GET', '/healthz'))[0] == 200 || time - $t0 > 5;

    # A command in flight when Redis dies: its connection is lost. (An
    # idle pooled connection that Redis closed is dropped before it is
    # used, t/511, so the command must already be in Redis's socket: Redis
    # is stopped, the health check's PING waits in its receive queue, seen
    # in /proc/net/tcp, and then Redis is killed, well within the timeout.)
    my $b3 = scrape();
    redis_pause();
    my $kid = fork // die;
    if (!$kid) {
        my ($s) = daemon_request('GET', '/healthz');
        POSIX::_exit($s == 503 ? 0 : 1);
    }
    my $queued = wait_until(0.25, sub { redis_receive_queue() > 0 });
    redis_kill();
    waitpid($kid, 0);
    is($? >> 8, 0, 'the health check in flight when Redis died: 503');
    ok(defined $queued, 'its PING had reached Redis before the kill');
    my $a3 = scrape();
    is(delta($b3, $a3, redis_errors('connection_lost')), 1, 'one connection lost');
    is(delta($b3, $a3, redis_errors('timeout')), 0, 'no timeout');
    redis_restart();
    $t0 = time;
    sleep 0.05 until (daemon_request('GET', '/healthz'))[0] == 200 || time - $t0 > 5;

    # The restarted Redis has no Functions library (and no users): the
    # login's first call answers "Function not found", the library is
    # loaded and the call made again, not a failure.
    my $b4 = scrape();
    is(status_of('alice', 'a-pass'), 400, 'a login after the restart runs its scripts');
    my $a4 = scrape();
    is(delta($b4, $a4, redis_errors($_)), 0, "a missing library is no error ($_)") for @causes;
    is(delta($b4, $a4, logins('wrong_credentials')), 1, 'alice is unknown now');
};

subtest 'the process_* families, as the official clients define them' => sub {
    my $m = scrape();
    my $pid = authtokend_pid();
    open my $fh, '<', "/proc/$pid/stat" or die;
    my $stat = <$fh>;
    close $fh;
    my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
    my $ticks = `getconf CLK_TCK` + 0;
    open $fh, '<', '/proc/stat' or die;
    my ($btime) = map { /^btime (\d+)/ ? $1 : () } <$fh>;
    close $fh;
    my $start = $btime + $f[22 - 3] / $ticks;
    cmp_ok(abs($m->{'process_start_time_seconds{}'} - $start), '<', 0.02,
           'start time from /proc/PID/stat and btime');
    cmp_ok($m->{'process_start_time_seconds{}'}, '<=', time, 'in the past');
    cmp_ok($m->{'process_cpu_seconds_total{}'}, '>', 0, 'some CPU time (17 hashes)');
    cmp_ok($m->{'process_cpu_seconds_total{}'}, '<=', ($f[14 - 3] + $f[15 - 3]) / $ticks + 1,
           'not more than /proc says');
    my $rss = $f[24 - 3] * `getconf PAGESIZE`;
    cmp_ok(abs($m->{'process_resident_memory_bytes{}'} - $rss), '<', 4 << 20, 'resident memory');
    cmp_ok($m->{'process_virtual_memory_bytes{}'}, '>=', $m->{'process_resident_memory_bytes{}'},
           'virtual memory');
    opendir my $d, "/proc/$pid/fd" or die;
    my $fds = grep { !/^\./ } readdir $d;
    closedir $d;
    cmp_ok(abs($m->{'process_open_fds{}'} - $fds), '<=', 2, "open fds ($fds in /proc)");
    open $fh, '<', "/proc/$pid/limits" or die;
    my ($max) = map { /^Max open files\s+(\d+)/ ? $1 : () } <$fh>;
    close $fh;
    is($m->{'process_max_fds{}'}, $max, 'max fds: the soft limit');
    is($m->{"TYPE $_"}, 'gauge', "$_ is a gauge")
        for qw(process_resident_memory_bytes process_virtual_memory_bytes
               process_start_time_seconds process_open_fds process_max_fds);
    is($m->{'TYPE process_cpu_seconds'}, 'counter', 'process_cpu_seconds_total is a counter');
};

subtest 'every authtokend series the example dashboard queries exists' => sub {
    my $m = scrape();
    open my $fh, '<', 'examples/grafana-dashboard.json' or die "dashboard: $!";
    my $json = do { local $/; <$fh> };
    my %names = map { $_ => 1 } $json =~ /\b((?:authtokend|process)_[a-z_]+)/g;
    ok(scalar(keys %names) >= 8, 'the dashboard queries the issuer');
    for my $name (sort keys %names) {
        ok(scalar(grep { /^\Q$name\E\{/ } keys %$m), "$name is scraped");
    }
};

subtest 'only GET and HEAD' => sub {
    my ($s, $h, $b) = daemon_request('POST', '/metrics', body => 'x');
    is("$s $b", '405 {"detail":"Method \"POST\" not allowed."}', 'POST: 405');
    is($h->{allow}, 'GET, HEAD', 'Allow');
    # A body-less DELETE is answered at once, not after the read timeout.
    my $t0 = time;
    ($s) = daemon_request('DELETE', '/metrics');
    is($s, 405, 'DELETE: 405');
    cmp_ok(time - $t0, '<', 2, 'at once');
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 5) or die;
    print $sock "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    local $/;
    my ($head, $rest) = split /\r\n\r\n/, <$sock> // '', 2;
    like($head, qr{^HTTP/1\.1 200 }, 'HEAD: 200');
    is($rest, '', 'and no body');
};

subtest '--no-metrics: the path is unknown' => sub {
    authtokend_start(@daemon_flags, '--no-metrics');
    my ($s, $h, $b) = daemon_request('GET', '/metrics');
    is("$s $b", '404 {"detail":"Not found."}', 'GET /metrics: not found');
    ($s) = daemon_request('GET', '/healthz');
    is($s, 200, 'the rest still answers');
};

authtokend_stop();
redis_stop();
done_testing();
