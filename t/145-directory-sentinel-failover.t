# The token directory behind Sentinel (`directory_url =
# sentinel://host:port,.../service`, docs/operations.md "Two stores"):
# the directory is a primary with one replica and three Sentinels, the user
# store a Redis of its own, nginx reads the directory's replica. The
# directory's primary is SIGKILLed: a change made before the failover is
# recorded (exit 4) and nothing acknowledged; once Sentinel has promoted
# the replica, authtokenctl finds the new primary through Sentinel and
# applies the pending change and new ones there before it exits 0, and the
# edge (reading the promoted replica) refuses the revoked tokens. And
# directory_min_replicas: authtokenctl and authtokend acknowledge a change
# only once the directory's replica confirmed it (WAIT).
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Test::More;

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Topology;

my $repo = abs_path(dirname(__FILE__) . '/..');

# The test's Redis (what Topology's replicas and Sentinels follow) is the
# directory's primary; the user store is a second redis-server.
issuer_setup();
redis_cmd('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
my $uport = free_port();
my $udir = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-userstore-$$";
remove_tree($udir);
make_path($udir);
my $owner = $$;
my $upid = redis_server_start($uport, $udir, what => 'user store redis-server');
END {
    local $?;
    return unless $$ == $owner;
    kill 'KILL', $upid;
    waitpid $upid, 0;
    remove_tree($udir);
}
$ENV{AUTHTOKEN_REDIS} = "redis://127.0.0.1:$uport/0";

my $replica = replica_start('directory-replica',
                            options => ['--repl-diskless-sync-delay', '0']);
sentinel_start("sentinel-$_") for 1 .. 3;
sentinel_wait(1);
$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 500;

edge_start('edge', <<"HTTP");
    auth_token_redis 127.0.0.1:$replica;
    auth_token_cache zone=tokens:1m valid=1h invalid=1h;
    server {
        listen 127.0.0.1:\$PORT;
        location /s/ {
            auth_token on;
            alias html/;
        }
    }
HTTP
sub at_edge { edge_get('edge', $_[0])->{status} }
sub pending { (redis_at($uport, 'GET', 'authtoken:outbox-seq') // 0)
              - (redis_at($uport, 'GET', 'authtoken:outbox-acked') // 0) }

ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin') for qw(alice bob carol);
my %token = map { $_ => token_of($_) } qw(alice bob carol);
$ENV{AUTHTOKEN_DIRECTORY_URL} = sentinel_url();
ctl_ok('directory', 'init');
wait_until(5, sub { at_edge($token{alice}) == 200 });
is(at_edge($token{$_}), 200, "$_ is accepted at the edge (the directory's replica)")
    for qw(alice bob carol);

subtest 'directory_min_replicas: not acknowledged until a replica confirmed it (WAIT)' => sub {
    local $ENV{AUTHTOKEN_DIRECTORY_MIN_REPLICAS} = 1;
    ctl_ok('deactivate', 'carol');
    is(pending(), 0, 'with the replica up: acknowledged');
    is(at_edge($token{carol}), 401, 'and refused at the edge (the replica)');
    node_cmd($replica, 'CLIENT', 'PAUSE', 3000, 'ALL');    # replication stalls
    my ($code, undef, $err) = ctl('activate', 'carol');
    is($code, 4, 'the replica stalled: exit 4') or diag $err;
    like($err, qr/0 of the token directory's 1 replicas \(directory_min_replicas\) confirmed it/,
         'saying the replica did not confirm it');
    is(pending(), 1, 'pending, not acknowledged');
    is(redis_cmd('HGET', 'authtoken:directory', 'applied'),
       redis_at($uport, 'GET', 'authtoken:outbox-seq'), '(the primary applied it)');
    node_cmd($replica, 'CLIENT', 'UNPAUSE');
    ctl_ok('directory', 'sync');
    is(pending(), 0, 'and acknowledges it once the replica confirmed');
    is(at_edge($token{carol}), 200, 'carol is accepted at the edge again');
};

subtest 'authtokend with directory_min_replicas: 503 until a replica confirmed it' => sub {
    local $ENV{AUTHTOKEN_DIRECTORY_MIN_REPLICAS} = 1;
    ctl_ok({ stdin => "pw\n" }, 'createuser', 'root', '--superuser', '--password-stdin');
    my $root = token_of('root');
    ctl_ok({ stdin => "pw\n" }, 'createuser', 'dave', '--password-stdin');
    my $dave = token_of('dave');
    authtokend_start();
    is(at_edge($dave), 200, 'dave is accepted');
    node_cmd($replica, 'CLIENT', 'PAUSE', 3000, 'ALL');    # replication stalls
    my ($status, undef, $body) = daemon_request('DELETE', '/api-admin/users/dave/token/',
                                                headers => { Authorization => "Token $root" });
    is($status, 503, 'an admin revocation with the replica stalled: 503');
    like($body, qr/The change is recorded; it reaches the edges when the token directory is back/,
         'with the catalogue body');
    cmp_ok(pending(), '>', 0, 'pending, not acknowledged');
    node_cmd($replica, 'CLIENT', 'UNPAUSE');
    ok(wait_until(10, sub { pending() == 0 }), "the daemon's replayer thread acknowledges it once confirmed");
    is(at_edge($dave), 401, "dave's revoked token is refused at the edge");
    authtokend_stop();
};

subtest 'the primary is killed: a change before the failover is recorded, not acknowledged' => sub {
    my $old = redis_port();
    is(sentinel_primary(), $old, 'Sentinel names the test Redis as the primary');
    redis_kill();
    my ($code, undef, $err) = ctl('revoke', 'alice');
    is($code, 4, 'revoke alice: exit 4') or diag $err;
    like($err, qr/recorded; it will reach the edges when the token directory is back/, 'saying so');
    is(pending(), 1, 'pending, not acknowledged');
};

subtest 'after the failover authtokenctl applies changes to the new primary' => sub {
    # Every Sentinel names the new primary (the CLI asks the first that
    # answers, which may otherwise still name the dead one).
    my $took = wait_until(30, sub { sentinel_settled($replica)
                                    && (eval { node_info($replica, 'replication')->{role} } // '') eq 'master' });
    ok(defined $took, 'Sentinel promoted the replica');
    diag sprintf 'failover of the directory: %.1f s', $took // -1;
    ctl_ok('deactivate', 'bob');   # applies alice's revocation first
    is(pending(), 0, 'nothing pending: both changes acknowledged');
    is(redis_at($replica, 'HGET', 'authtoken:directory', 'applied'),
       redis_at($uport, 'GET', 'authtoken:outbox-seq'), 'the new primary applied them');
    is(at_edge($token{alice}), 401, "alice's revoked token is refused at the edge");
    is(at_edge($token{bob}), 401, "bob (deactivated) is refused");
    is(at_edge($token{carol}), 200, 'carol is still accepted');
    my ($code, $out) = ctl('directory', 'status');
    my $seq = redis_at($uport, 'GET', 'authtoken:outbox-seq');
    like($out, qr/ready, applied up to $seq\b/, 'directory status reads the new primary through Sentinel');
};

done_testing();
