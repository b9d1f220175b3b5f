# authtokend with a separate token directory (docs/operations.md, "Two
# stores"; docs/authtokend.md, "A separate token directory"): nginx reads
# only the directory (a second real redis-server). A login, a logout and an
# admin revocation are applied there before the daemon answers 2xx; a
# SIGSTOPped directory gets 503 with Retry-After and the catalogue body,
# and the daemon's replayer thread applies the change once it is back,
# without another request (a login so answered in DRF's one-token mode
# keeps its token, which the next login hands out); a directory killed and restarted empty is
# rebuilt by that thread; the heartbeat goes into the directory only while
# it is complete, so an emptied directory trips auth_token_max_lag (503)
# instead of answering 401 for every token; a daemon already running when
# `authtokenctl directory init` marks its store answers writes 503; twelve
# concurrent logins each get a token the edge accepts.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Digest::SHA qw(sha1_hex);
use JSON::PP qw(decode_json);
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

my $repo = abs_path(dirname(__FILE__) . '/..');

issuer_setup();    # the user store: the test's Redis

my $dport = directory_setup();    # the token directory
my $ddir = directory_dir();
my $owner = $$;
END { local $?; redis_resume() if $$ == $owner }

directory_nginx_start(locations => <<'NGINX');
        location /lag/ {
            auth_token on;
            auth_token_max_lag 3s;
            alias html/;
        }
NGINX

# edge_once($token, $where): the edge's verdict, "200 ok" or status and body.

# The edge's verdict once nginx's link to the directory is back (it
# reconnects with a backoff of at most 500 ms after a failure).
sub edge_settled {
    my ($token) = @_;
    for (1 .. 30) { my $v = edge_once($token); return $v if $v !~ /^503/; sleep 0.1 }
    return edge_once($token);
}
my $INVALID = q{401 {"detail":"Invalid token."}};
my $BEHIND = q{{"detail":"The change is recorded; it reaches the edges when the token directory is back."}};
my $NOT_FED = q{{"detail":"The change is recorded, but this issuer does not feed the token directory: it reaches the edges with the next directory sync."}};

sub daemon {
    my ($method, $path, $token, %opt) = @_;
    my ($status, $headers, $body) = daemon_request($method, $path,
        headers => { ($token ? (Authorization => "Token $token") : ()), %{ $opt{headers} || {} } },
        (defined $opt{body} ? (body => $opt{body}) : ()));
    return ($status, $headers, $body);
}
sub wait_for (&$) {
    my ($cond, $seconds) = @_;
    my $until = time + $seconds;
    while (time < $until) { return 1 if $cond->(); sleep 0.1 }
    return $cond->();
}

# authtokend_logins_total by outcome, from /metrics.
sub logins {
    my (undef, undef, $text) = daemon_request('GET', '/metrics');
    return $text =~ /^authtokend_logins_total\{outcome="(\w+)"\} (\d+)$/mg;
}

my $DIRECTORY_URL = "redis://127.0.0.1:$dport/0";
$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;

ctl_ok({ stdin => "root-pw\n" }, 'createuser', 'root', '--superuser', '--password-stdin');
ctl_ok({ stdin => "$_-pw\n" }, 'createuser', $_, '--password-stdin') for qw(alice carol dave erin);
my $root = token_of('root');
my %token = map { $_ => token_of($_) } qw(carol dave erin);

subtest 'a daemon running when `directory init` marks its store answers writes 503' => sub {
    authtokend_start();
    my ($status) = daemon('DELETE', '/api-admin/users/erin/token/', $root);
    is($status, 204, '(before the mark, a revocation is done at once)');
    $token{erin} = token_of('erin');
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = $DIRECTORY_URL;
    ctl_ok('directory', 'init');
    is(edge_once($token{erin}), '200 ok', "erin's token is accepted at the edge");
    my $headers;
    ($status, $headers, my $body) = daemon('DELETE', '/api-admin/users/erin/token/', $root);
    is($status, 503, 'a revocation through the daemon without directory_url: 503');
    is($body, $NOT_FED, 'saying it is recorded and who applies it');
    is($headers->{'retry-after'}, 1, 'with Retry-After');
    is(edge_once($token{erin}), '200 ok', '(indeed the edge does not know yet)');
    like(authtokend_log(), qr/was made to feed a separate token directory .* restart it with directory_url/,
         'and the daemon logs why');
    authtokend_stop();
};

subtest 'startup refuses a directory_url the store was not initialised for' => sub {
    my $other = free_port();
    my $odir = "$ddir-other";
    make_path($odir);
    my $opid = redis_server_start($other, $odir, what => 'unmarked redis-server');
    local $ENV{AUTHTOKEN_REDIS} = "redis://127.0.0.1:$other/0";
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = $DIRECTORY_URL;
    local $ENV{AUTHTOKEN_LISTEN} = '127.0.0.1:' . free_port();
    my $out = `timeout 10 $ENV{AUTHTOKEN_BUILD_DIR}/authtokend 2>&1`;
    is($? >> 8, 1, 'authtokend exits 1');
    like($out, qr/directory_url is set but this user store feeds no token directory yet: run `authtokenctl directory init`/,
         'saying so, as authtokenctl does');
    kill 'KILL', $opid;
    waitpid $opid, 0;
    remove_tree($odir);
};

$ENV{AUTHTOKEN_DIRECTORY_URL} = $DIRECTORY_URL;
authtokend_start();

subtest 'login, logout and an admin revocation reach the directory before the 2xx' => sub {
    ok((wait_for { pending() == 0 } 5), '(the pending revocation is applied once it runs)');
    is(edge_settled($token{erin}), $INVALID, "erin's revoked token is refused");
    my $alice = obtain_token('alice', 'alice-pw');
    is(edge_once($alice), '200 ok', 'a token from a login is accepted at once');
    my ($status) = daemon('POST', '/api-token-logout/', $alice);
    is($status, 204, 'logout: 204');
    is(edge_once($alice), $INVALID, 'and the token is refused at once');
    ($status) = daemon('DELETE', '/api-admin/users/carol/token/', $root);
    is($status, 204, 'admin revocation: 204');
    is(edge_once($token{carol}), $INVALID, "carol's token is refused at once");
    is(pending(), 0, 'nothing pending');
    my ($hs, undef, $body) = daemon('GET', '/healthz');
    is_deeply([$hs, decode_json($body)],
              [200, { status => 'ok', directory => { state => 'ok', reachable => JSON::PP::true, pending => 0,
                                                     applied => redis_cmd('GET', 'authtoken:outbox-acked') } }],
              '/healthz shows the directory: ok, nothing pending');
};

subtest 'a token renewed in the directory past its first expiry is the daemon\'s too: it can be logged out' => sub {
    # Sliding renewal pushes `expires` out in the directory (nginx's
    # authtoken_touch there: t/141); the user store keeps the first expiry.
    # Here the renewal is written as touch leaves it.
    {
        local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
        ctl_ok({ stdin => "frank-pw\n" }, 'createuser', 'frank', '--password-stdin');
    }
    my $frank = token_of('frank', '--ttl', '2s');
    my $key = token_key($frank);
    redis_at($dport, 'HSET', $key, 'expires', int(time) + 60);
    sleep 2.5;
    cmp_ok(redis_cmd('HGET', $key, 'expires'), '<', time, '(the user store\'s copy has expired)');
    is(edge_once($frank), '200 ok', 'the edge accepts the renewed token');
    my ($status) = daemon('GET', '/api-tokens/', $frank);
    is($status, 200, 'so does the daemon: its token list answers 200');
    ($status) = daemon('POST', '/api-token-logout/', $frank);
    is($status, 204, 'and its logout 204');
    is(edge_once($frank), $INVALID, 'after which the edge refuses it');
    # One that was not renewed stays expired for the daemon.
    my $gone = token_of('frank', '-r', '--ttl', '1s');
    sleep 1.5;
    ($status) = daemon('POST', '/api-token-logout/', $gone);
    is($status, 401, 'a token expired in both stores is refused (401)');
};

subtest 'concurrent logins share drains: every one answered 200 is accepted at the edge' => sub {
    my @users = map { "u$_" } 1 .. 12;
    {
        local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
        ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin') for @users;
    }
    my $before = redis_cmd('GET', 'authtoken:outbox-seq');
    my %pipe;
    for my $u (@users) {
        pipe(my $r, my $w) or die $!;
        my $pid = fork // die $!;
        if (!$pid) {
            close $r;
            my ($status, undef, $body) = obtain_direct($u, 'pw');
            print $w "$status $body";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        $pipe{$u} = [$pid, $r];
    }
    my (%answer, @accepted);
    for my $u (@users) {
        my ($pid, $r) = @{ $pipe{$u} };
        local $/;
        $answer{$u} = <$r>;
        waitpid $pid, 0;
    }
    for my $u (@users) {
        my ($token) = $answer{$u} =~ /^200 \{"token":"([0-9a-f]{40})"\}$/;
        push @accepted, $u if $token && edge_once($token) eq '200 ok';
    }
    is(scalar @accepted, scalar @users, 'all 12 logins answered 200 with a token the edge accepts')
        or diag explain \%answer;
    cmp_ok(redis_cmd('GET', 'authtoken:outbox-seq') - $before, '>=', 12, '(each login made a token: an outbox entry)');
    is(pending(), 0, 'nothing pending');
};

subtest 'directory stopped: 503 with Retry-After, then applied by the replayer thread' => sub {
    kill 'STOP', directory_pid();
    my ($status, $headers, $body) = daemon('DELETE', '/api-admin/users/dave/token/', $root);
    is($status, 503, 'the revocation answers 503');
    is($body, $BEHIND, 'with the catalogue body');
    is($headers->{'retry-after'}, 1, 'and Retry-After');
    ok(!defined redis_cmd('HGET', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:dave'), 'token'),
       'the revocation is recorded in the user store');
    ($status, undef, $body) = daemon('GET', '/healthz');
    my $health = decode_json($body);
    cmp_ok($health->{directory}{pending}, '>=', 1, '/healthz shows it pending');
    is($status, 200, '/healthz stays 200: logins work, and a 503 would take every issuer out at once');
    is("$health->{status} $health->{directory}{state}", 'degraded behind', 'but says the directory is behind');
    is($health->{directory}{reachable}, JSON::PP::false, 'and does not answer');
    kill 'CONT', directory_pid();
    ok((wait_for { pending() == 0 } 5), 'the replayer thread applies it, with no other request');
    is(edge_settled($token{dave}), $INVALID, "dave's revoked token is refused at the edge");
    my (undef, undef, $metrics) = daemon('GET', '/metrics');
    like($metrics, qr/^authtokend_directory_pending 0$/m, 'metrics: nothing pending');
    like($metrics, qr/^authtokend_directory_drain_failures_total [1-9]/m, 'metrics: the failed drain counted');
};

# DRF's mode: the login's token is the user's one token, which the next
# login hands out (get_or_create), so the 503 orphans nothing and nothing
# is revoked (with tokens_per_user = many it is: t/146).
subtest 'one mode: a login answered 503 keeps the token it made, and the next login gets it' => sub {
    {
        local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
        ctl_ok({ stdin => "fred-pw\n" }, 'createuser', 'fred', '--password-stdin');
    }
    my $from = (redis_cmd('GET', 'authtoken:outbox-seq') // 0) + 1;
    my %before = logins();
    kill 'STOP', directory_pid();
    my ($status, undef, $body) = obtain_direct('fred', 'fred-pw');
    kill 'CONT', directory_pid();
    is("$status $body", "503 $BEHIND", 'the login answers 503 with the catalogue body');
    my %after = logins();
    is($after{withheld} - ($before{withheld} // 0), 1, 'counted as logins_total{outcome="withheld"}');
    is($after{ok} - ($before{ok} // 0), 0, 'not as ok');
    ok((wait_for { pending() == 0 } 5), 'the replayer thread applies it');
    my @made = map { unpack 'H*', $_->[1][1] }
               @{ redis_cmd('XRANGE', 'authtoken:outbox', "$from-0", '+') };
    is(scalar @made, 1, 'the login made one token, and nothing revoked it (one outbox entry)');
    my $token = obtain_token('fred', 'fred-pw');
    is(token_digest($token), $made[0], 'the next login gets that token');
    is(edge_settled($token), '200 ok', 'accepted at the edge');
    unlike(authtokend_log(), qr/"fred".*revoked: its answer was withheld/, 'no revocation logged');
};

subtest 'directory killed and restarted empty: rebuilt, no revoked token accepted' => sub {
    my (undef, undef, $before) = daemon('GET', '/metrics');
    my ($rebuilds) = $before =~ /^authtokend_directory_rebuilds_total (\d+)$/m;
    directory_kill();
    directory_start();
    my $rebuilt = wait_for {
        my (undef, undef, $m) = daemon('GET', '/metrics');
        my ($n) = $m =~ /^authtokend_directory_rebuilds_total (\d+)$/m;
        $n > $rebuilds;
    } 5;
    ok($rebuilt, 'the replayer thread rebuilt the directory by itself');
    is(edge_settled($token{dave}), $INVALID, "dave's revoked token is refused");
    is(edge_once($token{carol}), $INVALID, "carol's revoked token is refused");
    is(edge_once($token{erin}), $INVALID, "erin's revoked token is refused");
    is(edge_once($root), '200 ok', "root's token is accepted");
};

subtest 'the heartbeat goes into the directory while it is complete' => sub {
    ok((wait_for { edge_once($root, '/lag/') eq '200 ok' } 5), 'an edge with auth_token_max_lag accepts root');
    ok(redis_at($dport, 'GET', 'authtoken:heartbeat'), 'the heartbeat is in the directory');
};

subtest 'an emptied directory the issuer cannot rebuild: 503 once max_lag passed, not 401' => sub {
    # (The edge reads the heartbeat with its lookups: keep it fresh first.)
    ok((wait_for { edge_once($root, '/lag/') eq '200 ok' } 5), '(accepted before)');
    redis_pause();    # the user store: no rebuild, no news
    redis_at($dport, 'FLUSHALL');
    my $t0 = time;
    my ($verdict, $seen_503);
    while (time < $t0 + 8) {
        $verdict = edge_once($root, '/lag/');
        if ($verdict =~ /^503/) { $seen_503 = time - $t0; last }
        sleep 0.2;
    }
    ok(defined $seen_503, "503 after max_lag (after ${\ sprintf('%.1f', $seen_503 // -1)} s)");
    sleep 1.5;
    like(edge_once($root, '/lag/'), qr/^503 /, 'and 503 it stays while the directory is incomplete');
    redis_resume();
    ok((wait_for { edge_once($root, '/lag/') eq '200 ok' } 8), 'rebuilt: root is accepted again');
};

subtest 'dir_heartbeat refuses a directory that is not complete' => sub {
    my $id = redis_cmd('GET', 'authtoken:directory-id');
    # The version the daemon loaded: the SHA-1 of the library file.
    my $version = do {
        open my $fh, '<', "$repo/redis/authtoken.lua" or die $!;
        local $/;
        sha1_hex(<$fh>);
    };
    my $call = sub {
        my ($sec, $usec) = @{ redis_at($dport, 'TIME') };
        my $r = eval { redis_at($dport, 'FCALL', 'authtoken_dir_heartbeat', 0, $version,
                                $sec * 1000 + int($usec / 1000) + 5000, @_) };
        return defined $r ? "ok $r" : "$@";
    };
    my $acked = redis_cmd('GET', 'authtoken:outbox-acked');
    like($call->($id, $acked + 1, 'x'), qr/REFUSED: REBUILD: the directory applied \d+, the user store acknowledged/,
         'applied below acked: refused');
    like($call->('ab' x 16, $acked, 'x'), qr/REFUSED: REBUILD: the directory is not ready/, 'another id: refused');
    isnt(redis_at($dport, 'GET', 'authtoken:heartbeat'), 'x', 'and nothing written');
    is($call->($id, $acked, 'y'), 'ok 1', 'complete: written');
};

authtokend_stop();
done_testing();
