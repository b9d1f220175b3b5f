# auth_token_max_lag: an edge whose Redis no longer gets news from the
# primary stops answering from it. authtokend writes authtoken:heartbeat on
# the primary every second; each nginx worker reads it from its own replica
# once a second and, when the value has not changed for longer than
# auth_token_max_lag, fails lookups as if Redis were down (503 with
# Retry-After, or stale= answers from the cache), logging one line when the
# episode starts and one when the heartbeat moves again.
#
# Nodes: the primary (TestRedis's server), a replica with
# replica-serve-stale-data yes and one with no (as redis/redis.conf ships),
# an nginx edge on each, authtokend (the heartbeat's writer).
#   - the heartbeat key absent (a fresh Redis, no authtokend yet): a worker
#     trusts its Redis for max_lag from its start, then refuses, and says
#     the key is missing; the first heartbeat ends it;
#   - the primary stopped (SIGSTOP): both replicas keep their link "up"
#     until repl-timeout and keep serving, with either setting of
#     replica-serve-stale-data: only the heartbeat notices;
#   - a revocation made while an edge's replica is cut off from the primary
#     (REPLICAOF a dead port, replica-serve-stale-data yes): the revoked
#     token keeps working where max_lag is off, and is refused with 503
#     where it is on, until the replica has the revocation;
#   - with auth_token_max_lag off nothing changes.
use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Topology;

my $max_lag = 3;    # seconds, the shortest nginx accepts

my $dir = issuer_setup();
ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin')
    for qw(alice bob);
my %token = map { $_ => token_of($_) } qw(alice bob);
redis_cmd('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
die 'the heartbeat exists before any authtokend ran'
    if defined redis_cmd('GET', 'authtoken:heartbeat');

my %replica = (yes => replica_start('stale-yes', options => [
                   '--replica-serve-stale-data', 'yes',
                   '--repl-diskless-sync-delay', '0']),
               no => replica_start('stale-no', options => [
                   '--replica-serve-stale-data', 'no',
                   '--repl-diskless-sync-delay', '0']));

# edge-no has no cache zone, so no revocation subscription either: the
# heartbeat is read all the same.
for my $s (qw(yes no)) {
    my $cache = $s eq 'yes'
        ? 'auth_token_cache zone=tokens:1m valid=1h invalid=1h stale=1h;' : '';
    edge_start("edge-$s", <<"HTTP");
    auth_token_redis 127.0.0.1:$replica{$s};
    $cache
    server {
        listen 127.0.0.1:\$PORT;
        auth_token_max_lag ${max_lag}s;
        add_header X-Status \$auth_token_status always;
        add_header X-Cache \$auth_token_cache_status always;
        location /s/ { auth_token on; auth_token_cache off; alias html/; }
        location /off/ {
            auth_token on; auth_token_cache off; auth_token_max_lag off;
            alias html/;
        }
        location /c/ { auth_token on; alias html/; }
        location = /metrics { auth_token_metrics; }
    }
HTTP
}
my $started = time;

my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 0);
sub get {
    my ($edge, $path, $user) = @_;
    my $res = $http->get("http://127.0.0.1:" . edge_port($edge) . $path,
        { headers => { Authorization => "Token $token{$user}" } });
    return $res;
}
sub status { get(@_)->{status} }
sub lines {
    my ($edge, $re) = @_;
    my @l = grep { /$re/ } split /\n/, edge_error_log($edge);
    return scalar @l;
}
my $tripped = qr/lag of \d+ ms exceeds auth_token_max_lag 3000 ms/;
my $recovered = qr/the heartbeat changed again after \d+ ms, lookups resume/;

# --- (c) no heartbeat yet: trusted for max_lag from the worker's start ---
is(status('edge-yes', '/s/x', 'alice'), 200,
   'no heartbeat yet: a worker that just started answers from its Redis');
is(status('edge-yes', '/c/x', 'alice'), 200, '... and fills its cache');
my $waited = wait_until(10, sub { status('edge-yes', '/s/x', 'alice') == 503 });
ok(defined $waited, 'the heartbeat key never appears: 503 once max_lag has passed');
cmp_ok(time - $started, '>=', $max_lag - 0.5, '... not before max_lag');
{
    my $res = get('edge-yes', '/s/x', 'alice');
    is($res->{status}, 503, 'refused again');
    is($res->{headers}{'retry-after'}, '1', '... with Retry-After');
    is($res->{content}, '{"detail":"Service temporarily unavailable, try again later."}',
       '... and the documented body');
    is($res->{headers}{'x-status'}, 'error', '$auth_token_status is error');
}
is(status('edge-yes', '/off/x', 'alice'), 200,
   'auth_token_max_lag off: unchanged, answers from the same Redis');
wait_until(10, sub { status('edge-no', '/s/x', 'alice') == 503 });
like(edge_error_log('edge-yes'),
     qr/$tripped: the heartbeat key is missing/,
     'the log says the heartbeat key is missing');

authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');
for my $e ('edge-yes', 'edge-no') {
    ok(defined wait_until(10, sub { status($e, '/s/x', 'alice') == 200 }),
       "$e: the first heartbeats end it");
    is(lines($e, $recovered), 1, "$e: one line says lookups resume");
    is(lines($e, $tripped), 1, "$e: one line said they stopped, for many refusals");
}

# --- (a) the primary stopped: replicas still serve, the heartbeat stops ---
is(status('edge-yes', '/c/x', 'alice'), 200, 'alice is cached at edge-yes');
redis_pause();
my $paused = time;
my %tripped_after;    # both edges watched at once
wait_until(12, sub {
    for my $e (grep { !$tripped_after{$_} } 'edge-yes', 'edge-no') {
        $tripped_after{$e} = time - $paused
            if status($e, '/s/x', 'alice') == 503;
    }
    return keys %tripped_after == 2;
});
for my $e ('edge-yes', 'edge-no') {
    ok($tripped_after{$e}, "$e: the primary stopped, its replica still "
                         . "serving: 503 once the heartbeat is older than max_lag");
}
cmp_ok($tripped_after{'edge-yes'}, '>=', 1, 'not at once');
diag(sprintf 'primary stopped -> 503 after %.1f s (yes) and %.1f s (no), '
           . 'auth_token_max_lag %d s', @tripped_after{'edge-yes', 'edge-no'},
     $max_lag);
is(status('edge-no', '/off/x', 'alice'), 200,
   'replica-serve-stale-data no does not notice: the link is still up, '
 . 'max_lag off answers');
{
    my $res = get('edge-yes', '/c/x', 'alice');
    is($res->{status}, 200, 'stale=: a cached token answers meanwhile');
    is($res->{headers}{'x-cache'}, 'STALE', '... marked STALE');
}
status('edge-yes', '/s/x', 'alice') for 1 .. 20;
is(lines('edge-yes', $tripped), 2, 'one more line for this episode, not one per request');
like(get('edge-yes', '/metrics', 'alice')->{content},
     qr/^nginx_auth_token_redis_errors_total\{cause="lag"\} [1-9]\d*$/m,
     'the refusals are counted: nginx_auth_token_redis_errors_total{cause="lag"}');
redis_resume();
for my $e ('edge-yes', 'edge-no') {
    ok(defined wait_until(10, sub { status($e, '/s/x', 'alice') == 200 }),
       "$e: the primary back, the heartbeat moves: lookups resume");
    is(lines($e, $recovered), 2, "$e: ... and one line says so");
}
ok(defined wait_until(5, sub { authtokend_log() =~ /heartbeat: authtoken:heartbeat written again/ }),
   'authtokend says its heartbeat is written again');
my @failed = authtokend_log() =~ /heartbeat: cannot write/g;
is(scalar @failed, 1, 'authtokend logged the failing writes once, not once a second');

# --- (a) a revocation the replica does not get ---
my $dead = AuthToken::TestRedis::free_port();
node_cmd($replica{yes}, 'REPLICAOF', '127.0.0.1', $dead);
my $cut = time;
ctl_ok('revoke', 'bob');
is(status('edge-yes', '/off/x', 'bob'), 200,
   'max_lag off: the replica cut off still accepts the token revoked meanwhile');
my $w = wait_until(12, sub { status('edge-yes', '/s/x', 'bob') == 503 });
ok(defined $w, 'max_lag on: refused with 503 once the heartbeat is older than max_lag');
diag(sprintf 'replica cut off -> 503 after %.1f s', time - $cut);
node_cmd($replica{yes}, 'REPLICAOF', '127.0.0.1', redis_port());
ok(defined wait_until(10, sub { status('edge-yes', '/s/x', 'bob') == 401 }),
   'the replica back in sync: the revoked token gets 401');
is(status('edge-yes', '/s/x', 'alice'), 200, '... and alice 200');
is(lines('edge-yes', $tripped), 3, 'the episode was logged once');
is(lines('edge-yes', $recovered), 3, '... and its end once');
unlike(edge_error_log('edge-yes'), qr/\[(alert|crit|emerg)\]/, 'no alert in the log');

done_testing();
