# auth_token_cache: hits and misses, negative entries, eviction, revocation
# through the channel, invalidation when the subscription drops, stale
# answers during an outage, reloads, two workers, shared lookups.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::CacheEdge;

redis_start();

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
my $bob   = '2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726';
seed_token($alice, uid => 7, user => 'alice', active => 1);
seed_token($bob, uid => 8, user => 'bob', active => 0);

sub config {
    my ($cache, %opt) = @_;
    return (<<"HTTP", workers => $opt{workers} || 1);
    auth_token_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    $cache
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            auth_token_timeout 300ms;
            add_header X-Cache \$auth_token_cache_status always;
            add_header X-User \$auth_token_user always;
            add_header X-Pid \$pid always;
            alias html/;
        }
        location /nocache/ {
            auth_token on;
            auth_token_cache off;
            add_header X-Cache \$auth_token_cache_status always;
            alias html/;
        }
    }
HTTP
}

sub cache_of { $_[0]{headers}{'x-cache'} // '' }

sub record_key { token_key($_[0]) }

nginx_start(config('auth_token_cache zone=tokens:1m valid=30s invalid=5s;'));
nginx_html(x => "ok\n");
ok(wait_subscribed(3), 'each worker subscribes to the revocation channel');

subtest 'a found token is a miss, then a hit' => sub {
    my $res = get($alice);
    is($res->{status}, 200, 'first request passes');
    is(cache_of($res), 'MISS', 'from Redis');
    $res = get($alice);
    is($res->{status}, 200, 'second request passes');
    is(cache_of($res), 'HIT', 'from the cache');
    is($res->{headers}{'x-user'}, 'alice', 'with the user');

    # Remove the record behind the cache's back (no message): the cache
    # still answers, which proves the hit did not ask Redis.
    redis_cmd('DEL', record_key($alice));
    $res = get($alice);
    is(cache_of($res) . " $res->{status}", 'HIT 200', 'Redis is not asked on a hit');
    seed_token($alice, uid => 7, user => 'alice', active => 1);
};

subtest 'an inactive user is cached with its verdict' => sub {
    get($bob);
    my $res = get($bob);
    is(cache_of($res), 'HIT', 'hit');
    is($res->{status}, 401, 'refused with 401');
    is($res->{body}, '{"detail":"User inactive or deleted."}', 'inactive body');
};

subtest 'a revocation message drops the entry at once' => sub {
    get($alice);
    is(cache_of(get($alice)), 'HIT', 'cached');
    redis_cmd('DEL', record_key($alice));
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($alice));
    sleep 0.05;
    my $res = get($alice);
    is(cache_of($res), 'MISS', 'asked Redis again');
    is($res->{status}, 401, 'and the revoked token is refused');
    seed_token($alice, uid => 7, user => 'alice', active => 1);
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($alice));
    # Let the message land before the next lookup starts: a lookup that a
    # revocation overtakes does not store its answer, on purpose.
    sleep 0.1;
};

subtest 'unknown tokens are remembered for invalid= only' => sub {
    my $ghost = 'abcdefabcdefabcdefabcdefabcdefabcdef0001';
    is(get($ghost)->{status}, 401, 'unknown: 401');
    seed_token($ghost, uid => 99, user => 'late');   # no message
    my $res = get($ghost);
    is(cache_of($res) . " $res->{status}", 'HIT 401', 'the negative entry answers');
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($ghost));
    sleep 0.05;
    $res = get($ghost);
    is($res->{status}, 200, 'a message for a new token clears its negative entry');
};

subtest 'auth_token_cache off in a location bypasses the zone' => sub {
    my $res = get($alice, '/nocache/x');
    is($res->{status}, 200, 'passes');
    ok(!defined $res->{headers}{'x-cache'}, 'no cache status');
};

subtest 'concurrent misses for one key share one Redis lookup' => sub {
    my $key = 'c0ffeec0ffeec0ffeec0ffeec0ffeec0ffee0042';
    seed_token($key, uid => 42, user => 'shared');
    redis_cmd('CONFIG', 'RESETSTAT');
    redis_pause();
    my @socks = map { http_send('/s/x', Authorization => "Token $key") } 1 .. 50;
    sleep 0.2;
    redis_resume();
    my $ok = grep { my $r = http_read($_, 3); $r && $r->{status} == 200 } @socks;
    is($ok, 50, 'all 50 requests pass');
    my ($calls) = redis_cmd('INFO', 'commandstats') =~ /cmdstat_hmget:calls=(\d+)/;
    is($calls, 1, 'with one HMGET');
};

subtest 'losing the subscription invalidates the cache' => sub {
    get($alice);
    is(cache_of(get($alice)), 'HIT', 'cached');
    redis_cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
    my $res = get($alice);
    like(cache_of($res), qr/^(BYPASS|MISS)$/, 'no hit right after the loss: ' . cache_of($res));
    ok(wait_subscribed(3), 'subscribed again by itself');
    $res = get($alice);
    is(cache_of($res), 'MISS', 'entries from before the loss are not trusted');
    is(cache_of(get($alice)), 'HIT', 'and the cache works again');
    like(nginx_error_log(), qr/auth token cache invalidated: revocation messages may have been missed/,
         'the invalidation is logged');
};

subtest 'a flood of unknown keys cannot evict the good entries' => sub {
    nginx_stop();
    nginx_start(config('auth_token_cache zone=tiny:32k valid=1m invalid=1m;'));
    nginx_html('x');
    wait_subscribed(3);
    get($alice);
    is(cache_of(get($alice)), 'HIT', 'alice cached in a tiny zone');
    for my $i (1 .. 1500) {
        get(sprintf '%040x', 0xdead0000 + $i);
    }
    is(cache_of(get($alice)), 'HIT', 'alice is still a hit after 1500 unknown keys');
    unlike(nginx_error_log(), qr/\[alert\]|\[crit\]/, 'no allocation failure');
};

subtest 'a full zone evicts its oldest entries' => sub {
    my @seed = map { my $k = sprintf '%040x', 0xbeef0000 + $_;
                     ['HSET', record_key($k), uid => $_, user => "user$_", active => 1] } 1 .. 1500;
    redis_pipeline(@seed);
    for my $i (1 .. 1500) {
        my $res = get(sprintf '%040x', 0xbeef0000 + $i);
        die "user$i: $res->{status}" unless $res->{status} == 200;
    }
    is(cache_of(get(sprintf '%040x', 0xbeef0000 + 1500)), 'HIT', 'the newest entry is a hit');
    is(cache_of(get(sprintf '%040x', 0xbeef0000 + 1)), 'MISS', 'the oldest was evicted');
    unlike(nginx_error_log(), qr/\[alert\]|\[crit\]/, 'eviction is silent');
};

subtest 'a hit a second after the entry was stored keeps it from eviction' => sub {
    # The zone is full of the previous subtest's entries, newest 1500. Count
    # how many it holds: from the newest down every request is a hit, which
    # changes nothing, until the first miss.
    my $held = 0;
    $held++ while cache_of(get(sprintf '%040x', 0xbeef0000 + 1500 - $held)) eq 'HIT';
    cmp_ok($held, '>=', 40, "the zone holds $held entries");

    my @keys = map { sprintf '%040x', 0xcafe0000 + $_ } 1 .. 2 * $held;
    my @later = map { sprintf '%040x', 0xd00d0000 + $_ } 1 .. int($held / 2);
    my $uid = 0;
    redis_pipeline(map { $uid++; ['HSET', record_key($_), uid => $uid, user => "u$uid", active => 1] }
                   @keys, @later);
    get($_) for @keys;    # the zone now holds the newest $held of them
    # $kept and $next are among the oldest quarter still held.
    my ($kept, $next) = @keys[$held + int($held / 4), $held + int($held / 4) + 1];
    sleep 1.1;            # a hit moves an entry at most once a second
    is(cache_of(get($kept)), 'HIT', 'an old entry is hit');
    get($_) for @later;   # new entries push the oldest out
    is(cache_of(get($kept)), 'HIT', 'the entry that was hit is still cached');
    is(cache_of(get($next)), 'MISS', 'the entry stored after it but not hit was evicted');
};

subtest 'the zone survives a reload' => sub {
    get($alice);
    is(cache_of(get($alice)), 'HIT', 'cached');
    redis_cmd('DEL', record_key($alice));    # only the cache knows alice now
    nginx_reload(config('auth_token_cache zone=tiny:32k valid=1m invalid=1m;'));
    ok(wait_subscribed(3), 'new workers subscribe');
    my $res = get($alice);
    is(cache_of($res) . " $res->{status}", 'HIT 200', 'the new workers hit the old entry');
    seed_token($alice, uid => 7, user => 'alice', active => 1);
};

subtest 'two workers share one cache' => sub {
    nginx_stop();
    nginx_start(config('auth_token_cache zone=tokens:1m valid=1m;', workers => 2));
    nginx_html('x');
    wait_subscribed(3);
    sleep 0.2;
    my $first = get($alice);
    is(cache_of($first), 'MISS', 'one worker fills the entry');
    my %hit_by;
    for (1 .. 200) {
        my $res = get($alice);
        $hit_by{ $res->{headers}{'x-pid'} }++ if cache_of($res) eq 'HIT';
        last if keys %hit_by == 2;
    }
    is(scalar keys %hit_by, 2, 'both workers answer it as a hit');
};

subtest 'stale= answers known-good tokens while Redis is down' => sub {
    nginx_stop();
    nginx_start(config('auth_token_cache zone=tokens:1m valid=200ms stale=1m;'));
    nginx_html('x');
    wait_subscribed(3);
    get($alice);
    is(cache_of(get($alice)), 'HIT', 'cached');
    redis_kill();
    sleep 0.3;    # past valid=
    my $res = get($alice);
    is($res->{status}, 200, 'Redis down: the known-good token still passes');
    is(cache_of($res), 'STALE', 'marked STALE');
    $res = get('0000000000000000000000000000000000000000');
    is($res->{status}, 503, 'an unknown token fails closed');
    get($alice) for 1 .. 5;
    my @warn = nginx_error_log() =~ /answering from stale cache entries/g;
    is(scalar @warn, 1, 'the stale answers are logged once per outage');
    redis_restart();
    seed_token($alice, uid => 7, user => 'alice', active => 1);
};

subtest 'without stale= the same outage fails closed' => sub {
    nginx_stop();
    nginx_start(config('auth_token_cache zone=tokens:1m valid=200ms;'));
    nginx_html('x');
    wait_subscribed(3);
    get($alice);
    redis_kill();
    sleep 0.3;
    is(get($alice)->{status}, 503, 'the known-good token gets 503 too');
    redis_restart();
};

nginx_stop();
done_testing();
