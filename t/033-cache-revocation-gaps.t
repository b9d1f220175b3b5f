# auth_token_cache when revocation messages cannot all arrive: a worker
# killed while a token is revoked (no subscriber for a moment), a half-open
# subscription (a NAT that dropped it silently), and messages a replica
# never delivers (a full resync), noticed through the issuer's revocation
# sequence (authtoken:revocation-seq). In each case the revoked token must
# be refused afterwards, not answered from the cache. AuthToken::RedisProxy
# forces the gaps in front of the real redis-server.
use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA ();
use File::Basename qw(dirname);
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::RedisProxy;
use AuthToken::Server;
use AuthToken::CacheEdge;

my $repo = abs_path(dirname(__FILE__) . '/..');

redis_start();
my $proxy = proxy_start();
$ENV{TEST_NGINX_PROXY_PORT} = $proxy->{port};

cache_nginx_start(cache => 'valid=5m invalid=5m',
                  redis => '127.0.0.1:$TEST_NGINX_PROXY_PORT');

# Polls until $token is refused; returns the seconds it took, or undef.
sub refused_within {
    my ($token, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return time - $t0 if get($token)->{status} == 401;
        sleep 0.05;
    }
    return undef;
}

# A user as the issuer writes it, so the issuer's own script can revoke it.
my $uid = 100;
sub make_user {
    my ($name, $token) = @_;
    $uid++;
    seed_token($token, uid => $uid, user => $name);
    redis_cmd('SET', "authtoken:username:$name", $uid);
    redis_cmd('HSET', "authtoken:user:$uid", username => $name, token => token_digest($token));
}

sub slurp { open my $fh, '<', $_[0] or die "$_[0]: $!"; local $/; <$fh> }

# authtoken_revoke_token of redis/authtoken.lua as authtokenctl runs it:
# the library loaded with its version (the file's SHA-1) written in, then
# FCALL with that version and a deadline 5 s ahead on Redis's clock.
sub revoke_with_issuer_script {
    my ($name) = @_;
    my $lua = slurp("$repo/redis/authtoken.lua");
    my $version = Digest::SHA::sha1_hex($lua);
    $lua =~ s/'\@LIBRARY_VERSION\@'/'$version'/;
    redis_cmd('FUNCTION', 'LOAD', 'REPLACE', $lua);
    my ($sec, $usec) = @{ redis_cmd('TIME') };
    my $deadline = $sec * 1000 + int($usec / 1000) + 5000;
    return redis_cmd('FCALL', 'authtoken_revoke_token', 1, "authtoken:username:$name",
                     $version, $deadline);
}

sub cached {
    my ($token) = @_;
    get($token);
    return seen(get($token)) eq 'HIT 200';
}

ok(wait_subscribed(), 'subscribed through the proxy');

subtest 'the issuer\'s scripts number each revocation message' => sub {
    my $token = '1111111111111111111111111111111111111111';
    make_user('numbered', $token);
    my $before = redis_cmd('GET', 'authtoken:revocation-seq') // 0;
    is(revoke_with_issuer_script('numbered'), 1, 'authtoken_revoke_token revoked it');
    is(redis_cmd('GET', 'authtoken:revocation-seq'), $before + 1, 'and counted one message');
    is(get($token)->{status}, 401, 'the token is refused');
};

subtest 'numbered messages in order do not flush the cache' => sub {
    my $keep = '2222222222222222222222222222222222222222';
    seed_token($keep, uid => 2, user => 'keeper');
    ok(cached($keep), 'cached');
    for my $n (1 .. 3) {
        my $t = sprintf '33333333333333333333333333333333333333%02d', $n;
        make_user("other$n", $t);
        revoke_with_issuer_script("other$n");
    }
    sleep 1.5;    # past a periodic check
    is(seen(get($keep)), 'HIT 200', 'another token is still a hit');
};

subtest 'a worker killed while a token is revoked: refused after the respawn' => sub {
    my $token = '4444444444444444444444444444444444444444';
    make_user('killed', $token);
    ok(cached($token), 'cached');
    my ($old) = nginx_workers();
    # The new worker's SUBSCRIBE reaches Redis only 800 ms after it is sent:
    # the revocation below has no subscriber at all.
    proxy_hold($proxy, 800, 'SUBSCRIBE');
    kill 'KILL', $old;
    revoke_with_issuer_script('killed');
    # And its first read of the sequence is answered 600 ms late: until
    # then the new worker must not trust the zone at all.
    proxy_delay($proxy, 600, 'revocation-seq');
    my $t0 = time;
    my @new;
    while (!@new && time - $t0 < 5) {
        sleep 0.02;
        @new = grep { $_ != $old } nginx_workers();
    }
    ok(@new, 'the master started a new worker');
    ok(wait_subscribed(), 'which subscribed');
    my $res = get($token);
    is($res->{status}, 401, 'the revoked token is refused (' . seen($res) . ')');
    like(nginx_error_log(), qr/revocation messages were missed \(the sequence is at \d+\)/,
         'the invalidation is logged');
};

subtest 'a worker killed while a bare PUBLISH revokes: refused after the respawn' => sub {
    # No number to compare this time: only the dead worker's record in the
    # zone tells the new worker that messages may have gone to nobody.
    my $token = '4545454545454545454545454545454545454545';
    seed_token($token, uid => 45, user => 'bare');
    ok(cached($token), 'cached');
    my ($old) = nginx_workers();
    proxy_hold($proxy, 800, 'SUBSCRIBE');
    kill 'KILL', $old;
    redis_cmd('DEL', token_key($token));
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($token));
    my $t0 = time;
    my @new;
    while (!@new && time - $t0 < 5) {
        sleep 0.02;
        @new = grep { $_ != $old } nginx_workers();
    }
    ok(wait_subscribed(), 'the new worker subscribed');
    my $res = get($token);
    is($res->{status}, 401, 'the revoked token is refused (' . seen($res) . ')');
    like(nginx_error_log(), qr/worker $old died while subscribed/, 'the dead worker is named');
};

subtest 'a half-open subscription is noticed by PING and the cache flushed' => sub {
    my $token = '5555555555555555555555555555555555555555';
    make_user('halfopen', $token);
    ok(cached($token), 'cached');
    proxy_blackhole($proxy, 'SUBSCRIBE');   # stays open, passes nothing
    revoke_with_issuer_script('halfopen');  # the message goes nowhere
    my $took = refused_within($token, 5);
    ok(defined $took, sprintf 'refused %.1f s later (PING every 1 s, 1 s to answer)', $took // 5);
    like(nginx_error_log(), qr/no answer to PING on the revocation subscription/,
         'the dead subscription is logged');
    ok(wait_subscribed(), 'subscribed again on a new connection');
    ok(cached($token) || get($token)->{status} == 401, 'and the cache works again');
};

subtest 'messages a replica never delivered: the sequence moved without them' => sub {
    my $token = '6666666666666666666666666666666666666666';
    seed_token($token, uid => 6, user => 'resynced');
    ok(cached($token), 'cached');
    # As a full resync leaves it: the record is gone and the counter moved
    # on, but no message reached the subscribers.
    redis_cmd('DEL', token_key($token));
    redis_cmd('INCR', 'authtoken:revocation-seq');
    my $took = refused_within($token, 4);
    ok(defined $took, sprintf 'refused %.1f s later, at the next check', $took // 4);
};

subtest 'a message whose number skips some flushes the cache at once' => sub {
    my $token = '7777777777777777777777777777777777777777';
    seed_token($token, uid => 7, user => 'skipped');
    ok(cached($token), 'cached');
    redis_cmd('DEL', token_key($token));
    # The counter itself stays put, so only the message's number can tell.
    my $seq = (redis_cmd('GET', 'authtoken:revocation-seq') // 0) + 6;
    redis_cmd('PUBLISH', 'authtoken:revocations', 'ab' x 32 . " $seq");
    sleep 0.1;
    is(get($token)->{status}, 401, 'the token whose message was skipped is refused');
};

nginx_stop();
done_testing();
