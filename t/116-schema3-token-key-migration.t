# Schema version 3 (issue 13 item 3's edge target): token records named
# authtoken:token:<43 base64url> instead of <64 hex>, and the rolling
# upgrade from version 2 with no wrong verdict at any point:
# - nginx of this version serves a schema-2 database (hex names) as it is:
#   a valid token 200, an inactive user's and an unknown one 401;
# - an issuer of this version keeps writing hex names while the database
#   is marked 2 (older nginx keeps working until the migration starts);
# - `authtokenctl migrate` of 5000 records, with a client hammering nginx
#   with valid, inactive and unknown tokens all along: zero wrong verdicts;
#   killed mid-rename (SIGKILL while Redis is stopped) it leaves the
#   database marked 3-partial, half renamed, still answered right; a
#   token created then gets the new name only, a revocation made then is
#   honoured at once; a re-run finishes: schema 3, no hex name left, and a
#   third run renames nothing;
# - the names Lua (the issuer's writes), C++ (nginx's lookups) and this
#   test's token_key() spell agree;
# - at schema 3 a new nginx connection sends one HMGET per lookup
#   (MONITOR), not the hex one too.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Select;
use IO::Socket::INET;
use POSIX ();

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;

my $n = 5000;
my $dir = issuer_setup();

# A schema-2 database as the issuer of version 2 left it: token records
# under their hex names. Every 10th user inactive.
redis_cmd('SET', 'authtoken:schema', '2');
my @keys = map { sprintf('5c4e3a%034x', $_) } 1 .. $n;
sub inactive { $_[0] % 10 == 0 }
{
    my @cmds;
    for my $i (1 .. $n) {
        push @cmds, ['HSET', token_key($keys[$i - 1], 'hex'), 'uid', $i, 'user', "user$i",
                     'active', inactive($i) ? '0' : '1', 'expires', '0',
                     'created', '2026-11-30T00:00:00Z'];
        if (@cmds >= 1000) { redis_pipeline(@cmds); @cmds = () }
    }
    redis_pipeline(@cmds) if @cmds;
}

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

sub verdict {
    my ($key) = @_;
    my $r = http_request('/p/', Authorization => "Token $key");
    return 'no answer' unless $r;
    return $r->{status} == 200 ? '200' : "$r->{status} $r->{body}";
}
my $invalid = '401 {"detail":"Invalid token."}';
my $inactive = '401 {"detail":"User inactive or deleted."}';
sub expected { my ($i) = @_; !$i ? $invalid : inactive($i) ? $inactive : '200' }
my $unknown = 'f' x 40;
sub hex_names { scalar @{ redis_cmd('KEYS', 'authtoken:token:' . ('[0-9a-f]' x 64)) } }
sub b64_names { scalar grep { !/:[0-9a-f]{64}\z/ } @{ redis_cmd('KEYS', 'authtoken:token:*') } }

subtest 'this nginx serves a schema-2 database (hex names) as it is' => sub {
    is(verdict($keys[0]), '200', 'a valid token: 200');
    is(verdict($keys[9]), $inactive, "an inactive user's token: 401");
    is(verdict($unknown), $invalid, 'an unknown token: 401');
    unlike(nginx_error_log(), qr/schema version/, 'and it logs nothing about the schema');
};

my ($alice, $bob);
subtest 'at schema 2 this issuer keeps writing hex names' => sub {
    ctl_ok({ stdin => "alice-pass\n" }, 'createuser', 'alice', '--password-stdin');
    ctl_ok({ stdin => "bob-pass\n" }, 'createuser', 'bob', '--password-stdin');
    ($alice, $bob) = (token_of('alice'), token_of('bob'));
    is(redis_cmd('EXISTS', token_key($alice, 'hex')), 1, "alice's record has its hex name");
    is(redis_cmd('EXISTS', token_key($alice)), 0, 'and not the new one');
    is(redis_cmd('GET', 'authtoken:schema'), '2', 'the database is still marked 2');
    is(verdict($alice), '200', 'nginx lets it through');
};

# A client hammering nginx from another process until told to stop;
# returns (pid, file of wrong verdicts, file of the count).
sub hammer {
    my ($tag) = @_;
    my ($wrong, $count, $stop) = map { "$dir/hammer-$tag.$_" } qw(wrong count stop);
    unlink $wrong, $count, $stop;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($i, $done, @bad) = (0, 0);
        until (-e $stop) {
            $i = ($i + 97) % $n + 1;
            my $pick = $i % 7 == 0 ? 0 : $i;
            my $got = verdict($pick ? $keys[$pick - 1] : $unknown);
            push @bad, "user $pick: $got" if $got ne expected($pick);
            $done++;
        }
        open my $fh, '>', $wrong; print $fh map { "$_\n" } @bad; close $fh;
        open $fh, '>', $count; print $fh $done; close $fh;
        POSIX::_exit(0);
    }
    return sub {
        open my $fh, '>', $stop; close $fh;
        waitpid($pid, 0);
        my @bad = do { open my $w, '<', $wrong or die "hammer: $!"; <$w> };
        my $done = do { open my $c, '<', $count or die "hammer: $!"; local $/; <$c> };
        return ($done, @bad);
    };
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

subtest 'migrate without --nginx-upgraded does not start the rename' => sub {
    # An nginx of an earlier release reads hex names only: the rename would
    # make every uncached token 401 there. Only the operator can say none
    # is left (on the primary or a replica).
    my ($code, $out, $err) = ctl('migrate');
    is($code, 2, 'it exits 2') or diag($out, $err);
    like($out, qr/^Migrated 0 of \d+ users to schema version 2/m,
         'after the first step (which needs no word)') or diag($out);
    like($err, qr/^authtokenctl migrate: the rename of token records to schema version 3's names was not started \(the user store is marked 2\): an nginx whose ngx_http_auth_token_module is of a release before schema version 3 would answer 401 for every token it has not cached, .*When every nginx reading this Redis or its replicas runs ngx_http_auth_token_module of this release or later .*run `authtokenctl migrate --nginx-upgraded`$/m,
         'saying why and what to do') or diag($err);
    unlike($out, qr/^Renamed/m, 'nothing is renamed');
    is(redis_cmd('GET', 'authtoken:schema'), '2', 'the database is still marked 2');
    is(hex_names(), $n + 2, 'every token record keeps its hex name');
};

subtest 'killed mid-rename: marked 3-partial, half renamed, verdicts right' => sub {
    my $stop = hammer('killed');
    sleep 0.3;
    my $pid = spawn_migrate("$dir/killed.out");
    my $until = time + 30;
    my $schema = '';
    while (time < $until) {
        $schema = redis_cmd('GET', 'authtoken:schema') // '';
        last if $schema ne '2';
        sleep 0.0005;
    }
    # Redis stopped: the CLI is killed between two batches or with one in
    # flight (which Redis then runs whole), never after the last.
    redis_pause();
    kill 'KILL', $pid;
    waitpid($pid, 0);
    redis_resume();
    is($schema, '3-partial', 'the first batch marked the database 3-partial');
    my ($hex, $new) = (hex_names(), b64_names());
    diag("killed with $new records renamed, $hex hex names left");
    ok($hex > 0 && $new > 0, "half renamed ($new new names, $hex hex names)");
    is(redis_cmd('GET', 'authtoken:schema'), '3-partial', 'and still marked 3-partial');
    sleep 0.3;
    my ($done, @bad) = $stop->();
    diag("$done requests through nginx meanwhile");
    cmp_ok($done, '>', 0, 'requests were made meanwhile');
    is_deeply(\@bad, [], 'every one got its record\'s verdict');
};

subtest 'while 3-partial: new tokens get the new name only, a revocation is honoured at once' => sub {
    is(redis_cmd('EXISTS', token_key($bob, 'hex')) + redis_cmd('EXISTS', token_key($bob)), 1,
       "bob's record has one name");
    ctl_ok({ stdin => "carol-pass\n" }, 'createuser', 'carol', '--password-stdin');
    my $carol = token_of('carol');
    is(redis_cmd('EXISTS', token_key($carol)), 1, "carol's new record has the new name");
    is(redis_cmd('EXISTS', token_key($carol, 'hex')), 0, 'and no hex name');
    is(verdict($carol), '200', 'nginx lets it through');
    is(verdict($bob), '200', "bob's token works");
    my ($code, $out, $err) = ctl('revoke', 'bob');
    is($code, 0, "bob's token is revoked") or diag($err);
    is(verdict($bob), $invalid, 'nginx refuses it at once');
    is(redis_cmd('EXISTS', token_key($bob, 'hex')) + redis_cmd('EXISTS', token_key($bob)), 0,
       'under neither name');
    # nginx's touch names records by hex while its schema is not 3: the
    # record under whichever name it has is updated, none is created.
    my ($hexed) = grep { redis_cmd('EXISTS', token_key($_, 'hex')) } @keys;
    my ($renamed) = grep { redis_cmd('EXISTS', token_key($_)) } @keys;
    my $now = int time;
    is_deeply(redis_cmd('FCALL', 'authtoken_touch', 3, map({ token_key($_, 'hex') } $hexed, $renamed, $unknown),
                        '1', map { ($now, '127.0.0.1') } 1 .. 3),
              [2, 0], 'authtoken_touch of hex names: two records updated');
    is(redis_cmd('HGET', token_key($hexed, 'hex'), 'last_used'), $now, 'one still under its hex name');
    is(redis_cmd('HGET', token_key($renamed), 'last_used'), $now, 'one under its new name');
    is(redis_cmd('EXISTS', token_key($unknown)) + redis_cmd('EXISTS', token_key($unknown, 'hex')), 0,
       'and none created');
};

subtest 'a re-run finishes: schema 3, no hex name left, zero wrong verdicts' => sub {
    my $stop = hammer('rerun');
    sleep 0.3;
    # Each batch's time inside Redis: measured (diag), not asserted.
    redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', '100');
    redis_cmd('CONFIG', 'SET', 'slowlog-max-len', '100000');
    redis_cmd('SLOWLOG', 'RESET');
    my $pid = spawn_migrate("$dir/rerun.out");
    waitpid($pid, 0);
    is($? >> 8, 0, 'the re-run succeeds') or diag(slurp("$dir/rerun.out"));
    like(slurp("$dir/rerun.out"),
         qr/^Renamed \d+ token records to schema version 3's names in \d+ batch(?:es)?; the database is marked version 3\.$/m,
         'it says how many it renamed') or diag(slurp("$dir/rerun.out"));
    my @us = sort { $a <=> $b } map { $_->[2] }
        grep { ($_->[3][1] // '') eq 'authtoken_migrate_tokens' } @{ redis_cmd('SLOWLOG', 'GET', '-1') };
    redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
    diag(sprintf('migrate_tokens: %d FCALLs over 0.1 ms of SCAN COUNT 500, median %.2f ms, slowest %.2f ms; load average %s',
                 scalar @us, $us[@us / 2] / 1000, $us[-1] / 1000, (split ' ', `cat /proc/loadavg`)[0])) if @us;
    sleep 0.3;
    my ($done, @bad) = $stop->();
    diag("$done requests through nginx meanwhile");
    is_deeply(\@bad, [], 'every request got its record\'s verdict');
    is(redis_cmd('GET', 'authtoken:schema'), '3', 'the database is marked 3');
    is(hex_names(), 0, 'no hex name is left');
    is(b64_names(), $n + 2, 'every record has its new name (the seeded ones, alice and carol)');
    is(verdict($keys[0]), '200', 'a valid token: 200');
    is(verdict($keys[9]), $inactive, "an inactive user's: 401");
    is(verdict($alice), '200', "alice's (written by the issuer at schema 2): 200");
    my ($code, $out, $err) = ctl('migrate', '--nginx-upgraded');
    is($code, 0, 'a third run succeeds') or diag($err);
    like($out, qr/^Renamed 0 token records/m, 'and renames nothing');
};

subtest 'Lua, C++ and token_key() spell the same name' => sub {
    ctl_ok({ stdin => "dave-pass\n" }, 'createuser', 'dave', '--password-stdin');
    my $dave = token_of('dave');
    my @mine = grep { (redis_cmd('HGET', $_, 'user') // '') eq 'dave' }
        @{ redis_cmd('KEYS', 'authtoken:token:*') };
    is_deeply(\@mine, [token_key($dave)], "the issuer's library names dave's record as token_key() does");
    like($mine[0], qr/\Aauthtoken:token:[A-Za-z0-9_-]{43}\z/, '43 base64url characters');
    is(verdict($dave), '200', 'and nginx finds it by that name');
};

subtest 'at schema 3 a lookup is one HMGET' => sub {
    nginx_reload();
    sleep 0.5;
    verdict($keys[1]);   # the connection is set up
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . redis_port(), Timeout => 5)
        or die "monitor: $!";
    print $s "MONITOR\r\n";
    like(scalar <$s>, qr/^\+OK/, 'MONITOR');
    sleep 1.2;   # past the module's schema re-read, if it were still asking
    is(verdict($keys[2]), '200', 'a valid token: 200');
    is(verdict($unknown), $invalid, 'an unknown one: 401');
    my ($sel, $buf) = (IO::Select->new($s), '');
    my $t0 = time;
    while (time - $t0 < 0.5) {
        sysread($s, $buf, 65536, length $buf) if $sel->can_read(0.1);
    }
    my @hmget = $buf =~ /"HMGET"[^\n]*/g;
    is(scalar @hmget, 2, 'two lookups, two HMGETs') or diag(join "\n", @hmget);
    is(scalar(grep { /"authtoken:token:[0-9a-f]{64}"/ } @hmget), 0, 'none of a hex name');
    unlike($buf, qr/"GET" "authtoken:schema"/, 'and no schema re-read');
};

done_testing();
