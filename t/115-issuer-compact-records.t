# Schema version 2, compact records (issue 13 item 2), and `authtokenctl
# migrate` from version 1:
# - what the issuer writes now is in Redis's compact encodings (OBJECT
#   ENCODING listpack for the user record and the token record) with the
#   user record's token digest as its 32 bytes and the sealed key as 49
#   bytes (0x02, the key packed), and the database is marked version 2;
# - version-1 data (the layout and the "v1:" + hex sealed keys the
#   previous issuer wrote, made here by a fixture generator with the same
#   AES-256-GCM under this test's secret file) is read by this issuer as it
#   is, and nginx's module, which reads only token records, accepts it;
# - `authtokenctl migrate` killed (SIGKILL) mid-run leaves whole batches of
#   100 users migrated and the database still marked 1; running it again
#   finishes the job and says how many were already done, a third run
#   changes nothing; every migrated user record is a listpack again, with
#   the digest's bytes and 0x01 || the bytes its "v1:" hex spelled;
# - nginx's verdicts stay right (200, "User inactive or deleted.",
#   "Invalid token.") for requests made while the migration runs, and the
#   issuer hands out the same keys before, during and after;
# - Redis stopped (SIGSTOP) mid-migration under a 300 ms timeout: the CLI
#   exits 3 saying which batch it gave up on and how many users were done,
#   which is what Redis holds once it resumes (the batch in flight whole or
#   not at all, never later);
# - authtokend warns once at startup when hash-max-listpack-value is below
#   128, says nothing at 128 or when CONFIG is denied, and warns of a
#   database still marked version 1.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha256 sha256_hex);
use IPC::Open3;
use POSIX ();
use Symbol qw(gensym);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;

my $n = $ENV{AUTHTOKEN_MIGRATE_USERS} || 10_000;
my $batch = 100;
my $batches = int(($n + $batch - 1) / $batch);   # a run goes through every uid

my $dir = issuer_setup();
my $secret_hex = do {
    open my $fh, '<:raw', "$dir/secret" or die "secret: $!";
    local $/;
    unpack('H*', <$fh>);
};

# Version-1 sealed keys for $count keys, as src/issuer/token_sealer.cpp
# sealed them before schema version 2: "v1:" + hex(nonce || AES-256-GCM of
# the 40-character key || tag), the digest's hex as associated data.
sub v1_sealed_keys {
    my ($count) = @_;
    my $py = <<'PY';
import hashlib, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
secret, count = bytes.fromhex(sys.argv[1]), int(sys.argv[2])
aead = AESGCM(secret)
for i in range(1, count + 1):
    key = "%040x" % (i * 7919 + 1)
    digest = hashlib.sha256(key.encode()).hexdigest()
    nonce = os.urandom(12)
    print(key, "v1:" + (nonce + aead.encrypt(nonce, key.encode(), digest.encode())).hex())
PY
    my $pid = open3(my $in, my $out, my $err = gensym, '/usr/bin/python3', '-c', $py,
                    $secret_hex, $count);
    close $in;
    my @pairs = map { [split ' '] } <$out>;
    waitpid($pid, 0);
    die "fixture generator failed" if $? || @pairs != $count;
    return @pairs;
}

# Users 1..$n as version 1's import_django wrote them (field order too),
# every tenth one inactive.
my @fixture = v1_sealed_keys($n);
my $hash = 'pbkdf2_sha256$1000$c2FsdHNhbHQ$I5sHFPDHtczZE9Btbt5n5WMUluj33c4L2rs6+hyW1lI=';
sub inactive { $_[0] % 10 == 0 }
{
    my @cmds = (['SET', 'authtoken:schema', '1']);
    for my $i (1 .. $n) {
        my ($key, $sealed) = @{ $fixture[$i - 1] };
        my $d = sha256_hex($key);
        my $active = inactive($i) ? '0' : '1';
        push @cmds,
            ['HSET', "authtoken:user:$i", 'username', "user$i", 'password', $hash,
             'is_active', $active, 'is_staff', '0', 'is_superuser', '0',
             'email', "user$i\@example.org", 'date_joined', '2026-11-27T20:26:24.247Z',
             'last_login', '2026-11-28T08:00:00.000Z'],
            ['SET', "authtoken:username:user$i", $i],
            ['ZADD', 'authtoken:users', $i, $i],
            ['HSET', "authtoken:user:$i", 'token', $d, 'token_sealed', $sealed,
             'token_created', '2026-11-27T20:26:24.574Z'],
            ['HSET', token_key($d, 'hex'), 'uid', $i, 'user', "user$i",
             'active', $active, 'expires', '0', 'created', '2026-11-27T20:26:24.574Z'];
        if (@cmds > 5000) { redis_pipeline(@cmds); @cmds = () }
    }
    push @cmds, ['SET', 'authtoken:next-uid', $n];
    redis_pipeline(@cmds);
}
my $mid = int($n / 2) + 1;   # an active user in the middle
is(redis_cmd('OBJECT', 'ENCODING', 'authtoken:user:1'), 'hashtable',
   'fixture: a version-1 user record is a hashtable (its 139-byte sealed key is over the limit)');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /p/ {
            auth_token on;
            alias html/;
        }
    }
HTTP
nginx_html('index.html', "ok\n");

# The verdict nginx gives user $i's key (or a key no one has): the status
# and the DRF detail.
sub verdict {
    my ($key) = @_;
    my $r = http_request('/p/', Authorization => "Token $key");
    return 'no answer' unless $r;
    return $r->{status} == 200 ? '200' : "$r->{status} $r->{body}";
}
sub expected {
    my ($i) = @_;
    return '401 {"detail":"Invalid token."}' unless $i;
    return inactive($i) ? '401 {"detail":"User inactive or deleted."}' : '200';
}
my $unknown = '0' x 40;

subtest 'version-1 data is read as it is by the issuer and the module' => sub {
    is(verdict($fixture[$mid - 1][0]), expected($mid), 'nginx lets an active user\'s key through');
    is(verdict($fixture[9][0]), expected(10), 'and refuses an inactive user\'s key');
    is(verdict($unknown), expected(0), 'and an unknown key');
    is(token_of("user$mid"), $fixture[$mid - 1][0],
       'authtokenctl token hands back the key sealed in version 1\'s form');
    unlike(nginx_error_log(), qr/schema version/, 'the module accepts schema version 1');
    fresh_authtokend();
    like(authtokend_log(), qr/the records are of schema version 1; .*authtokenctl migrate/,
         'authtokend says at startup that the database is not migrated');
    authtokend_stop();
};

# How many user records are in version 2's form (their token is 32 bytes).
sub migrated_count {
    my @len = redis_pipeline(map { ['HSTRLEN', "authtoken:user:$_", 'token'] } 1 .. $n);
    return scalar grep { $_ == 32 } @len;
}

# authtokend started anew, with a log of this start only.
sub fresh_authtokend {
    authtokend_stop();
    unlink "$dir/authtokend.log";
    return authtokend_start(@_);
}

sub ctl_path { ($ENV{AUTHTOKEN_BUILD_DIR} || 'build') . '/authtokenctl' }
sub spawn_migrate {
    my ($out) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec ctl_path(), 'migrate', '--nginx-upgraded' or die "exec: $!";
    }
    return $pid;
}
sub slurp { open my $fh, '<', $_[0] or return ''; local $/; <$fh> }

my $killed_at;
subtest 'killed mid-migration: whole batches only, the database still marked 1' => sub {
    my $pid = spawn_migrate("$dir/killed.out");
    my $until = time + 60;
    while (time < $until) {
        last if redis_cmd('HSTRLEN', 'authtoken:user:1', 'token') == 32;
        sleep 0.001;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $killed_at = migrated_count();
    diag("killed with $killed_at of $n users migrated");
    ok($killed_at > 0 && $killed_at < $n, "killed mid-migration ($killed_at of $n users migrated)");
    is($killed_at % $batch, 0, 'a killed migration leaves whole batches of 100 users only');
    is(redis_cmd('GET', 'authtoken:schema'), '1', 'the database is still marked version 1');
};

subtest 'a re-run finishes while nginx keeps giving the right verdicts' => sub {
    redis_cmd('CONFIG', 'RESETSTAT');
    # Every FCALL here takes longer than 20 us; the commands a function
    # runs inside are logged too, and would slow it down if all were.
    redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', '20');
    redis_cmd('CONFIG', 'SET', 'slowlog-max-len', '1000000');
    redis_cmd('SLOWLOG', 'RESET');
    my $pid = spawn_migrate("$dir/rerun.out");
    my (@wrong, $during, $issued_ok);
    my $i = 0;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        $i = ($i + 96) % $n + 1;   # users all over the uid range, 1..$n
        my $pick = $i % 7 == 0 ? 0 : $i;
        my $key = $pick ? $fixture[$pick - 1][0] : $unknown;
        my $got = verdict($key);
        push @wrong, "user $pick: $got" if $got ne expected($pick);
        $during++;
    }
    my $status = $? >> 8;
    is($status, 0, 'the re-run succeeds') or diag(slurp("$dir/rerun.out"));
    my $rest = $n - $killed_at;
    like(slurp("$dir/rerun.out"),
         qr/^Migrated $rest of $n users to schema version 2 in $batches batches \($killed_at already were\)\.\nRenamed $n token records to schema version 3's names in \d+ batch(?:es)?; the database is marked version 3\.$/m,
         'it reports the users the killed run did as already done');
    diag("$during requests through nginx while the migration ran");
    cmp_ok($during, '>', 0, 'requests were made while it ran');
    is_deeply(\@wrong, [], 'every one got the verdict of its token record');
    # Each batch's time inside Redis (the slow log times every command
    # here): speed is measured, not asserted; docs/capacity.md has figures.
    my $log = redis_cmd('SLOWLOG', 'GET', '-1');
    diag(join ' ', map { ref $_ ? '[' . join(',', @$_) . ']' : $_ } @{ $log->[0] }) if $ENV{DEBUG115};
    my @us = sort { $a <=> $b } map { $_->[2] }
        grep { ($_->[3][1] // '') eq 'authtoken_migrate' } @$log;
    redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
    cmp_ok(scalar @us, '>=', int(($n - $killed_at) / $batch),
           'the re-run made one FCALL per batch of 100 users');
    my ($calls, $usec) = redis_cmd('INFO', 'commandstats') =~ /cmdstat_fcall:calls=(\d+),usec=(\d+)/;
    diag(sprintf('migrate: %d FCALLs of up to %d users, %.2f / %.2f / %.2f ms (fastest / median / slowest), mean %.2f ms; load average %s',
                 scalar @us, $batch, $us[0] / 1000, $us[@us / 2] / 1000, $us[-1] / 1000,
                 $usec / $calls / 1000, (split ' ', `cat /proc/loadavg`)[0])) if @us && $calls;
};

subtest 'migrated records are version 3\'s, compact, and open to the same keys' => sub {
    is(redis_cmd('GET', 'authtoken:schema'), '3', 'the database is marked version 3 (user records, then token record names)');
    is(scalar @{ redis_cmd('KEYS', 'authtoken:token:' . ('[0-9a-f]' x 64)) }, 0, 'no token record has its hex name any more');
    is(migrated_count(), $n, 'every user record holds its digest as 32 bytes');
    my @bad;
    for my $i (1, 2, $mid, $n) {
        my ($key, $v1) = @{ $fixture[$i - 1] };
        my %h = @{ redis_cmd('HGETALL', "authtoken:user:$i") };
        push @bad, "user $i: token" unless $h{token} eq sha256($key);
        push @bad, "user $i: token_sealed"
            unless $h{token_sealed} eq "\x01" . pack('H*', substr($v1, 3));
        push @bad, "user $i: " . redis_cmd('OBJECT', 'ENCODING', "authtoken:user:$i")
            unless redis_cmd('OBJECT', 'ENCODING', "authtoken:user:$i") eq 'listpack';
        push @bad, "user $i: password" unless $h{password} eq $hash;
        push @bad, "user $i: fields" unless keys(%h) == 11;
    }
    is_deeply(\@bad, [], 'the digest as bytes, the sealed key as 0x01 || its bytes, a listpack, the rest as it was');
    my @enc = redis_pipeline(map { ['OBJECT', 'ENCODING', "authtoken:user:$_"] } 1 .. $n);
    is(scalar(grep { $_ ne 'listpack' } @enc), 0, 'every user record is a listpack again');
    is(token_of("user$mid"), $fixture[$mid - 1][0], 'authtokenctl token hands back the same key');
    is(token_of("user$n"), $fixture[$n - 1][0], 'for the last user too');
    is(verdict($fixture[$mid - 1][0]), '200', 'nginx still lets it through');
    my ($code, $out, $err) = ctl('revoke', "user$mid");
    is($code, 0, 'a migrated user\'s token can be revoked') or diag($err);
    is(verdict($fixture[$mid - 1][0]), expected(0), 'and nginx refuses it at once');
};

subtest 'a third run changes nothing' => sub {
    my @before = redis_pipeline(map { ['DUMP', "authtoken:user:$_"] } 1 .. $n);
    my ($code, $out, $err) = ctl('migrate', '--nginx-upgraded');
    is($code, 0, 'it succeeds') or diag($err);
    like($out, qr/^Migrated 0 of $n users to schema version 2 in $batches batches \($n already were\)/m,
         'and says every user already was');
    my @after = redis_pipeline(map { ['DUMP', "authtoken:user:$_"] } 1 .. $n);
    is_deeply(\@after, \@before, 'every user record is byte for byte as it was');
};

subtest 'Redis stops answering mid-migration: exit 3, and what it says is what Redis holds' => sub {
    # Every user back in version 1's form.
    my @cmds = (['SET', 'authtoken:schema', '1']);
    for my $i (1 .. $n) {
        my ($key, $sealed) = @{ $fixture[$i - 1] };
        push @cmds, ['HSET', "authtoken:user:$i", 'token', sha256_hex($key), 'token_sealed', $sealed];
    }
    redis_pipeline(@cmds);
    is(migrated_count(), 0, 'every user is in version 1\'s form again');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$dir/paused.out";
        open STDERR, '>', "$dir/paused.err";
        exec ctl_path(), '--redis-timeout-ms', '300', 'migrate', '--nginx-upgraded' or die "exec: $!";
    }
    my $until = time + 60;
    while (time < $until) {
        last if redis_cmd('HSTRLEN', 'authtoken:user:1', 'token') == 32;
        sleep 0.001;
    }
    redis_pause();
    waitpid($pid, 0);
    my $code = $? >> 8;
    redis_resume();
    sleep 0.2;
    my $err = slurp("$dir/paused.err");
    is($code, 3, 'a CLI that gives up on a batch exits 3') or diag($err);
    my ($k, $after, $done) = $err =~
        /^Error: interrupted in batch (\d+) \(the users after uid (\d+)\): (\d+) users before it were done, that batch was made whole before then or not at all, and will not be made later; running `authtokenctl migrate` again finishes the job and changes nothing twice$/m;
    ok(defined $k, 'it names the batch it gave up on and the users done') or diag($err);
    my $now = migrated_count();
    ok(defined $k && $done == ($k - 1) * $batch && $after == $done
       && ($now == $done || $now == $done + $batch),
       "what it said is what Redis holds ($now users migrated after batch " . ($k // '?') . ' was interrupted)');
    sleep 0.5;
    is(migrated_count(), $now, 'and nothing more is made later');
    is(redis_cmd('GET', 'authtoken:schema'), '1', 'the database is still marked version 1');
    my $out;
    ($code, $out, $err) = ctl('migrate', '--nginx-upgraded');
    like($out, qr/^Migrated @{[$n - $now]} of $n users .*\($now already were\)/m,
         'a re-run finishes the job') or diag($err);
    is(migrated_count(), $n, 'every user is migrated then');
};

subtest 'what the issuer writes now is compact' => sub {
    ctl_ok({ stdin => "new-pass\n" }, 'createuser', 'newcomer', '--password-stdin');
    my $key = token_of('newcomer');
    my $uid = redis_cmd('GET', 'authtoken:username:newcomer');
    my %h = @{ redis_cmd('HGETALL', "authtoken:user:$uid") };
    is($h{token}, sha256($key), 'the user record holds the digest as its 32 bytes');
    is(length $h{token_sealed}, 49, 'the sealed key is 49 bytes');
    is(substr($h{token_sealed}, 0, 1), "\x02", 'in the packed-key form (0x02)');
    is(redis_cmd('OBJECT', 'ENCODING', "authtoken:user:$uid"), 'listpack', 'the user record is a listpack');
    is(redis_cmd('OBJECT', 'ENCODING', token_key($key)), 'listpack',
       'the token record is a listpack');
    diag('MEMORY USAGE: user record ' . redis_cmd('MEMORY', 'USAGE', "authtoken:user:$uid", 'SAMPLES', 0)
         . ' bytes, token record ' . redis_cmd('MEMORY', 'USAGE', token_key($key), 'SAMPLES', 0));
    is(verdict($key), '200', 'nginx lets the new key through');
    nginx_reload();
    sleep 0.5;
    is(verdict($key), '200', 'and after a reload (a new connection reads schema 3)');
    unlike(nginx_error_log(), qr/schema version/, 'the module accepts schema version 3');
};

subtest 'a database of an unknown schema version: writers refuse it, the module says so' => sub {
    redis_cmd('SET', 'authtoken:schema', '4');
    my ($code, $out, $err) = ctl('migrate');
    is($code, 1, 'migrate refuses it (exit 1)');
    like($err, qr/^Error: schema version 4 is not 3; nothing was migrated$/m, 'saying why') or diag($err);
    ($code, $out, $err) = ctl({ stdin => "x-pass\n" }, 'createuser', 'another', '--password-stdin');
    isnt($code, 0, 'createuser refuses it');
    like($err, qr/schema version 4 is not 3/, 'saying why') or diag($err);
    nginx_reload();
    sleep 0.5;
    verdict($unknown);
    like(nginx_error_log(), qr/schema version is "4", this module reads versions 1 to 3/,
         'a new nginx connection logs the version it does not know');
    redis_cmd('SET', 'authtoken:schema', '3');
};

subtest 'authtokend warns when hash-max-listpack-value is below what the records need' => sub {
    fresh_authtokend();
    unlike(authtokend_log(), qr/hash-max-listpack-value/, 'at 128 (redis/redis-test.conf): no warning');
    unlike(authtokend_log(), qr/schema version 1/, 'and none about version 1 any more');
    redis_cmd('CONFIG', 'SET', 'hash-max-listpack-value', '64');
    fresh_authtokend();
    my @lines = authtokend_log() =~ /(hash-max-listpack-value is 64, below the 128 bytes[^\n]*)/g;
    is(scalar @lines, 1, 'at 64: one warning at startup, naming both figures') or diag(authtokend_log());
    redis_cmd('ACL', 'SETUSER', 'noconfig', 'on', '>noconfig-pw', '~*', '&*', '+@all', '-config');
    {
        local $ENV{AUTHTOKEN_REDIS} = 'redis://noconfig:noconfig-pw@127.0.0.1:' . redis_port() . '/0';
        fresh_authtokend();
    }
    unlike(authtokend_log(), qr/hash-max-listpack-value/, 'CONFIG denied by the ACL: nothing said');
    like(authtokend_log(), qr/\S/, 'though the daemon logged its start');
    authtokend_stop();
    redis_cmd('CONFIG', 'SET', 'hash-max-listpack-value', '128');
};

done_testing();
