# The issuer's Redis Functions library, redis/authtoken.lua: authtokenctl
# loads it when it connects and authtokend at startup, each only when
# Redis holds another version (the file's SHA-1); a call that finds it gone
# (FUNCTION FLUSH, a Redis restarted without persistence) or replaced by
# another version (another issuer's) loads it again, once, and runs; a
# replaced version is logged; a function never runs for a caller of
# another version. At startup, replacing an earlier library once is the
# upgrade (info); while running, another issuer put its own back (warn).
# The library of release 6188f14 (schema version 2, t/fixtures), put back
# while the database is marked 3-partial or 3, is an issuer of an earlier
# release whose writes nothing reads: authtokend and authtokenctl say so at
# error, at startup too.
use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1_hex);
use File::Basename qw(dirname);
use Test::More;
use Time::HiRes qw(sleep);

use AuthToken::TestRedis;
use AuthToken::Issuer;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $source = do { local (@ARGV, $/) = "$repo/redis/authtoken.lua"; <> };
my $version = sha1_hex($source);

# (FCALL, not FCALL_RO: libredis-perl, under redis_cmd, sends a command
# name with an underscore as two words.)
sub loaded_version {
    my $v = eval { redis_cmd('FCALL', 'authtoken_version', 0) };
    return defined $v ? $v : "none ($@)";
}

# How many FUNCTION LOADs Redis has run since it started.
sub loads {
    my $info = redis_cmd('INFO', 'commandstats');
    return $info =~ /^cmdstat_function\|load:calls=(\d+)/m ? $1 : 0;
}

# The library of another release: here ours with another version in it.
sub load_other_version {
    (my $other = $source) =~ s/'\@LIBRARY_VERSION\@'/'other-release'/
        or die "no version mark in redis/authtoken.lua";
    redis_cmd('FUNCTION', 'LOAD', 'REPLACE', $other);
}

issuer_setup();
like(loaded_version(), qr/^none .*Function not found/, 'a new Redis has no library');

ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
is(loaded_version(), $version,
   'authtokenctl loaded the library, versioned by the SHA-1 of redis/authtoken.lua');
is(loads(), 1, 'with one FUNCTION LOAD');
my $alice = token_of('alice');
ctl_ok({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
is(loads(), 1, 'later runs find that version loaded and load nothing');

authtokend_start();
is(loads(), 1, 'nor does authtokend at startup');
like(authtokend_log(), qr/Functions library authtoken \Q$version\E already loaded/,
     'authtokend says which version it found');

my ($s, undef, $b) = obtain_direct('alice', 'alice-pw');
is("$s $b", qq{200 {"token":"$alice"}}, 'a login runs the library\'s functions');

subtest 'a function is not run for a caller of another version' => sub {
    my ($sec, $usec) = @{ redis_cmd('TIME') };
    my $deadline = $sec * 1000 + int($usec / 1000) + 5000;
    my $r = eval {
        redis_cmd('FCALL', 'authtoken_revoke_token', 1, 'authtoken:username:alice',
                  'other-release', $deadline);
    } // "$@";
    like($r, qr/STALE: library version \Q$version\E is loaded, the caller has other-release/,
         'STALE, naming both versions');
    is(redis_cmd('HGET', token_key($alice), 'user'), 'alice',
       'and the token is not revoked');
};

subtest 'the library flushed: the next call loads it again, once' => sub {
    redis_cmd('FUNCTION', 'FLUSH');
    my ($s, undef, $b) = obtain_direct('alice', 'alice-pw');
    is("$s $b", qq{200 {"token":"$alice"}}, 'the login succeeds');
    is(loaded_version(), $version, 'authtokend loaded the library');
    is(loads(), 2, 'with one FUNCTION LOAD');
};

subtest 'Redis restarted without persistence: loaded again on the first call' => sub {
    redis_kill();
    redis_restart();   # nothing was saved: an empty Redis, no library
    like(loaded_version(), qr/^none/, 'the restarted Redis has no library');
    # The pool's connections died with the old server: a login may fail
    # on one (503) before the pool reconnects, as in t/510.
    my ($s, $b);
    for (1 .. 20) {
        ($s, undef, $b) = obtain_direct('alice', 'alice-pw');
        last if $s != 503;
        sleep 0.1;
    }
    is("$s $b", '400 {"non_field_errors":["Unable to log in with provided credentials."]}',
       'a login is answered (alice is gone with the data): not 503');
    is(loaded_version(), $version, 'authtokend loaded the library');
    ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
    ($s) = obtain_direct('alice', 'alice-pw');
    is($s, 200, 'and alice, created again, logs in');
    $alice = token_of('alice');
};

subtest 'another issuer\'s version in Redis: replaced, and said so' => sub {
    load_other_version();
    is(loaded_version(), 'other-release', 'another version is loaded');
    my ($s, undef, $b) = obtain_direct('alice', 'alice-pw');
    is("$s $b", qq{200 {"token":"$alice"}}, 'authtokend\'s login succeeds');
    is(loaded_version(), $version, 'with its own version loaded again');
    like(authtokend_log(),
         qr/warn.*replaced Functions library authtoken other-release with this issuer's/,
         'and a warning in its log');

    load_other_version();
    my ($code, $out, $err) = ctl({ stdin => "carol-pw\n" }, 'createuser', 'carol',
                                 '--password-stdin');
    is($code, 0, 'authtokenctl createuser succeeds') or diag $err;
    like($err, qr/^authtokenctl: warning: replaced Functions library authtoken other-release/m,
         'warning that it replaced the other version');
    is(loaded_version(), $version, 'whose library is now loaded');
    ($code, $out, $err) = ctl('token', 'carol');
    is($code, 0, 'a second run');
    unlike($err, qr/replaced/, 'finds its own version and says nothing');
};

# The library of release 6188f14, the last of schema version 2, as its
# issuer loads it.
sub load_6188f14 {
    my $old = do { local (@ARGV, $/) = "$repo/t/fixtures/authtoken-6188f14.lua"; <> };
    $old =~ s/'\@LIBRARY_VERSION\@'/'release-6188f14'/ or die "no version mark in the 6188f14 library";
    redis_cmd('FUNCTION', 'LOAD', 'REPLACE', $old);
    is(loaded_version(), 'release-6188f14', "6188f14's library is loaded");
}

# authtokend's log from here on.
sub log_mark { length authtokend_log() }
sub log_since { substr(authtokend_log(), $_[0]) }

my $EARLIER = qr/an issuer of an earlier release is writing to this schema-3 database: its revocations and deactivations are lost; stop it/;

subtest 'an upgrade: the earlier library replaced at startup is said at info, not warned' => sub {
    authtokend_stop();
    redis_cmd('SET', 'authtoken:schema', '2');   # before migrate, as the docs order it
    load_6188f14();
    my $mark = log_mark();
    authtokend_start();
    is(loaded_version(), $version, 'authtokend loaded its own at startup');
    my $log = log_since($mark);
    like($log, qr/\[info\] redis: replaced Functions library authtoken release-6188f14 with this issuer's \(an upgrade replaces the earlier library once\)/,
         'saying so at info') or diag($log);
    unlike($log, qr/\[(?:warn|error)\] .*Functions library/, 'with no warning or error about it') or diag($log);
    redis_cmd('SET', 'authtoken:schema', '3');
};

subtest 'an issuer of the earlier release on a schema-3 database: error, naming the consequence' => sub {
    is(redis_cmd('GET', 'authtoken:schema'), '3', 'the database is marked 3');
    load_6188f14();   # as an old authtokend started after migrate does
    my $mark = log_mark();
    my ($s, undef, $b) = obtain_direct('alice', 'alice-pw');
    is("$s $b", qq{200 {"token":"$alice"}}, 'authtokend\'s login succeeds');
    is(loaded_version(), $version, 'with its own library loaded again');
    my $log = log_since($mark);
    like($log, qr/\[error\] redis: $EARLIER \(it loaded Functions library authtoken release-6188f14, which knows no schema version 3, while authtoken:schema is 3;/,
         'authtokend logs an error that says what is lost') or diag($log);
    unlike($log, qr/\[warn\]/, 'not the generic warning') or diag($log);

    authtokend_stop();
    load_6188f14();
    $mark = log_mark();
    authtokend_start();
    like(log_since($mark), qr/\[error\] redis: $EARLIER/, 'at startup too (migrate left this release\'s library)')
        or diag(log_since($mark));

    redis_cmd('SET', 'authtoken:schema', '3-partial');
    load_6188f14();
    my ($code, $out, $err) = ctl('token', 'carol');
    is($code, 0, 'authtokenctl runs') or diag($err);
    like($err, qr/^authtokenctl: error: $EARLIER \(.*authtoken:schema is 3-partial;/m,
         'authtokenctl says it on stderr, at 3-partial too') or diag($err);
    unlike($err, qr/warning/, 'not the generic warning');
    redis_cmd('SET', 'authtoken:schema', '3');

    load_other_version();   # another release of schema 3
    $mark = log_mark();
    ($s) = obtain_direct('alice', 'alice-pw');
    is($s, 200, 'a login');
    my $other = log_since($mark);
    like($other, qr/\[warn\] redis: replaced Functions library authtoken other-release with this issuer's: an issuer of another version shares this Redis/,
         'a library that knows schema 3 put back while running: the warning') or diag($other);
    unlike($other, qr/\[error\]/, 'not the error');
};

done_testing();
