# The split layout end to end (docs/operations.md, "Two stores") through
# authtokenctl: nginx reads only the token directory (a second real
# redis-server); a change is applied there before the CLI says done; a
# directory refusing writes, SIGSTOPped or killed gets exit 4 ("recorded")
# and nothing acknowledged past what it applied; the next command or
# `directory sync` applies it (rebuilding an emptied directory, sweeping a
# stale one); a revoked or deactivated token is never accepted afterwards.
use strict;
use warnings;

use Time::HiRes ();
use Test::More;

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

issuer_setup();    # the user store: the test's Redis

my $dport = directory_setup();    # the token directory

# /s/ plain; /r/ caches a verdict for 1 s and notes last_used (renewal).
directory_renewing_nginx_start();

# edge_once($token, $where): the edge's verdict, "200 ok" or status and body.
my $INVALID = q{401 {"detail":"Invalid token."}};
my $INACTIVE = q{401 {"detail":"User inactive or deleted."}};

my $DIRECTORY_URL = "redis://127.0.0.1:$dport/0";
$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
sub sync_ok {
    my ($code, $out, $err) = ctl('directory', 'sync');
    is($code, 0, 'directory sync succeeds') or diag $err;
    return $out;
}
# A change with the directory in trouble: exit 4 and what is true.
sub recorded {
    my ($what, @cmd) = @_;
    my ($code, undef, $err) = ctl(@cmd);
    is($code, 4, "$what: exit 4");
    like($err, qr/recorded; it will reach the edges when the token directory is back/,
         "$what: says it is recorded, not done");
}

ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
ctl_ok({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
my $alice = token_of('alice');
my $bob = token_of('bob');

is(edge_once($alice), $INVALID, 'before init the directory knows no token');

subtest 'init builds the directory from the user store' => sub {
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = 'redis://127.0.0.1:' . redis_port() . '/5';
    my ($code, undef, $err) = ctl('users');
    is($code, 1, 'a directory_url before init is refused');
    like($err, qr/feeds no token directory yet: run `authtokenctl directory init`/, 'saying so');
    $ENV{AUTHTOKEN_DIRECTORY_URL} = $DIRECTORY_URL;
    ($code, my $out, $err) = ctl('directory', 'init');
    is($code, 0, 'directory init succeeds') or diag $err;
    like($out, qr/Rebuilt the token directory: 2 token records copied/, 'two records copied');
    is(edge_once($alice), '200 ok', 'alice is accepted at the edge');
    is(edge_once($bob), '200 ok', 'bob too');
    is(redis_at($dport, 'EXISTS', 'authtoken:user:1'), 0, 'the directory holds no user record');
};
$ENV{AUTHTOKEN_DIRECTORY_URL} = $DIRECTORY_URL;

subtest 'without directory_url, a user store feeding a directory is refused' => sub {
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = '';
    my ($code, undef, $err) = ctl('deactivate', 'bob');
    is($code, 1, 'exit 1');
    like($err, qr/this user store feeds a separate token directory .*set directory_url/, 'saying why');
    is(edge_once($bob), '200 ok', 'and nothing changed');
    is(pending(), 0, 'nothing recorded');
};

subtest 'a change is applied to the directory before authtokenctl says done' => sub {
    ctl_ok('deactivate', 'bob');
    is(edge_once($bob), $INACTIVE, 'bob is refused as inactive at once');
    is(pending(), 0, 'and the entry is acknowledged');
};

subtest 'a renewable token used at the edge is renewed in the directory, and keeps it' => sub {
    local $ENV{AUTHTOKEN_TOKEN_TTL} = 4;
    local $ENV{AUTHTOKEN_TOKEN_AUTO_REFRESH} = 'on';
    local $ENV{AUTHTOKEN_TOKEN_MAX_TTL} = 60;
    ctl_ok({ stdin => "dora-pw\n" }, 'createuser', 'dora', '--password-stdin');
    my $dora = token_of('dora');
    my $key = token_key($dora);
    my ($expires, $renew, $cap) = @{ redis_at($dport, 'HMGET', $key, qw(expires renew cap)) };
    is($renew, 4, 'the directory record carries renew');
    is($cap, redis_cmd('HGET', $key, 'cap'), 'and the cap the user store holds');
    sleep 2;
    is(edge_once($dora, '/r/'), '200 ok', 'dora is accepted where uses are noted');
    my $renewed;
    for (1 .. 30) {
        $renewed = redis_at($dport, 'HGET', $key, 'expires');
        last if $renewed > $expires;
        select undef, undef, undef, 0.2;
    }
    cmp_ok($renewed, '>', $expires, 'the use pushed expires out in the directory (authtoken_touch there)');
    ok(redis_at($dport, 'HGET', $key, 'last_used'), 'and noted last_used there');
    ctl_ok('deactivate', 'dora');
    ctl_ok('activate', 'dora');
    is(redis_at($dport, 'HGET', $key, 'expires'), $renewed,
       'changes applied later (dir_apply) keep the renewed expires');
    ok(redis_at($dport, 'HGET', $key, 'last_used'), 'and last_used');
    # Past the user store's own expiry, within the renewed one.
    select undef, undef, undef, 0.1 while Time::HiRes::time() < $expires + 0.3;
    cmp_ok(Time::HiRes::time(), '<', $renewed, '(the renewed expiry has not passed)');
    is(edge_once($dora), '200 ok', 'dora is still accepted at the edge after its first expiry');
};

subtest 'directory refusing writes: recorded, unacknowledged, applied by the next sync' => sub {
    redis_at($dport, 'CONFIG', 'SET', 'min-replicas-to-write', 1);
    recorded('activate bob', 'activate', 'bob');
    is(edge_once($bob), $INACTIVE, 'the edge keeps the old verdict');
    is(pending(), 1, 'the entry is pending, not acknowledged');
    redis_at($dport, 'CONFIG', 'SET', 'min-replicas-to-write', 0);
    sync_ok();
    is(edge_once($bob), '200 ok', 'bob is accepted once applied');
    is(pending(), 0, 'and acknowledged');
};

subtest 'directory stopped: recorded, then applied, the revoked token refused' => sub {
    kill 'STOP', directory_pid();
    recorded('revoke alice', 'revoke', 'alice');
    is(pending(), 1, 'pending');
    kill 'CONT', directory_pid();
    sleep 1;   # the stopped calls' deadlines pass: none applies late
    sync_ok();
    is(edge_once($alice), $INVALID, "alice's revoked token is refused");
    is(pending(), 0, 'acknowledged');
};

subtest 'directory killed and restarted empty: rebuilt by the next command' => sub {
    directory_kill();
    recorded('deactivate bob', 'deactivate', 'bob');
    ctl({ stdin => "carol-pw\n" }, 'createuser', 'carol', '--password-stdin');
    directory_start();
    my $carol = token_of('carol');   # applies what is pending first: a rebuild
    is(pending(), 0, 'nothing pending after the next command');
    # nginx's link to the directory reconnects with a backoff of at most
    # 500 ms (it failed while the directory was down): 503 until then.
    for (1 .. 20) { last if edge_once($bob) !~ /^503/; select undef, undef, undef, 0.1 }
    is(edge_once($bob), $INACTIVE, 'bob (deactivated while it was down) is refused');
    is(edge_once($carol), '200 ok', 'carol (created while it was down) is accepted');
    is(edge_once($alice), $INVALID, "alice's revoked token is still refused");
    ctl_ok('activate', 'bob');
};

subtest 'an emptied directory with 1200 users and one of 700 tokens is rebuilt whole' => sub {
    # Written as the issuer writes them (no password: never logged in).
    my @cmds;
    for my $uid (1001 .. 2200) {
        my $hex = token_digest("seed-$uid");
        push @cmds, ['ZADD', 'authtoken:users', $uid, $uid],
                    ['HSET', "authtoken:user:$uid", username => "u$uid", token => pack('H*', $hex)],
                    ['HSET', token_key($hex), uid => $uid, user => "u$uid",
                     active => 1, expires => 0, created => '2026-11-29T00:00:00Z'];
    }
    # And one user with 700 tokens (tokens_per_user = many): a snapshot
    # batch then holds more records than one dir_copy takes.
    push @cmds, ['ZADD', 'authtoken:users', 5000, 5000],
                ['HSET', 'authtoken:user:5000', username => 'u5000'];
    for my $i (1 .. 700) {
        my $hex = token_digest("many-$i");
        push @cmds, ['ZADD', 'authtoken:user-tokens:5000', $i, $hex],
                    ['HSET', token_key($hex), uid => 5000, user => 'u5000',
                     active => 1, expires => 0, created => '2026-11-29T00:00:00Z'];
    }
    redis_pipeline(@cmds);
    redis_at($dport, 'FLUSHALL');
    my $out = sync_ok();
    like($out, qr/Rebuilt the token directory: 19\d\d token records copied/, 'every record copied');
    is(edge_once('many-1'), '200 ok', "the many-token user's first token is accepted");
    is(edge_once('many-700'), '200 ok', 'and its last');
    is(edge_once('seed-1001'), '200 ok', 'the first seeded user is accepted');
    is(edge_once('seed-2200'), '200 ok', 'the last too');
    is(edge_once($alice), $INVALID, "alice's revoked token is still refused");
};

subtest 'a stale directory (another id, a revoked token back in it) is swept' => sub {
    # What a failover to a replica that missed writes looks like, at worst.
    redis_at($dport, 'HSET', token_key($alice),
             uid => 1, user => 'alice', active => 1, expires => 0);
    redis_at($dport, 'HSET', 'authtoken:directory', id => 'ff' x 16);
    is(edge_once($alice), '200 ok', '(the stale record is accepted before the sweep)');
    my $out = sync_ok();
    like($out, qr/Rebuilt the token directory: \d+ token records copied, [1-9]\d* stale records checked/,
         'rebuilt, with a sweep');
    is(edge_once($alice), $INVALID, "alice's revoked token is refused again");
    is(edge_once($bob), '200 ok', 'bob is still accepted');
};

# Whatever the directory's key count: a directory holding no more than one
# token record (no heartbeat, no revocation counter yet) is swept too.
subtest 'init sweeps a lone token record the user store does not know' => sub {
    local $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . redis_port() . '/3';
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = '';
    ctl_ok({ stdin => "erin-pw\n" }, 'createuser', 'erin', '--password-stdin');
    $ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/3";
    my $key = token_key('staging-token');
    my @foreign = (uid => 1, user => 'staging-admin', active => 1, expires => 0);
    redis_at($dport, 'EVAL', "redis.call('SELECT', 3) return redis.call('HSET', KEYS[1], unpack(ARGV))",
             1, $key, @foreign);
    my ($code, $out, $err) = ctl('directory', 'init');
    is($code, 0, 'directory init succeeds') or diag $err;
    like($out, qr/1 token records copied, 1 stale records checked/, 'the lone record was checked');
    is(redis_at($dport, 'EVAL', "redis.call('SELECT', 3) return redis.call('EXISTS', KEYS[1])", 1, $key),
       0, 'and is gone from the directory');
};

subtest 'sync after a takeover sweeps a lone token record the user store does not know' => sub {
    redis_at($dport, 'FLUSHALL');
    redis_at($dport, 'HSET', token_key('staging-token'),
             uid => 1, user => 'staging-admin', active => 1, expires => 0);
    is(edge_once('staging-token'), '200 ok', '(the foreign record is accepted before the sync)');
    my $out = sync_ok();
    like($out, qr/token records copied, 1 stale records checked/, 'rebuilt, the lone record checked');
    is(edge_once('staging-token'), $INVALID, 'the foreign token is refused at the edge');
    is(edge_once($bob), '200 ok', 'bob is still accepted');
};

sub marked_in_db { redis_cmd('EVAL', "redis.call('SELECT', ARGV[1]) return redis.call('GET', KEYS[1])", 1, 'authtoken:directory-id', $_[0]) }

subtest 'init against the same server by another name fails and leaves the store unmarked' => sub {
    local $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . redis_port() . '/4';
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = 'redis://localhost:' . redis_port() . '/4';
    my ($code, undef, $err) = ctl('directory', 'init');
    is($code, 1, 'exit 1');
    like($err, qr/names the same Redis server \(run_id \w+\) and database as redis/, 'saying why');
    is(marked_in_db(4), undef, 'the store is not marked');
};

subtest 'init against another user store fails and leaves the store unmarked' => sub {
    local $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . redis_port() . '/4';
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = 'redis://localhost:' . redis_port() . '/0';
    my ($code, undef, $err) = ctl('directory', 'init');
    is($code, 1, 'exit 1');
    like($err, qr/is a user store \(it feeds token directory \w+\), not a token directory/, 'saying why');
    is(marked_in_db(4), undef, 'the store is not marked');
};

subtest 'status shows a directory carrying another id; sync takes it over' => sub {
    redis_at($dport, 'HSET', 'authtoken:directory', id => 'ee' x 16);
    my ($code, $out, $err) = ctl('directory', 'status');
    is($code, 0, 'status succeeds') or diag $err;
    like($out, qr/carries directory id (ee){16}, not this user store's/, 'the mismatch is shown');
    sync_ok();
    ($code, $out) = ctl('directory', 'status');
    like($out, qr/: ready, applied up to \d+/, 'ready again after the sync');
};

subtest 'authtokend names the directory at startup, or says there is none' => sub {
    {
        local $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . redis_port() . '/4';
        local $ENV{AUTHTOKEN_DIRECTORY_URL} = $ENV{AUTHTOKEN_REDIS};
        authtokend_start();
        authtokend_stop();
        like(authtokend_log(), qr/directory_url names the redis store itself: one Redis holds users and token records, nothing is split/,
             'directory_url equal to redis: said at startup');
    }
    authtokend_start();
    authtokend_stop();
    like(authtokend_log(), qr{redis \S+, token directory redis://127\.0\.0\.1:\Q$dport\E/0,}, 'a separate directory: named at startup');
};

subtest 'fewer replicas than directory_min_replicas: sync exits 4, naming the directory' => sub {
    {
        local $ENV{AUTHTOKEN_DIRECTORY_MIN_REPLICAS} = 1;
        my ($code, undef, $err) = ctl('deactivate', 'bob');
        is($code, 4, 'a change: exit 4');
        like($err, qr{authtokenctl: directory redis://127\.0\.0\.1:\Q$dport\E/0: applied on its primary, not yet acknowledged \(0 of the token directory's 1 replicas},
             'saying the primary applied it, not "when the directory is back"');
        is(edge_once($bob), $INACTIVE, '(the primary has it: the edge refuses bob)');
        ($code, undef, $err) = ctl('directory', 'sync');
        is($code, 4, 'directory sync: exit 4, not 1');
        like($err, qr{authtokenctl: directory redis://127\.0\.0\.1:\Q$dport\E/0: applied on its primary, not yet acknowledged},
             'naming the directory, not "redis:"');
        is(pending(), 1, 'not acknowledged');
    }
    sync_ok();
    is(pending(), 0, 'acknowledged without directory_min_replicas');
    ctl_ok('activate', 'bob');
};

subtest 'an unknown directory action is a usage error said once' => sub {
    my ($code, undef, $err) = ctl('directory', 'rebuild');
    is($code, 2, 'exit 2');
    like($err, qr/^authtokenctl directory: expected init, sync or status, not "rebuild"/m, 'naming the actions');
    unlike($err, qr/directory: directory:/, 'the command named once');
};

subtest "authtokend's thread leaves a directory of another id alone; directory sync takes it over" => sub {
    authtokend_start();
    my $key = token_key('other-deployment');
    redis_at($dport, 'HSET', $key, uid => 7, user => 'other', active => 1, expires => 0);
    redis_at($dport, 'HSET', 'authtoken:directory', id => 'dd' x 16);
    my $said;
    for (1 .. 50) {
        $said = authtokend_log() =~ /carries directory id (dd){16}, not this user store's \w{32}: not taking it over/;
        last if $said;
        select undef, undef, undef, 0.2;
    }
    ok($said, 'the daemon says it does not take it over');
    sleep 1;   # another pass of the thread
    is(redis_at($dport, 'HGET', 'authtoken:directory', 'id'), 'dd' x 16, 'the directory keeps its id');
    is(redis_at($dport, 'EXISTS', $key), 1, 'and its records');
    sync_ok();
    is(edge_once('other-deployment'), $INVALID, 'directory sync took it over: the foreign record is swept');
    is(edge_once($bob), '200 ok', 'bob is accepted');
    for (1 .. 50) {
        last if authtokend_log() =~ /no longer carries another id/;
        select undef, undef, undef, 0.2;
    }
    like(authtokend_log(), qr/directory: the token directory \S+ no longer carries another id/, 'and the daemon says it is back');
    authtokend_stop();
};

done_testing();
