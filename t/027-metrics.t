# auth_token_metrics: known traffic through two workers, then a scrape
# whose every counter equals what was sent; the text is read by a real
# Prometheus parser (python3-prometheus-client), and has every series the
# example dashboard queries; the counters survive a
# reload; the debug log has one line per verdict, without the key.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use IPC::Run qw(run);

use AuthToken::TestRedis;
use AuthToken::Server;

redis_start();

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
my $bob   = '2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726';
sub seed {
    seed_token($alice, uid => 7, user => 'alice', active => 1);
    seed_token($bob, uid => 8, user => 'bob', active => 0);
}
seed();

my $config = <<'HTTP';
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m valid=1m invalid=1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            auth_token_timeout 300ms;
            add_header X-Cache $auth_token_cache_status always;
            alias html/;
        }
        location /nocache/ {
            auth_token on;
            auth_token_timeout 300ms;
            auth_token_cache off;
            alias html/;
        }
        location /tiny/ {
            auth_token on;
            auth_token_cache zone=tiny:32k valid=1m invalid=1m;
            alias html/;
        }
        location /redir/ {
            auth_token on;
            error_page 401 /s/x;
        }
        location = /metrics {
            auth_token_metrics;
        }
    }
HTTP

nginx_start($config, workers => 2, log_level => 'debug');
nginx_html(x => "ok\n");

sub get {
    my ($token, $path) = @_;
    my $res = http_request($path || '/s/x',
                           defined $token ? (Authorization => "Token $token") : ());
    die "no response" unless $res;
    return $res;
}

# The scrape, read by prometheus_client's parser: { 'name{l="v",...}' => value }.
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
        print("%s{%s}\t%s\t%s" % (s.name, labels, value, family.type))
PY

sub scrape {
    my $res = http_request('/metrics');
    die "scrape: no response" unless $res;
    die "scrape: $res->{status}" unless $res->{status} == 200;
    my ($out, $err) = ('', '');
    run(['/usr/bin/python3', '-c', $parser], \$res->{body}, \$out, \$err)
        or die "prometheus_client rejects the scrape: $err\n$res->{body}";
    my %m;
    for (split /\n/, $out) {
        my ($k, $v) = split /\t/;
        $m{$k} = $v;
    }
    return (\%m, $res);
}

sub delta {
    my ($before, $after, $key) = @_;
    die "no sample $key" unless defined $after->{$key};
    return $after->{$key} - ($before->{$key} // 0);
}

sub req_key { qq(nginx_auth_token_requests_total{status="$_[0]"}) }
sub cache_key { qq(nginx_auth_token_cache_requests_total{cache_status="$_[0]"}) }
sub err_key { qq(nginx_auth_token_redis_errors_total{cause="$_[0]"}) }
my $lookups = 'nginx_auth_token_redis_lookups_total{}';
my $revocations = 'nginx_auth_token_revocations_total{}';
my $hist_count = 'nginx_auth_token_redis_lookup_duration_seconds_count{}';

# Until both workers hold their subscription, a check bypasses the cache.
sub wait_subscribed {
    my $t0 = time;
    my $in_a_row = 0;
    while (time - $t0 < 5) {
        my $c = get('feedfacefeedfacefeedfacefeedfacefeedface')->{headers}{'x-cache'} // '';
        $in_a_row = $c eq 'BYPASS' ? 0 : $in_a_row + 1;
        return 1 if $in_a_row >= 6;
        sleep 0.02;
    }
    return 0;
}

sub wait_for {
    my ($cond) = @_;
    my $t0 = time;
    while (time - $t0 < 5) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

ok(wait_subscribed(), 'both workers subscribed');

subtest 'the scrape is Prometheus text 0.0.4 with every family' => sub {
    my ($m, $res) = scrape();
    like($res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'content type');
    for my $s (qw(ok missing malformed invalid inactive error)) {
        ok(defined $m->{req_key($s)}, "requests_total{status=$s}");
    }
    for my $c (qw(HIT MISS STALE BYPASS)) {
        ok(defined $m->{cache_key($c)}, "cache_requests_total{cache_status=$c}");
    }
    for my $c (qw(timeout connect reply malformed)) {
        is($m->{err_key($c)}, 0, "no error with cause $c yet");
    }
    ok(defined $m->{'nginx_auth_token_cache_entries{zone="tokens"}'}, 'entries of zone tokens');
    ok(defined $m->{'nginx_auth_token_cache_size_bytes{zone="tiny"}'}, 'size of zone tiny');
    is($m->{'nginx_auth_token_redis_lookup_duration_seconds_bucket{le="+Inf"}'}, $m->{$hist_count},
       'the +Inf bucket is the count');
    ok(defined $m->{'nginx_auth_token_redis_lookup_duration_seconds_bucket{le="0.00025"}'},
       'buckets in seconds');
};

subtest 'every module series the example dashboard queries exists' => sub {
    my ($m) = scrape();
    open my $fh, '<', 'examples/grafana-dashboard.json' or die "dashboard: $!";
    my $json = do { local $/; <$fh> };
    my %names = map { $_ => 1 } $json =~ /\b(nginx_auth_token_[a-z_]+)/g;
    ok(scalar(keys %names) >= 8, 'the dashboard queries the module');
    for my $name (sort keys %names) {
        ok(scalar(grep { /^\Q$name\E\{/ } keys %$m), "$name is scraped");
    }
};

subtest 'verdicts, cache results and lookups are counted exactly, over two workers' => sub {
    my ($before) = scrape();
    my $entries_before = $before->{'nginx_auth_token_cache_entries{zone="tokens"}'};
    for (1 .. 5) {
        my $res = get($alice);
        die "alice: $res->{status}" unless $res->{status} == 200;
    }
    get(sprintf '%040x', 0xbad0000 + $_) for 1 .. 3;             # invalid
    get(undef) for 1 .. 4;                                         # missing
    get('a b') for 1 .. 2;                                         # malformed
    get($bob, '/nocache/x') for 1 .. 2;                            # inactive
    get($alice) for 1 .. 20;
    my ($after) = scrape();
    is(delta($before, $after, req_key('ok')), 25, '25 ok');
    is(delta($before, $after, req_key('invalid')), 3, '3 invalid');
    is(delta($before, $after, req_key('missing')), 4, '4 missing');
    is(delta($before, $after, req_key('malformed')), 2, '2 malformed');
    is(delta($before, $after, req_key('inactive')), 2, '2 inactive');
    is(delta($before, $after, req_key('error')), 0, 'no error');
    is(delta($before, $after, cache_key('MISS')), 4, '4 misses: alice once, 3 unknown keys');
    is(delta($before, $after, cache_key('HIT')), 24, '24 hits');
    is(delta($before, $after, cache_key('BYPASS')), 0, 'no bypass');
    is(delta($before, $after, $lookups), 6, '6 Redis lookups: 4 misses, 2 without cache');
    is(delta($before, $after, $hist_count), 6, 'the histogram saw the 6 lookups');
    is($after->{'nginx_auth_token_cache_entries{zone="tokens"}'} - $entries_before, 4,
       'the zone holds 4 entries more');
    cmp_ok($after->{'nginx_auth_token_cache_used_bytes{zone="tokens"}'}, '>', 0, 'bytes in use');
    is($after->{'nginx_auth_token_cache_size_bytes{zone="tokens"}'}, 1048576, 'the zone is 1m');
};

subtest 'the two workers both count into the scrape' => sub {
    # Each connection lands on either worker (accept_mutex off); the
    # counts above were exact whatever the split. Check that the split
    # happened, so the test covers aggregation.
    my ($before) = scrape();
    get($alice) for 1 .. 40;
    my @pids = nginx_workers();
    is(scalar @pids, 2, 'two workers');
    my ($after) = scrape();
    is(delta($before, $after, req_key('ok')), 40, '40 ok from both workers');
    my $log = nginx_error_log();
    my %by_pid;
    $by_pid{$1}++ while $log =~ /^\S+ \S+ \[debug\] (\d+)#\d+: \*\d+ auth token verdict: ok, cache HIT/mg;
    is(scalar(keys %by_pid), 2, 'both workers gave verdicts') or diag explain \%by_pid;
};

subtest 'a request checked again after an internal redirect is counted once' => sub {
    my ($before) = scrape();
    for (1 .. 3) {
        is(get('0000000000000000000000000000000000000bad', '/redir/x')->{status}, 401,
           'refused, then refused again in the error_page location');
    }
    my ($after) = scrape();
    is(delta($before, $after, req_key('invalid')), 3, 'three requests, three verdicts');
};

subtest 'revocation messages are counted once per worker that applies them' => sub {
    my ($before) = scrape();
    my ($receivers) = redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($alice));
    is($receivers, 2, 'both workers subscribed');
    ok(wait_for(sub { delta($before, (scrape())[0], $revocations) == 2 }),
       'two revocations applied');
    my $res = get($alice);
    is($res->{headers}{'x-cache'}, 'MISS', 'the revoked entry is gone');
    my ($after) = scrape();
    is(delta($before, $after, $revocations), 2, 'exactly two');
    is(delta($before, $after, cache_key('MISS')), 1, 'one miss');
};

subtest 'a malformed record is an error of its own cause' => sub {
    my ($before) = scrape();
    my $key = 'abcdefabcdefabcdefabcdefabcdefabcdef0001';
    redis_cmd('HSET', token_key($key), uid => 'x', user => "ev\nil", active => 'maybe');
    is(get($key, '/nocache/x')->{status}, 503, 'the request is refused with 503');
    my ($after) = scrape();
    is(delta($before, $after, err_key('malformed')), 1, 'one malformed');
    is(delta($before, $after, req_key('error')), 1, 'one error verdict');
};

subtest 'an outage: refused lookups, timeouts, reconnects, subscription losses' => sub {
    my ($before) = scrape();
    redis_kill();
    sleep 0.5;
    for (1 .. 3) {
        is(get($alice, '/nocache/x')->{status}, 503, 'Redis down: 503');
    }
    my ($down) = scrape();
    is(delta($before, $down, req_key('error')), 3, '3 error verdicts');
    is(delta($before, $down, err_key('connect')), 3, 'no connection, 3 times');
    is(delta($before, $down, 'nginx_auth_token_subscription_losses_total{}'), 2,
       'each worker lost its subscription once');

    redis_restart();
    seed();
    ok(wait_subscribed(), 'subscribed again');
    ok(wait_for(sub { get($alice, '/nocache/x')->{status} == 200 &&
                      get($alice, '/nocache/x')->{status} == 200 }), 'lookups work again');
    my ($up) = scrape();
    is(delta($before, $up, 'nginx_auth_token_redis_reconnects_total{}'), 4,
       'two links in each of two workers set up again');

    my ($b2) = scrape();
    redis_pause();
    my $res = get('c0ffeec0ffeec0ffeec0ffeec0ffeec0ffee0001', '/nocache/x');
    redis_resume();
    is($res->{status}, 503, 'Redis paused: 503');
    my ($a2) = scrape();
    is(delta($b2, $a2, err_key('timeout')), 1, 'one timeout');
    is(delta($b2, $a2, req_key('error')), 1, 'one error verdict');
    my $le = 'nginx_auth_token_redis_lookup_duration_seconds_bucket{le="0.25"}';
    is(delta($b2, $a2, $le), 0, 'the timed-out lookup is in no bucket below the timeout');
};

subtest 'a full zone counts its evictions' => sub {
    my ($before) = scrape();
    get(sprintf('%040x', 0xe0000 + $_), '/tiny/x') for 1 .. 200;
    my ($after) = scrape();
    my $entries = $after->{'nginx_auth_token_cache_entries{zone="tiny"}'};
    is($entries, 64, 'unknown keys hold at most their share of the zone');
    is(delta($before, $after, 'nginx_auth_token_cache_evictions_total{zone="tiny"}'), 200 - 64,
       'every other one was evicted');
};

subtest 'the counters survive a reload' => sub {
    my ($before) = scrape();
    my %old = map { $_ => 1 } nginx_workers();
    nginx_reload($config, workers => 2, log_level => 'debug');
    ok(wait_for(sub { my @w = grep { !$old{$_} } nginx_workers(); @w == 2 }),
       'two new workers');
    my $res = get(undef);
    is($res->{status}, 401, 'a request after the reload');
    my ($after) = scrape();
    for my $k (sort keys %$before) {
        next if $k =~ /_cache_(entries|used_bytes)\{/;   # gauges
        next if $k eq req_key('missing');
        is(delta($before, $after, $k), 0, "$k unchanged") or last;
    }
    is(delta($before, $after, req_key('missing')), 1, 'and the new request added to it');
};

subtest 'a worker that dies is replaced and its counts stay' => sub {
    my ($before) = scrape();
    my ($victim) = nginx_workers();
    kill 'KILL', $victim;
    ok(wait_for(sub { my @w = grep { $_ != $victim } nginx_workers(); @w == 2 }),
       'the master started a new worker');
    get(undef) for 1 .. 4;
    my ($after) = scrape();
    is(delta($before, $after, req_key('missing')), 4, 'the four new requests added to the old count');
    is(delta($before, $after, req_key('ok')), 0, 'nothing else moved');
};

subtest 'one debug line per verdict, never the key' => sub {
    my $key = '0123456789abcdef0123456789abcdef01234567';
    my $verdicts = sub { my @l = nginx_error_log() =~ /^(.*auth token verdict: .*)$/mg; @l };
    my $n = () = $verdicts->();
    get($key);
    get(undef);
    get($alice, '/nocache/x');
    my @lines = $verdicts->();
    is(scalar @lines - $n, 3, 'three requests, three lines');
    my $new = join "\n", @lines[$n .. $#lines];
    like($new, qr/auth token verdict: invalid, cache (MISS|BYPASS), lookup \d+ us/, 'status, cache, lookup time');
    like($new, qr/auth token verdict: missing, cache -, lookup 0 us/, 'a missing header: no cache, no lookup');
    like($new, qr/auth token verdict: ok, cache -, lookup [1-9]\d* us/, 'a lookup takes some time');
    unlike(join("\n", @lines), qr/$key|$alice|$bob/, 'no key in a verdict line');
};

nginx_stop();
redis_stop();
done_testing();
