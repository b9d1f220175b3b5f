# The split layout end to end (docs/operations.md, "Two stores"), with
# `authtokenctl directory` as the replayer: nginx reads only the token
# directory (a second real redis-server); changes made on the user store
# reach nginx when they are applied; a directory SIGSTOPped or killed keeps
# the changes pending (nothing acknowledged past what it applied); a
# directory restarted empty is rebuilt from the user store; a revoked or
# deactivated token is never accepted afterwards.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use Test::More;

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;

my $repo = abs_path(dirname(__FILE__) . '/..');

issuer_setup();    # the user store: the test's Redis

my $dport = $ENV{TEST_NGINX_DIRECTORY_PORT} = free_port();
my $ddir = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-directory-$$";
remove_tree($ddir);
make_path($ddir);
my $owner = $$;
my $dpid;
sub directory_start { $dpid = redis_server_start($dport, $ddir, what => 'directory redis-server') }
sub directory_kill { kill 'KILL', $dpid; waitpid $dpid, 0; undef $dpid }
END {
    local $?;
    if ($dpid && $$ == $owner) {
        kill 'CONT', $dpid;
        directory_kill();
    }
    remove_tree($ddir) if $$ == $owner;
}
directory_start();

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_DIRECTORY_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
sub edge {
    my ($token) = @_;
    my $res = $http->get('http://127.0.0.1:' . nginx_port() . '/s/x',
                         { headers => { Authorization => "Token $token" } });
    return "$res->{status} " . ($res->{status} == 200 ? 'ok' : $res->{content});
}
my $INVALID = q{401 {"detail":"Invalid token."}};
my $INACTIVE = q{401 {"detail":"User inactive or deleted."}};

# Changes go to the user store with no directory_url (the library sees the
# mark and fills the outbox); `directory` runs with it.
sub directory_ctl {
    local $ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
    local $ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
    return ctl('directory', @_);
}
sub sync_ok {
    my ($code, $out, $err) = directory_ctl('sync');
    is($code, 0, 'directory sync succeeds') or diag $err;
    return $out;
}

ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
ctl_ok({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
my $alice = token_of('alice');
my $bob = token_of('bob');

is(edge($alice), $INVALID, 'before init the directory knows no token');

subtest 'init builds the directory from the user store' => sub {
    my ($code, $out, $err) = directory_ctl('init');
    is($code, 0, 'directory init succeeds') or diag $err;
    like($out, qr/Rebuilt the token directory: 2 token records copied/, 'two records copied');
    is(edge($alice), '200 ok', 'alice is accepted at the edge');
    is(edge($bob), '200 ok', 'bob too');
    is(redis_at($dport, 'EXISTS', 'authtoken:user:1'), 0, 'the directory holds no user record');
};

subtest 'a change reaches the edge when applied, and is then acknowledged' => sub {
    ctl_ok('deactivate', 'bob');
    is(edge($bob), '200 ok', 'recorded, not yet applied: the edge still accepts bob');
    isnt(redis_cmd('GET', 'authtoken:outbox-acked'), redis_cmd('GET', 'authtoken:outbox-seq'),
         'and the entry is not acknowledged');
    like(sync_ok(), qr/Applied 1 outbox entries/, 'one entry applied');
    is(edge($bob), $INACTIVE, 'bob is refused as inactive');
    is(redis_cmd('GET', 'authtoken:outbox-acked'), redis_cmd('GET', 'authtoken:outbox-seq'),
       'acknowledged');
};

subtest 'directory stopped: the change stays pending, then applies' => sub {
    ctl_ok('revoke', 'alice');
    my $acked = redis_cmd('GET', 'authtoken:outbox-acked');
    kill 'STOP', $dpid;
    my ($code, undef, $err) = directory_ctl('sync');
    isnt($code, 0, 'sync fails while the directory is stopped');
    is(redis_cmd('GET', 'authtoken:outbox-acked'), $acked, 'nothing acknowledged');
    kill 'CONT', $dpid;
    sleep 1;   # the stopped call's deadline passes: it never applies late
    sync_ok();
    is(edge($alice), $INVALID, "alice's revoked token is refused");
};

subtest 'directory killed and restarted empty: rebuilt, revocations kept' => sub {
    directory_kill();
    ctl_ok('activate', 'bob');
    ctl_ok({ stdin => "carol-pw\n" }, 'createuser', 'carol', '--password-stdin');
    my ($code) = directory_ctl('sync');
    isnt($code, 0, 'sync fails while the directory is down');
    directory_start();
    my $out = sync_ok();
    like($out, qr/Rebuilt the token directory/, 'the empty directory is rebuilt');
    is(edge($bob), '200 ok', 'bob (activated while it was down) is accepted');
    is(edge(token_of('carol')), '200 ok', 'carol (created while it was down) is accepted');
    is(edge($alice), $INVALID, "alice's revoked token is still refused");
};

subtest 'a stale directory (another id, a revoked token back in it) is swept' => sub {
    # What a failover to a replica that missed writes looks like, at worst.
    redis_at($dport, 'HSET', 'authtoken:token:' . token_digest($alice),
             uid => 1, user => 'alice', active => 1, expires => 0);
    redis_at($dport, 'HSET', 'authtoken:directory', id => 'ff' x 16);
    is(edge($alice), '200 ok', '(the stale record is accepted before the sweep)');
    my $out = sync_ok();
    like($out, qr/Rebuilt the token directory: \d+ token records copied, [1-9]\d* stale records checked/,
         'rebuilt, with a sweep');
    is(edge($alice), $INVALID, "alice's revoked token is refused again");
    is(edge($bob), '200 ok', 'bob is still accepted');
};

done_testing();
