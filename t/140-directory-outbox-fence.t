# The split layout's Redis side (redis/SCHEMA.md, "Two stores"): a user
# store marked as feeding a token directory records every change to a
# token record in its outbox, in the same function, instead of publishing;
# the directory applies outbox entries only in order and once (the fence),
# so a replayer that paused holding an old entry cannot bring back a token
# revoked since; a directory that restarted empty, is another directory, or
# lost acknowledged writes answers REBUILD instead of applying.
#
# These are the library's functions called directly on two real
# redis-servers, as the issuer's replayer will call them.
use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1_hex);
use File::Basename qw(dirname);
use Test::More;
use MIME::Base64 qw(decode_base64url);

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Directory;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $source = do { local (@ARGV, $/) = "$repo/redis/authtoken.lua"; <> };
my $version = sha1_hex($source);
(my $library = $source) =~ s/'\@LIBRARY_VERSION\@'/'$version'/
    or die "no version mark in redis/authtoken.lua";
my $id = 'a1' x 16;

issuer_setup();    # the user store: the test's Redis

# The token directory: a second redis-server of the test's own.
my $dport = directory_setup();
sub dir_cmd { redis_at($dport, @_) }
dir_cmd('FUNCTION', 'LOAD', 'REPLACE', $library);

# FCALL with the caller's version and a deadline 5 s ahead, on either store.
sub fcall {
    my ($at, $name, @args) = @_;
    my ($sec, $usec) = @{ redis_at($at, 'TIME') };
    my $deadline = $sec * 1000 + int($usec / 1000) + 5000;
    return redis_at($at, 'FCALL', "authtoken_$name", 0, $version, $deadline,
                    @args);
}
sub fcall_err { my @a = @_; my $r = eval { fcall(@a) }; return defined $r ? "ok $r" : "$@" }
sub user_store { redis_port() }

# outbox_read's entries from `from` on, each as the 9 arguments dir_apply takes.
sub read_outbox {
    my ($from) = @_;
    my $r = fcall(user_store(), 'outbox_read', $from, 500);
    my ($acked, $seq, $oldest, @entries) = @$r;
    return ($acked, $seq, $oldest, map { [@$_] } @entries);
}
sub apply { my ($acked, @entries) = @_; fcall($dport, 'dir_apply', $id, $acked, map { @$_ } @entries) }
sub dir_record { dir_cmd('HGET', token_key($_[0]), $_[1] // 'user') }

ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
my $alice = token_of('alice');

# After the mark, authtokenctl changes name a directory that is not there:
# each is recorded in the outbox and left pending (exit 4), for the tests
# below to apply by hand as a replayer would.
my $nowhere = free_port();
sub change {
    my ($code, undef, $err) = ctl(@_);
    die "authtokenctl @_: exit $code, not 4 (recorded): $err" unless $code == 4;
}

subtest 'a marked user store puts changes in its outbox, not on the channel' => sub {
    is(fcall(user_store(), 'directory_mark', $id), 1, 'directory_mark');
    $ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$nowhere/0";
    like(fcall_err(user_store(), 'directory_mark', 'b2' x 16),
         qr/REFUSED: this user store feeds directory \Q$id\E/, 'another id is refused');
    my $seq_before = redis_cmd('GET', 'authtoken:revocation-seq');
    change({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
    is(redis_cmd('GET', 'authtoken:revocation-seq'), $seq_before,
       'nothing published on the user store');
    is(redis_cmd('XLEN', 'authtoken:outbox'), 1, 'one outbox entry');
    is(redis_cmd('GET', 'authtoken:outbox-seq'), 1, 'numbered 1');
    like(fcall_err(user_store(), 'dir_apply', $id, 0),
         qr/REFUSED: this Redis is a user store, not a token directory/,
         'dir_apply refuses to run on a user store');
};

my $bob = token_of('bob');

subtest 'an empty directory answers REBUILD; a rebuild copies and continues from its start' => sub {
    like(fcall_err($dport, 'dir_apply', $id, 0), qr/REBUILD: the directory is empty/,
         'empty: REBUILD');
    my (undef, $seq) = read_outbox(1);
    fcall($dport, 'dir_rebuild_begin', $id, $seq, 'owner-1');
    like(fcall_err($dport, 'dir_apply', $id, 0), qr/REBUILD: a rebuild is in progress/,
         'no application while rebuilding');
    my ($next, @copy) = @{ fcall(user_store(), 'directory_snapshot', 0) };
    is($next, 0, 'the snapshot of every user fits one batch');
    is_deeply([sort map { $_->[0] } @copy], [sort map { token_digest($_) } $alice, $bob],
              "it holds alice's and bob's records");
    is(fcall($dport, 'dir_copy', $id, 'owner-1', map { @$_ } @copy), 2, 'two records copied');
    is(fcall($dport, 'dir_rebuild_end', $id, 'owner-1'), $seq, 'ready, applied = the outbox number at its start');
    is(dir_record($alice), 'alice', "alice's record is in the directory");
    is(dir_record($alice, 'created'), undef, 'in its edge form (no created)');
    is(dir_cmd('GET', 'authtoken:schema'), '3', 'the directory carries the schema version');
};

subtest 'the fence: a paused replayer cannot bring back a revoked token' => sub {
    my (undef, $before) = read_outbox(1);
    change('deactivate', 'bob');
    my (undef, undef, undef, @stale) = read_outbox($before + 1);
    is(scalar @stale, 1, 'the deactivation is one outbox entry');
    is($stale[0][5], '0', 'read while bob is inactive');
    change('activate', 'bob');
    change('revoke', 'bob');
    # Replayer B reads now and applies everything.
    my ($acked, $seq, undef, @fresh) = read_outbox($before + 1);
    is(scalar @fresh, 3, 'three entries: deactivate, activate, revoke');
    is($fresh[0][2], 0, 'each with the state of now: gone');
    is(apply($acked, @fresh), $seq, 'replayer B applies them all');
    is(dir_record($bob), undef, "bob's token is gone from the directory");
    # Replayer A wakes up with the deactivation it read long ago, and an
    # old "present" state of the revoke entry.
    my @old = ([@{ $stale[0] }], [@{ $fresh[2] }]);
    @{ $old[1] }[2 .. 6] = (1, $old[0][3], 'bob', 1, 0);
    is(apply($acked, @old), $seq, 'replayer A: nothing applied, applied unchanged');
    is(dir_record($bob), undef, "bob's token is still gone");
    is(fcall(user_store(), 'outbox_ack', $seq), $seq, 'acknowledged');
    like(fcall_err(user_store(), 'outbox_ack', $seq + 5),
         qr/REFUSED: outbox_ack: \d+ is not a number handed out/,
         'a number not handed out cannot be acknowledged');
};

subtest 'the fence: a gap stops application; in order, both apply' => sub {
    my ($acked, $start) = read_outbox(1);
    change({ stdin => "carol-pw\n" }, 'createuser', 'carol', '--password-stdin');
    change({ stdin => "dave-pw\n" }, 'createuser', 'dave', '--password-stdin');
    my (undef, $seq, undef, @e) = read_outbox($start + 1);
    is(scalar @e, 2, 'two entries');
    is(apply($acked, $e[1]), $start, 'the second alone: not applied (a gap)');
    is(dir_cmd('EXISTS', token_key($e[1][1])), 0, "dave's record is not there");
    is(apply($acked, @e), $seq, 'both in order: applied');
    is(apply($acked, @e), $seq, 'again: no second effect');
    is(dir_cmd('HGET', token_key($e[1][1]), 'user'), 'dave', "dave's record is there");
    fcall(user_store(), 'outbox_ack', $seq);
};

subtest 'lost acknowledged writes: replayed from the outbox, or REBUILD' => sub {
    my ($acked) = read_outbox(1);
    # A failover to a replica that missed the last two applications.
    dir_cmd('HSET', 'authtoken:directory', 'applied', $acked - 2);
    like(fcall_err($dport, 'dir_apply', $id, $acked),
         qr/REBUILD: the directory applied \d+, the user store acknowledged $acked/,
         'nothing to apply: REBUILD');
    my (undef, undef, undef, @e) = read_outbox($acked);
    like(fcall_err($dport, 'dir_apply', $id, $acked, map { @$_ } @e),
         qr/REBUILD/, 'entries not starting right after applied: REBUILD');
    (undef, undef, undef, @e) = read_outbox($acked - 1);
    is(apply($acked, @e), $acked, 'the outbox still holds them: replayed in order');
    like(fcall_err($dport, 'dir_apply', 'b2' x 16, $acked),
         qr/REBUILD: the directory is directory \Q$id\E/, 'another directory id: REBUILD');
};

subtest 'a rebuild holds a lease: another waits (BUSY) until it lapses' => sub {
    my (undef, $seq) = read_outbox(1);
    fcall($dport, 'dir_rebuild_begin', $id, $seq, 'rebuilder-A');
    my $lease = dir_cmd('HGET', 'authtoken:directory', 'lease');
    my ($sec, $usec) = @{ dir_cmd('TIME') };
    my $now = $sec * 1000 + int($usec / 1000);
    cmp_ok($lease - $now, '>', 4000, 'A holds a lease of about 5 s');
    like(fcall_err($dport, 'dir_rebuild_begin', $id, $seq, 'rebuilder-B'),
         qr/REFUSED: BUSY: another replayer is rebuilding this directory/,
         'B is refused BUSY while it runs');
    is(dir_cmd('HGET', 'authtoken:directory', 'owner'), 'rebuilder-A', 'and changed nothing');
    is(fcall($dport, 'dir_copy', $id, 'rebuilder-A'), 0, "A's copy renews it");
    cmp_ok(dir_cmd('HGET', 'authtoken:directory', 'lease'), '>=', $lease, '(not earlier)');
    is(fcall($dport, 'dir_rebuild_end', $id, 'rebuilder-A'), $seq, 'A finishes');
};

subtest 'a rebuild overtaken by another (its lease lapsed) can neither copy nor finish' => sub {
    my (undef, $seq) = read_outbox(1);
    fcall($dport, 'dir_rebuild_begin', $id, $seq, 'rebuilder-A');
    my $stale = token_digest('revoked-meanwhile');
    dir_cmd('HSET', 'authtoken:directory', 'lease', 0);    # A paused past it
    fcall($dport, 'dir_rebuild_begin', $id, $seq, 'rebuilder-B');
    like(fcall_err($dport, 'dir_copy', $id, 'rebuilder-A', $stale, 1, 9, 'zed', 1, 0, '', ''),
         qr/REFUSED: dir_copy: this caller is not rebuilding directory/,
         "A's copy (a snapshot read before B began) is refused");
    is(dir_cmd('EXISTS', token_key($stale)), 0, 'and wrote nothing');
    like(fcall_err($dport, 'dir_rebuild_end', $id, 'rebuilder-A'),
         qr/REFUSED: dir_rebuild_end: this caller is not rebuilding/, "A cannot finish B's rebuild");
    like(fcall_err($dport, 'dir_apply', $id, 0), qr/REBUILD: a rebuild is in progress/,
         'the directory is still rebuilding');
    is(fcall($dport, 'dir_rebuild_end', $id, 'rebuilder-B'), $seq, 'B finishes');
};

subtest 'the rebuild snapshot pages through every token record once, in bounded batches' => sub {
    # 1200 users with a token each, and one with 700 tokens in its set
    # (tokens_per_user = many), written as the issuer writes them.
    my @cmds;
    my $record = sub {
        my ($uid, $hex) = @_;
        push @cmds, ['HSET', token_key($hex), uid => $uid, user => "u$uid",
                     active => 1, expires => 0, created => '2026-11-29T00:00:00Z'];
    };
    for my $uid (1001 .. 2200) {
        my $hex = token_digest("seed-$uid");
        push @cmds, ['ZADD', 'authtoken:users', $uid, $uid],
                    ['HSET', "authtoken:user:$uid", username => "u$uid", token => pack('H*', $hex)];
        $record->($uid, $hex);
    }
    push @cmds, ['ZADD', 'authtoken:users', 5000, 5000],
                ['HSET', 'authtoken:user:5000', username => 'u5000'];
    for my $i (1 .. 700) {
        my $hex = token_digest("many-$i");
        push @cmds, ['ZADD', 'authtoken:user-tokens:5000', $i, $hex];
        $record->(5000, $hex);
    }
    redis_pipeline(@cmds);
    my %expected;
    my $cursor = 0;
    do {
        my $r = redis_cmd('SCAN', $cursor, 'MATCH', 'authtoken:token:*', 'COUNT', 1000);
        $cursor = $r->[0];
        # The digest (hex, as directory_snapshot answers) of each name.
        $expected{ unpack 'H*', decode_base64url(substr($_, length 'authtoken:token:')) } = 1
            for @{ $r->[1] };
    } while ($cursor != 0);

    my (%seen, $twice, $largest, $batches);
    my $uid = 0;
    do {
        my ($next, @entries) = @{ fcall(user_store(), 'directory_snapshot', $uid) };
        $batches++;
        $largest = @entries if !defined $largest || @entries > $largest;
        $twice++ for grep { $seen{ $_->[0] }++ } @entries;
        $uid = $next;
    } while ($uid != 0 && $batches < 100);
    is(scalar(keys %seen), scalar(keys %expected), 'every token record of the store, once');
    is_deeply([grep { !$expected{$_} } keys %seen], [], 'and nothing else');
    ok(!$twice, 'no record twice');
    cmp_ok($largest, '<=', 500 + 1001, "batches bounded (largest $largest, in $batches batches)");
    cmp_ok($batches, '>', 1, 'more than one batch');
};

subtest 'authtokend refuses to start without directory_url on a store that feeds a directory' => sub {
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = '';
    local $ENV{AUTHTOKEN_LISTEN} = '127.0.0.1:' . free_port();
    my $out = `timeout 10 $ENV{AUTHTOKEN_BUILD_DIR}/authtokend 2>&1`;
    is($? >> 8, 1, 'authtokend exits 1');
    like($out, qr/this user store feeds a separate token directory \(authtoken:directory-id $id\): set directory_url to it/,
         'saying why, as authtokenctl does');
};

done_testing();
