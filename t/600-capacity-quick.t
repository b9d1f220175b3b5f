# tools/capacity --quick (docs/capacity.md's figures at 10^4 users) runs
# to the end against private servers, its two loaders (the real
# `authtokenctl import-django` and the redis-cli --pipe it uses at 10^6)
# still write the same keys, values and encodings, and its report agrees
# with itself. Fails when the store format changes and the tool's pipe
# loader was not changed with it: the figures in docs/capacity.md would
# then no longer describe what the issuer writes.
use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use JSON::PP;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $build = $ENV{AUTHTOKEN_BUILD_DIR} || "$repo/build";
for my $tool (qw(redis-server redis-cli redis-benchmark)) {
    plan skip_all => "$tool is missing (Debian package redis-tools)"
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

my $dir = tempdir(CLEANUP => 1);
my $json = "$dir/capacity.json";
my $out = qx{$repo/tools/capacity --quick --check-loader 300 --build-dir $build --json $json 2>&1};
is($? >> 8, 0, 'tools/capacity --quick exits 0 (its own consistency checks pass)')
    or diag($out);
my $res = eval { decode_json(do { local (@ARGV, $/) = $json; <> }) };
ok($res, 'it writes its figures as JSON') or BAIL_OUT("no JSON:\n$out");

my $check = $res->{loader_check};
ok($check && $check->{identical},
   'import-django and the pipe loader write identical keys, values, encodings and MEMORY USAGE');
is($check->{keys}, 3 * 300 + 4, 'the loader check compared every key of 300 users');

my ($m) = @{ $res->{memory} };
my $n = $m->{users};
is($n, 10000, '--quick measures 10^4 users');
is($m->{loader}, 'import', '10^4 users are loaded by the real import-django');
is($m->{keys}, 3 * $n + 4,
   'three keys per user (user, username, token record) and four shared ones');
is($m->{used_memory_delta}, $m->{used_memory_after} - $m->{used_memory_before},
   'the used_memory delta is after minus before');
cmp_ok(abs($m->{per_user} * $n - $m->{used_memory_delta}), '<', 1,
       'the per-user figure is the used_memory delta over N');
is($m->{replica}{keys}, $m->{keys}, 'the edge replica holds every key of the primary');
cmp_ok(abs($m->{replica}{per_user} - $m->{per_user}), '<', 0.1 * $m->{per_user},
       'the replica holds about as much per user as the primary');
is($m->{directory_only}{keys}, $n, 'the token records alone are N keys');
is_deeply($m->{directory_only}{token_record}, $m->{token_record},
          'a token record takes the same memory with or without its user');
cmp_ok($m->{directory_only}{per_token}, '<', $m->{per_user},
       'a token record alone costs less than a whole user');
# Schema version 2 under redis/redis.conf's hash-max-listpack-value 128:
# every record in Redis's compact encoding (docs/capacity.md).
is($m->{user_hash}{encoding}, 'listpack', 'a user record is a listpack');
is($m->{token_record}{encoding}, 'listpack', 'a token record is a listpack');
cmp_ok($m->{user_hash_longest_value}, '<=', 128,
       "the user record's longest value fits hash-max-listpack-value 128");
my $parts = $m->{user_hash}{memory_usage} + $m->{token_record}{memory_usage}
    + $m->{username_key}{memory_usage};
cmp_ok($parts, '<=', $m->{per_user}, "one user's own keys fit in the per-user figure");

for my $l (@{ $res->{lookups} }) {
    cmp_ok($l->{requests_per_second}{median}, '>', 0,
           "redis-benchmark HMGET -P $l->{pipeline} measured a rate");
    like($l->{command}, qr/HMGET authtoken:token:A{31}__rand_int__ uid user active expires/,
         "-P $l->{pipeline} sends the module's lookup against 64-character keys");
}
is(scalar @{ $res->{lookups} }, 2, 'lookups without and with pipelining');

my %hash = map { $_->{hasher} => $_ } @{ $res->{logins} };
is($hash{pbkdf2_sha256}{stored_hash_prefix}, 'pbkdf2_sha256$600000',
   'logins are timed against the default hash, pbkdf2_sha256 at 600000 iterations');
is($hash{argon2id}{stored_hash_prefix}, 'argon2$argon2id$v=19$m=102400,t=2,p=8',
   "and against Django's argon2id parameters");
for my $h (values %hash) {
    cmp_ok($h->{cpu_ms_per_login}{median}, '>', 0, "$h->{hasher}: CPU per login measured");
    cmp_ok($h->{redis_commands_per_login}{median}, '>', 0,
           "$h->{hasher}: Redis commands per login counted");
}
is_deeply($res->{problems}, [], 'the report has no inconsistency');

done_testing();
