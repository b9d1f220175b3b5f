# authtokend's answers and settings that an operator relies on beyond the
# DRF contract: a client's X-Authtoken-Content-Type cannot stand in for the
# real Content-Type; the token answer says Cache-Control: no-store; a 503
# carries Retry-After as the module's does; changepassword --revoke-token
# ends the token in the same command; the unix socket's mode and group are
# settings; the Redis password comes from the environment or the config
# file, is refused as a flag, and is hidden from `ps` when given in --redis.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Process;

my $dir = issuer_setup();
authtokend_start('--redis-timeout-ms', '300');
ctl_ok({ stdin => "pw\n" }, 'createuser', 'alice', '--password-stdin');
my $form = 'application/x-www-form-urlencoded';

my ($s, $h, $b) = daemon_request('POST', '/api-token-auth/',
    headers => { 'Content-Type' => 'application/xml',
                 'X-Authtoken-Content-Type' => $form },
    body => 'username=alice&password=pw');
is("$s $b", '415 {"detail":"Unsupported media type \"application/xml\" in request."}',
   "a client's X-Authtoken-Content-Type does not replace the real Content-Type");
($s, $h, $b) = daemon_request('POST', '/api-token-auth/',
    headers => { 'X-Authtoken-Content-Type' => $form },
    body => 'username=alice&password=pw');
isnt($s, 200, 'nor stand in for a missing one');

($s, $h, $b) = obtain_direct('alice', 'pw');
is($s, 200, 'obtain works');
is($h->{'cache-control'}, 'no-store', 'the token answer says Cache-Control: no-store');
my ($token) = $b =~ /"token":"([0-9a-f]{40})"/;

redis_pause();
($s, $h, $b) = obtain_direct('alice', 'pw');
is($s, 503, 'obtain with Redis paused: 503');
is($h->{'retry-after'}, '1', 'with Retry-After: 1, as the module answers');
($s, $h) = daemon_request('GET', '/healthz');
is("$s " . ($h->{'retry-after'} // ''), '503 1', 'healthz too');
redis_resume();

# changepassword: the token survives unless --revoke-token.
my $record = token_key($token);
my $out = ctl_ok({ stdin => "pw2\n" }, 'changepassword', 'alice', '--password-stdin');
like($out, qr/The user's token still works; `authtokenctl revoke alice`/,
     'changepassword says the token still works');
is(redis_cmd('EXISTS', $record), 1, 'and it does');
$out = ctl_ok({ stdin => "pw3\n" }, 'changepassword', 'alice', '--password-stdin',
              '--revoke-token');
like($out, qr/Password changed successfully for user 'alice'\nRevoked the token of user alice\n/,
     'changepassword --revoke-token says it revoked the token');
is(redis_cmd('EXISTS', $record), 0, 'and the token record is gone');
authtokend_stop();

# The unix socket: mode and group as set, not from the umask.
sub start_on_socket {
    my ($path, @flags) = @_;
    my $pid = spawn("$path.log", build_dir() . '/authtokend',
                    '--listen', "unix:$path", @flags);
    wait_socket($path, pid => $pid);
    my @st = stat $path;
    stop_pid($pid, timeout => 10);
    return @st;
}
sub build_dir { $ENV{AUTHTOKEN_BUILD_DIR} || 'build' }
{
    my $old = umask 0;
    my @st = start_on_socket("$dir/d.sock");
    is(sprintf('%04o', $st[2] & 07777), '0660', 'the socket is 0660 by default, whatever the umask');
    @st = start_on_socket("$dir/d.sock", '--socket-mode', '0600');
    is(sprintf('%04o', $st[2] & 07777), '0600', '--socket-mode 0600');
    my $group = getgrgid((split ' ', $))[-1]) // getgrgid($));
    @st = start_on_socket("$dir/d.sock", '--socket-group', $group);
    is($st[5], scalar getgrnam($group), "--socket-group $group");
    umask $old;
    my ($code, $o, $e) = ctl('--socket-mode', '0777', 'users');
    is($code, 1, 'a socket mode with execute or other-user bits is refused');
    like($e, qr/invalid socket_mode "0777"/, 'naming the setting');
}

# The Redis password: environment or config file, never a flag.
redis_cmd('CONFIG', 'SET', 'requirepass', 's3cret-redis-pw');
{
    local $ENV{AUTHTOKEN_REDIS_PASSWORD};
    my ($code, $o, $e) = ctl('users');
    is($code, 1, 'without the password Redis refuses');
    $ENV{AUTHTOKEN_REDIS_PASSWORD} = 's3cret-redis-pw';
    ($code, $o, $e) = ctl('users');
    is($code, 0, 'AUTHTOKEN_REDIS_PASSWORD is used');
    delete $ENV{AUTHTOKEN_REDIS_PASSWORD};
    open my $fh, '>', "$dir/conf" or die;
    print $fh "redis_password = s3cret-redis-pw\n";
    close $fh;
    ($code, $o, $e) = ctl('--config', "$dir/conf", 'users');
    is($code, 0, 'so is redis_password in the config file');
    ($code, $o, $e) = ctl('--redis-password', 's3cret-redis-pw', 'users');
    is($code, 1, '--redis-password is refused');
    like($e, qr/--redis-password would show the password in `ps`/, 'saying why');

    my $url = $ENV{AUTHTOKEN_REDIS};
    (my $with_pw = $url) =~ s{redis://}{redis://:s3cret-redis-pw@};
    authtokend_start('--redis', $with_pw);
    my $cmdline = do {
        open my $c, '<', '/proc/' . authtokend_pid() . '/cmdline' or die;
        local $/; <$c>;
    };
    unlike($cmdline, qr/s3cret-redis-pw/, 'a password in --redis is hidden from ps once read');
    ($s) = daemon_request('GET', '/healthz');
    is($s, 200, 'and used');
    like(authtokend_log(), qr/the Redis password was given in --redis/, 'with a warning');
    authtokend_stop();
}
redis_pipeline(['AUTH', 's3cret-redis-pw'], ['CONFIG', 'SET', 'requirepass', '']);

done_testing();
