# Redis is the trust boundary: the shipped redis/users.acl gives nginx a
# user that reads token records and hears revocations, and nothing else;
# the issuer a user that loads and calls its Functions library but no other
# scripting and no administrative command;
# and turns anonymous access off. The users are loaded from the shipped
# file itself (each `user` line through ACL SETUSER), then switched on with
# test passwords, and the module (auth_token_redis user= password=) and the
# issuer (redis://user:password@...) run their whole paths through them.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(sleep);

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;

my $repo = abs_path(dirname(__FILE__) . '/..');

# The shipped ACL rules, by user.
my %rules;
open my $acl, '<', "$repo/redis/users.acl" or die "redis/users.acl: $!";
while (<$acl>) {
    next unless /^user\s+(\S+)\s+(.*\S)\s*$/;
    $rules{$1} = [split ' ', $2];
}
close $acl;
ok($rules{$_}, "redis/users.acl defines $_")
    for qw(default authtoken-edge authtoken-edge-writer authtoken-issuer authtoken-replica);
ok((grep { $_ eq 'off' } @{ $rules{$_} }), "$_ ships switched off")
    for sort keys %rules;

# redis.conf loads the file with `aclfile`: redis-server must accept it as
# it ships. (Redis's ACL file format has no comments: a `#` line aborts
# the start, which the ACL SETUSER loading below would not notice.)
subtest 'redis-server starts with redis/users.acl as its aclfile' => sub {
    my $tmp = tempdir(CLEANUP => 1);
    my $sock = "$tmp/acl.sock";
    my $pid = spawn("$tmp/redis.log", 'redis-server', '--port', '0',
                    '--unixsocket', $sock, '--dir', $tmp, '--save', '',
                    '--appendonly', 'no', '--aclfile', "$repo/redis/users.acl");
    my $reply = '';
    if (wait_socket($sock, pid => $pid)) {
        $reply = eval { redis_call(redis_client($sock), 'PING') } // $@;
    }
    like($reply, qr/NOAUTH/, 'it loads the file and anonymous PING is refused')
        or diag(do { local (@ARGV, $/) = "$tmp/redis.log"; <> } // '');
    stop_pid($pid);
};

my %pw = ('authtoken-edge' => 'edge-pw-0123', 'authtoken-issuer' => 'issuer-pw-4567',
          'authtoken-edge-writer' => 'writer-pw-cdef',
          'test-admin' => 'admin-pw-89ab');

redis_start();
issuer_setup();   # init-secret only; no Redis command yet

# An admin for the test itself, then every shipped user as shipped, each
# turned on with its password; `default` (which this connection is) last.
my @setup = (['ACL', 'SETUSER', 'test-admin', 'on', ">$pw{'test-admin'}",
              '~*', '&*', '+@all']);
for my $user (grep { $_ ne 'default' } sort keys %rules) {
    push @setup, ['ACL', 'SETUSER', $user, @{ $rules{$user} }];
    push @setup, ['ACL', 'SETUSER', $user, 'on', ">$pw{$user}"] if $pw{$user};
}
push @setup, ['ACL', 'SETUSER', 'default', @{ $rules{default} }];
redis_pipeline(@setup);

sub as_user {
    my ($user, @cmds) = @_;
    my @replies;
    for my $cmd (@cmds) {
        my $r = eval {
            (redis_pipeline(['AUTH', $user, $pw{$user}], $cmd))[1]
        };
        push @replies, defined $r ? $r : "ERR $@";
    }
    return wantarray ? @replies : $replies[0];
}

like(eval { redis_cmd('PING') } // "ERR $@", qr/NOAUTH|Authentication required/,
     'anonymous clients are refused (default user off)');

# The issuer through its own user: user creation, tokens, rotation.
$ENV{AUTHTOKEN_REDIS} = 'redis://authtoken-issuer:' . $pw{'authtoken-issuer'}
    . '@127.0.0.1:' . redis_port() . '/0';
ctl_ok({ stdin => "carol-pass\n" }, 'createuser', 'carol', '--password-stdin');
my $carol = token_of('carol');
ctl_ok({ stdin => "dan-pass\n" }, 'createuser', 'dan', '--password-stdin');
my $dan = token_of('dan');
authtokend_start();

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT user=authtoken-edge password=edge-pw-0123;
    auth_token_cache zone=acl:1m valid=60s;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            add_header X-Cache $auth_token_cache_status always;
            alias html/;
        }
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
    }
HTTP
nginx_html('x');

my $res = http_request('/api/x', Authorization => "Token $carol");
is($res->{status}, 200, 'nginx looks tokens up as authtoken-edge');
is($res->{headers}{'x-user'}, 'carol', 'and gets the user from the record');

# The revocation subscription runs as authtoken-edge too, and delivers.
my $subscribed;
for (1 .. 50) {
    my $list = as_user('test-admin', ['CLIENT', 'LIST']);
    last if $subscribed = $list =~ /\buser=authtoken-edge\b[^\n]*\bcmd=subscribe\b/
                       || $list =~ /\bsub=1\b[^\n]*\buser=authtoken-edge\b/;
    sleep 0.05;
}
ok($subscribed, 'the revocation subscription is made as authtoken-edge');
# The worker uses its cache once it has also read the revocation sequence
# and had its PING answered (both as authtoken-edge): BYPASS until then.
for (1 .. 50) {
    last if (http_request('/api/x', Authorization => 'Token ' . ('f' x 40))->{headers}{'x-cache'} // '')
            ne 'BYPASS';
    sleep 0.05;
}
$res = http_request('/api/x', Authorization => "Token $dan");
is($res->{headers}{'x-cache'}, 'MISS', 'dan is looked up once');
$res = http_request('/api/x', Authorization => "Token $dan");
is($res->{headers}{'x-cache'}, 'HIT', 'then served from the cache');
ctl_ok('revoke', 'dan');
my $refused;
for (1 .. 50) {
    $res = http_request('/api/x', Authorization => "Token $dan");
    last if $refused = $res->{status} == 401;
    sleep 0.02;
}
ok($refused, 'a revocation by the issuer user reaches the edge user\'s cache');

# A login through nginx: the daemon's scripts run under authtoken-issuer.
my $login = HTTP::Tiny->new(timeout => 30)->post_form(
    'http://127.0.0.1:' . nginx_port() . '/api-token-auth/',
    { username => 'carol', password => 'carol-pass' });
is($login->{status}, 200, 'obtain-token works through the issuer user');
is($login->{content}, qq({"token":"$carol"}), 'and answers carol\'s token');

# What the edge user must not do.
my $uid_key = (grep { /^authtoken:user:/ } @{ as_user('test-admin', ['KEYS', 'authtoken:user:*']) })[0];
ok($uid_key, "a user record exists ($uid_key)");
like(as_user('authtoken-edge', ['HGETALL', $uid_key]), qr/NOPERM/,
     'authtoken-edge cannot read a user record (HGETALL)');
like(as_user('authtoken-edge', ['HMGET', $uid_key, 'password']), qr/NOPERM/,
     'nor a password hash through HMGET');
like(as_user('authtoken-edge', ['HSET', token_key($dan), 'active', '1']),
     qr/NOPERM/, 'nor write a token record');
like(as_user('authtoken-edge', ['EVAL', 'return 1', '0']), qr/NOPERM/, 'nor run a script');
like(as_user('authtoken-edge', ['FCALL', 'authtoken_revoke_token', '1', 'authtoken:username:dan', 'v', '0']),
     qr/NOPERM/, 'nor call the issuer\'s functions');
like(as_user('authtoken-edge', ['FUNCTION', 'LOAD', "#!lua name=x\nredis.register_function('x', function() return 1 end)"]),
     qr/NOPERM/, 'nor load a library');
like(as_user('authtoken-edge', ['PUBLISH', 'authtoken:revocations', 'x']), qr/NOPERM/,
     'nor publish revocations');
like(as_user('authtoken-edge', ['KEYS', '*']), qr/NOPERM/, 'nor list keys');
like(as_user('authtoken-edge', ['SET', 'authtoken:heartbeat', '1']), qr/NOPERM/,
     'nor write the heartbeat');

# auth_token_max_lag: authtokend writes the heartbeat as authtoken-issuer,
# and the edge user reads it.
my $beat = as_user('authtoken-edge', ['GET', 'authtoken:heartbeat']);
like($beat // '', qr/^\d{13}$/,
     'authtoken-edge reads the heartbeat authtokend writes as authtoken-issuer');
like(as_user('authtoken-edge', ['SUBSCRIBE', 'other-channel']), qr/NOPERM/,
     'nor subscribe to another channel');

# auth_token_redis_primary's user: authtoken_touch, and no other function.
my $writer_key = token_key('d' x 64);
as_user('test-admin', ['HSET', $writer_key, 'uid', '99', 'user', 'writer-test', 'active', '1']);
my $touched = as_user('authtoken-edge-writer', ['FCALL', 'authtoken_touch', '1', $writer_key, '1', '1700000000', '192.0.2.1']);
is_deeply($touched, [1, 0], 'authtoken-edge-writer may FCALL authtoken_touch') or diag explain $touched;
is(as_user('test-admin', ['HGET', $writer_key, 'last_addr']), '192.0.2.1', 'which writes last_addr');
as_user('test-admin', ['DEL', $writer_key]);
like(as_user('authtoken-edge-writer', ['FCALL', 'authtoken_revoke_token', '1', 'authtoken:username:dan', 'v', '0']),
     qr/NOPERM/, 'authtoken-edge-writer cannot call the issuer\'s functions');
like(as_user('authtoken-edge-writer', ['EVAL', 'return 1', '0']), qr/NOPERM/, 'nor run a script');
like(as_user('authtoken-edge-writer', ['HGETALL', $uid_key]), qr/NOPERM/, 'nor read a user record');
like(as_user('authtoken-edge-writer', ['PUBLISH', 'authtoken:revocations', 'x']), qr/NOPERM/,
     'nor publish revocations');

# sentinel:// connections check with ROLE that Sentinel named the primary.
my $role = as_user('authtoken-issuer', ['ROLE']);
is(ref $role ? $role->[0] : $role, 'master',
   'authtoken-issuer may ask ROLE (sentinel:// needs it)');

# The issuer user loaded its Functions library itself (authtokenctl, at
# connect, into this empty Redis) and runs it.
sub flat { map { ref $_ eq 'ARRAY' ? flat(@$_) : ($_ // '') } @_ }
like(join(' ', flat(as_user('test-admin', ['FUNCTION', 'LIST', 'LIBRARYNAME', 'authtoken']))),
     qr/\bauthtoken_issue_token\b/, 'authtoken-issuer loaded its Functions library (FUNCTION LOAD)');

# What the issuer user must not do: besides its library, no scripting.
for my $cmd (['FUNCTION', 'FLUSH'], ['FUNCTION', 'DELETE', 'authtoken'],
             ['FUNCTION', 'RESTORE', 'x'], ['FUNCTION', 'DUMP'],
             ['EVAL', 'return 1', '0'], ['SCRIPT', 'FLUSH']) {
    like(as_user('authtoken-issuer', $cmd), qr/NOPERM/,
         "authtoken-issuer cannot run @$cmd[0 .. 1]");
}
for my $cmd (['CONFIG', 'GET', 'requirepass'], ['FLUSHALL'], ['KEYS', '*'],
             ['ACL', 'LIST'], ['CLIENT', 'KILL', 'TYPE', 'pubsub'], ['GET', 'not-ours']) {
    like(as_user('authtoken-issuer', $cmd), qr/NOPERM/,
         "authtoken-issuer cannot run @$cmd[0 .. 0] (@$cmd)");
}

unlike(nginx_error_log(), qr/edge-pw-0123/, 'the edge password is never logged');
unlike(authtokend_log(), qr/issuer-pw-4567/, 'nor the issuer password');

nginx_stop();
authtokend_stop();
# Hand Redis back to the harness's anonymous stop.
as_user('test-admin', ['ACL', 'SETUSER', 'default', 'on', 'nopass', '~*', '&*', '+@all']);
done_testing();
