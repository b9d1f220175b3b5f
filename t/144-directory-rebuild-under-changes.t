# A rebuild of a large token directory (docs/operations.md, "Two stores":
# recovery) while changes keep arriving: an emptied directory is rebuilt
# from a user store of 10^4 users (AUTHTOKEN_REBUILD_USERS for another
# size) by `authtokenctl directory sync`, and meanwhile other authtokenctl
# runs revoke tokens the rebuild has already copied and tokens it has not
# reached yet, one after another. Pinned: every revoked token is refused
# at the end, every other one accepted, nothing is left pending, and the
# rebuild is done once (a change made during it waits for it instead of
# starting another, which would throw the first one's work away).
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Digest::SHA qw(sha1_hex);
use POSIX ();
use Time::HiRes qw(sleep time);
use Test::More;

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $N = $ENV{AUTHTOKEN_REBUILD_USERS} || 10_000;

issuer_setup();    # the user store: the test's Redis

my $dport = directory_setup();    # the token directory
my $ddir = directory_dir();
my $owner = $$;
my $sync_pid;
END { local $?; kill 'KILL', $sync_pid if $sync_pid && $$ == $owner }

directory_nginx_start();
# edge_once($token): the edge's verdict, "200 ok" or status and body.
my $OK = '200 ok';
my $INVALID = q{401 {"detail":"Invalid token."}};

sub directory_field { redis_at($dport, 'HGET', 'authtoken:directory', $_[0]) // '' }

# The user store: $N users with a token each, written as the issuer writes
# them (uid order is the rebuild's copy order).
sub key_of { sprintf 'seed%036d', $_[0] }
{
    my @cmds;
    for my $uid (1 .. $N) {
        my $hex = token_digest(key_of($uid));
        push @cmds, ['ZADD', 'authtoken:users', $uid, $uid],
                    ['SET', "authtoken:username:u$uid", $uid],
                    ['HSET', "authtoken:user:$uid", username => "u$uid", is_active => 1,
                     token => pack('H*', $hex)],
                    ['HSET', token_key($hex), uid => $uid, user => "u$uid",
                     active => 1, expires => 0, created => '2026-11-29T00:00:00Z'];
        if (@cmds >= 20_000) { redis_pipeline(@cmds); @cmds = () }
    }
    redis_pipeline(@cmds) if @cmds;
}
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 2000;
my $t0 = time;
ctl_ok('directory', 'init');
my $init_s = time - $t0;
diag sprintf 'rebuild of %d users (directory init): %.2f s', $N, $init_s;
is(edge_once(key_of(1)), $OK, 'the first user is accepted');
is(edge_once(key_of($N)), $OK, 'the last user is accepted');

# A revocation as authtokend makes one (its logout-all, the admin API):
# the library's function on the user store, which appends to the outbox.
my $source = do { local (@ARGV, $/) = "$repo/redis/authtoken.lua"; <> };
my $version = sha1_hex($source);
sub revoke_in_store {
    my ($uid) = @_;
    my ($sec, $usec) = @{ redis_cmd('TIME') };
    redis_cmd('FCALL', 'authtoken_revoke_token', 1, "authtoken:username:u$uid",
              $version, $sec * 1000 + int($usec / 1000) + 5000);
}

subtest 'revocations made during a rebuild are refused at the end' => sub {
    redis_at($dport, 'FLUSHALL');
    my $out_file = "$ddir/sync.out";
    my $err_file = "$ddir/sync.err";
    $sync_pid = fork // die "fork: $!";
    if (!$sync_pid) {
        open STDOUT, '>', $out_file;
        open STDERR, '>', $err_file;
        exec { AuthToken::Issuer::build_dir() . '/authtokenctl' } 'authtokenctl', 'directory', 'sync';
    }
    # Once the rebuild is under way and has copied the first users.
    my $deadline = time + 30;
    sleep 0.002 until (directory_field('state') eq 'rebuilding'
                       && redis_at($dport, 'EXISTS', token_key(key_of(1))))
                      || time > $deadline;
    # Users it has copied (low uids) and users it has not reached (high).
    my @made = (1, 3, 5, $N, $N - 2, $N - 4);
    my $t_revoked = time;
    revoke_in_store($_) for @made;
    is(directory_field('state'), 'rebuilding',
       'six revocations made in the user store while the rebuild runs');
    # And two through authtokenctl meanwhile: each waits for the rebuild
    # (it holds the lease) instead of starting another.
    my @cli = (7, $N - 6);
    my %cli_pid;
    for my $uid (@cli) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my ($code, undef, $err) = ctl('revoke', "u$uid");
            open my $fh, '>', "$ddir/cli-$uid" or die $!;
            print $fh "$code\n$err";
            close $fh;
            POSIX::_exit(0);
        }
        $cli_pid{$uid} = $pid;
    }
    my $refused_after = wait_until(30, sub { edge_once(key_of(1)) eq $INVALID });
    $refused_after = time - $t_revoked if defined $refused_after;
    diag sprintf 'rebuild of %d users: a revocation made during it is refused at the edge %.2f s later',
        $N, $refused_after // -1;
    for my $uid (@cli) {
        waitpid $cli_pid{$uid}, 0;
        my ($code, $err) = do { local (@ARGV, $/) = "$ddir/cli-$uid"; split /\n/, <>, 2 };
        is($code, 0, "authtokenctl revoke u$uid during the rebuild: exit 0") or diag $err;
    }
    waitpid $sync_pid, 0;
    my $sync_code = $? >> 8;
    undef $sync_pid;
    my $sync_err = do { local (@ARGV, $/) = $err_file; <> // '' };
    my $sync_out = do { local (@ARGV, $/) = $out_file; <> // '' };
    is($sync_code, 0, 'the rebuild finishes: directory sync exits 0') or diag $sync_err;
    like($sync_out, qr/Rebuilt the token directory: \d+ token records copied/, 'it rebuilt')
        or diag $sync_out;
    is(pending(), 0, 'nothing pending');
    is(directory_field('state'), 'ready', 'the directory is ready');
    is(edge_once(key_of($_)), $INVALID, "u$_ (revoked during the rebuild) is refused") for @made, @cli;
    is(edge_once(key_of($_)), $OK, "u$_ (not revoked) is accepted") for 2, 9, int($N / 2), $N - 1;
    my @others = grep { !/^authtoken:token:/ } @{ redis_at($dport, 'KEYS', '*') };
    is(redis_at($dport, 'DBSIZE') - @others, $N - @made - @cli,
       'the directory holds every other record, once');
};

done_testing();
