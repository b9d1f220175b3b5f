# Durability: with the AOF of redis/redis-durable-test.conf, every user and
# token the issuer acknowledged survives Redis being killed (SIGKILL) right
# after the acknowledgment, and authenticates through nginx once Redis is
# restarted from its files. Run with `appendfsync always` (the strict
# setting: fsync before the reply; killed right after each acknowledgment)
# and, by t/521, `appendfsync everysec`. Under everysec Redis may postpone
# its write(2) to the AOF for up to 2 s while a background fsync is still
# running, replying meanwhile (aof.c, flushAppendOnlyFile), so a killed
# process can lose the writes of its last ~2 s; t/521 kills only after
# AUTHTOKEN_DURABILITY_SETTLE seconds, which is the guarantee it checks.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;
use AuthToken::Hostile;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $fsync = $ENV{AUTHTOKEN_TEST_APPENDFSYNC} || 'always';

# TestRedis starts $TEST_REDIS_SERVER with redis-test.conf first; this
# wrapper swaps in the durable config and the fsync policy.
my $wrap_dir = tempdir(CLEANUP => 1);
my $real = $ENV{TEST_REDIS_SERVER} || 'redis-server';
open my $w, '>', "$wrap_dir/redis-durable" or die;
print $w <<"SH";
#!/bin/sh
shift
exec $real $repo/redis/redis-durable-test.conf "\$@" --appendfsync "\${AUTHTOKEN_TEST_APPENDFSYNC:-always}"
SH
close $w;
chmod 0755, "$wrap_dir/redis-durable";
$ENV{TEST_REDIS_SERVER} = "$wrap_dir/redis-durable";

issuer_setup();
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                 '--throttle-user-addr-rate', 'off');
is(redis_cmd('CONFIG', 'GET', 'appendonly')->[1], 'yes', 'Redis runs with the AOF');
my $policy = redis_cmd('CONFIG', 'GET', 'appendfsync')->[1];
is($policy, $fsync, "appendfsync $fsync");

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            default_type application/json;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "{}\n");
my $nport = nginx_port();

sub api {
    my ($key) = @_;
    return raw_http($nport, "GET /api/hello HTTP/1.1\r\nHost: x\r\n"
        . "Authorization: Token $key\r\nConnection: close\r\n\r\n");
}

my (@gaps, %acked_user, %acked_token, %revoked_token, %password);

# SIGKILL right after an acknowledgment, restart from the files, and wait
# until both the daemon and nginx see Redis again.
my $SETTLE = $ENV{AUTHTOKEN_DURABILITY_SETTLE} || 0;

sub crash_and_restart {
    my ($acked_at) = @_;
    sleep $SETTLE if $SETTLE;
    redis_kill();
    push @gaps, time - $acked_at;
    redis_restart();
    wait_until(3, sub { my ($s) = daemon_request('GET', '/healthz'); $s == 200 })
        // die 'the daemon did not see Redis again';
}

my $ROUNDS = $ENV{AUTHTOKEN_DURABILITY_ROUNDS} || 15;
for my $i (1 .. $ROUNDS) {
    # 1. createuser (the token is created with the user), then crash.
    my $name = "user$i";
    $password{$name} = "pw-$i-" . int rand 1e6;
    my ($code, $out, $err) = ctl({ stdin => "$password{$name}\n" }, 'createuser', $name, '--password-stdin');
    my $t = time;
    die "createuser $name: $err" if $code;
    $acked_user{$name} = 1;
    crash_and_restart($t);

    # 2. a login that creates the token (auto_create_token off), then crash.
    my $late = "late$i";
    $password{$late} = "late-pw-$i";
    ctl_ok({ stdin => "$password{$late}\n" }, 'createuser', $late, '--password-stdin', '--no-auto-create-token');
    $acked_user{$late} = 1;
    my ($s, undef, $b) = obtain_direct($late, $password{$late});
    $t = time;
    die "obtain $late: $s $b" unless $s == 200;
    my ($tok) = $b =~ /"token":"([0-9a-f]{40})"/;
    $acked_token{$late} = $tok;
    crash_and_restart($t);

    # 3. token -r, then crash: the new key must be the one that survives.
    my $old = $i > 1 ? token_of('user' . ($i - 1)) : undef;
    if ($old) {
        my $prev = 'user' . ($i - 1);
        my $new = token_of($prev, '-r');
        $t = time;
        $acked_token{$prev} = $new;
        $revoked_token{$prev} = $old;
        crash_and_restart($t);
    }

    # 4. changepassword, then crash.
    if ($i % 3 == 0) {
        my $pw = "changed-$i";
        ctl_ok({ stdin => "$pw\n" }, 'changepassword', "late$i", '--password-stdin');
        $t = time;
        $password{"late$i"} = $pw;
        crash_and_restart($t);
    }
}

ok(defined wait_until(3, sub { my $r = api($acked_token{late1}); $r && $r->{status} == 200 }),
   'nginx reconnects after the last restart');

subtest 'every acknowledged user survived and logs in with its latest password' => sub {
    for my $name (sort keys %acked_user) {
        my ($s, undef, $b) = obtain_direct($name, $password{$name});
        is($s, 200, "$name logs in") or diag $b;
        my ($tok) = $b =~ /"token":"([0-9a-f]{40})"/;
        if (my $want = $acked_token{$name}) {
            is($tok, $want, "$name: the acknowledged token, not a new one");
        }
    }
};

subtest 'every acknowledged token authenticates through nginx; every replaced one is refused' => sub {
    for my $name (sort keys %acked_token) {
        my $r = api($acked_token{$name});
        is("$r->{status} $r->{headers}{'x-user'}", "200 $name", "${name}'s acknowledged token: 200");
    }
    for my $name (sort keys %revoked_token) {
        my $r = api($revoked_token{$name});
        is($r->{status}, 401, "${name}'s replaced token stays refused");
    }
};

is_deeply([keyspace_problems()], [], 'the keyspace is consistent after all the crashes');
my $crashes = @gaps;
my @sorted = sort { $a <=> $b } @gaps;
diag(sprintf 'appendfsync %s: %d SIGKILLs, ack-to-kill gap median %.2f ms, max %.2f ms; %d users, %d tokens checked',
             $policy, $crashes, 1000 * $sorted[@sorted / 2], 1000 * $sorted[-1],
             scalar keys %acked_user, scalar keys %acked_token) if $ENV{TEST_VERBOSE};
cmp_ok($crashes, '>=', 3 * $ROUNDS, 'Redis was killed after every acknowledgment');
cmp_ok($sorted[-1], '<', $SETTLE + 0.05,
       "each kill came within ${SETTLE}s + 50 ms of the acknowledgment");
is_deeply([bad_log_lines(nginx_error_log())], [], 'no alert, crit or signal in nginx\'s log');

nginx_stop();
done_testing();
