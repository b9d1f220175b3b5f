# auth_token_redis unix:/path: lookups and the cache's revocation
# subscription both go over the unix socket, and a restart of Redis is
# recovered from as over TCP.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::CacheEdge;

redis_start();
plan skip_all => 'the servroot path is too long for a unix socket' unless redis_socket();

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
seed_token($alice, uid => 7, user => 'alice', active => 1);

cache_nginx_start(cache => 'valid=1m', redis => 'unix:$TEST_NGINX_REDIS_SOCKET',
                  location => '/api/', headers => ['X-User $auth_token_user']);

# Every client of the worker's, seen by Redis: lookups and the subscriber.
sub unix_clients {
    my $list = redis_cmd('CLIENT', 'LIST');
    my $sock = redis_socket();
    return grep { /\baddr=\Q$sock\E:/ } split /\n/, $list;
}

my $res;
my $t0 = time;
do { $res = get($alice) } until $res->{headers}{'x-cache'} ne 'BYPASS' || time - $t0 > 3;
is($res->{status}, 200, 'a known token passes: looked up over the unix socket');
is($res->{headers}{'x-user'}, 'alice', 'with its user');
is(get('0' x 40)->{status}, 401, 'an unknown token is refused');
my @clients = unix_clients();
is(scalar(@clients), 2, 'the worker holds two unix-socket connections') or diag explain \@clients;
is(scalar(grep { /\bsub=1\b/ } @clients), 1, 'one of them subscribed to the revocation channel');

is(get($alice)->{headers}{'x-cache'}, 'HIT', 'alice is cached');
redis_cmd('DEL', token_key($alice));
redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($alice));
my $refused;
for (1 .. 50) {
    last if $refused = get($alice)->{status} == 401;
    sleep 0.01;
}
ok($refused, 'a revocation published on the channel reaches the worker over the unix socket');

redis_kill();
is(get($alice)->{status}, 503, 'Redis gone: 503');
redis_restart();
seed_token($alice, uid => 7, user => 'alice', active => 1);
my $back;
for (1 .. 100) {
    last if $back = get($alice)->{status} == 200;
    sleep 0.02;
}
ok($back, 'Redis restarted: lookups work again by themselves');

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');
nginx_stop();
done_testing();
