# authtokend on its own (it is safe to expose directly): the answers that
# are not about credentials. JSON for every error, 405/OPTIONS as DRF,
# 413 before reading a body, /healthz and 503 when Redis is gone, and
# SIGTERM finishing the request in flight and exiting 0, SIGHUP ignored
# (logged) without dropping a request.
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use POSIX ':sys_wait_h';
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
authtokend_start('--max-body-size', '1024', '--redis-timeout-ms', '300');
ctl_ok({ stdin => "pw\n" }, 'createuser', 'alice', '--password-stdin');
my $form = { 'Content-Type' => 'application/x-www-form-urlencoded' };

my ($s, $h, $b) = daemon_request('GET', '/healthz');
is("$s $b", '200 {"status":"ok"}', 'healthz with Redis up');

# HEAD on a raw socket: HTTP::Tiny never reads a HEAD body, so only the
# bytes on the wire can show that none was sent.
{
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 5) or die;
    print $sock "HEAD /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Connection: close\r\n\r\n";
    local $/;
    my $answer = <$sock> // '';
    my ($head, $rest) = split /\r\n\r\n/, $answer, 2;
    like($head, qr{^HTTP/1\.1 405 }, 'HEAD is not allowed');
    like($head, qr{^Allow: POST, OPTIONS\r?$}mi, 'Allow');
    is($rest, '', 'and nothing follows the header');
}

($s, $h, $b) = daemon_request('PATCH', '/api-token-auth/', body => '');
is("$s $b", '405 {"detail":"Method \"PATCH\" not allowed."}', 'PATCH');

($s, $h, $b) = daemon_request('OPTIONS', '/api-token-auth/');
is($s, 200, 'OPTIONS answers');
is($h->{allow}, 'POST, OPTIONS', 'with Allow');
like($h->{'content-type'}, qr{^application/json}, 'in JSON');

($s, $h, $b) = daemon_request('GET', '/nowhere');
is("$s $b", '404 {"detail":"Not found."}', '404 in JSON');

# 413 without reading the body: announce 10 MB, send a few bytes, and the
# answer comes at once.
{
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 5) or die;
    print $sock "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{";
    my $t0 = time;
    local $/;
    my $answer = <$sock> // '';
    like($answer, qr{^HTTP/1\.1 413 }, '413 for an oversize body');
    like($answer, qr{\{"detail":"Request body is larger than 1024 bytes\."\}},
         'in JSON');
    ok(time - $t0 < 2, 'without waiting for the body');
}

($s, $h, $b) = obtain_direct('alice', 'pw');
is($s, 200, 'obtain works');

# Redis stopped (SIGSTOP): health and obtain answer 503 within the Redis
# timeout, and the cause is logged.
redis_pause();
($s, $h, $b) = daemon_request('GET', '/healthz');
is("$s $b", '503 {"detail":"Service temporarily unavailable, try again later."}',
   'healthz with Redis paused');
($s, $h, $b) = obtain_direct('alice', 'pw');
is("$s $b", '503 {"detail":"Service temporarily unavailable, try again later."}',
   'obtain with Redis paused');
redis_resume();
redis_kill();
($s) = obtain_direct('alice', 'pw');
is($s, 503, 'obtain with Redis down');
redis_restart();
($s) = daemon_request('GET', '/healthz');
is($s, 200, 'healthy again once Redis is back');
like(authtokend_log(), qr/redis failed: /, 'failures are logged with the cause');
unlike(authtokend_log(), qr/\bpw\b/, 'the log never has a password');

# SIGTERM while a (slow) request is in flight: it is answered, exit 0.
# The request is on a raw socket so that "in flight" is checked, not
# assumed: it was sent, and no answer had come, when SIGTERM went out.
authtokend_start('--pbkdf2-iterations', '3000000');
{
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 30) or die;
    my $body = 'username=nobody&password=x';   # a 3M-iteration dummy hash
    print $sock "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n"
        . $body;
    sleep 0.3;
    ok(!IO::Select->new($sock)->can_read(0),
       'the obtain is still in flight when SIGTERM is sent (no answer yet)');
    is(authtokend_stop(), 0, 'SIGTERM exits 0');
    local $/;
    my $answer = <$sock> // '';
    like($answer, qr{^HTTP/1\.1 400 }, 'the request in flight got its answer');
    like($answer, qr{\r\n\r\n\{"non_field_errors":\["Unable to log in with provided credentials\."\]\}\z},
         'the whole answer, body included');
}

# SIGHUP while a request is in flight: the daemon is not killed (it has
# nothing to reload), the request is answered, the next one too, and the
# signal is logged. Its default action killed it with the login in flight.
authtokend_start('--pbkdf2-iterations', '3000000');
{
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 30) or die;
    my $body = 'username=nobody&password=x';
    print $sock "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n"
        . $body;
    sleep 0.3;
    ok(!IO::Select->new($sock)->can_read(0),
       'the obtain is still in flight when SIGHUP is sent (no answer yet)');
    kill 'HUP', authtokend_pid();
    local $/;
    my $answer = <$sock> // '';
    like($answer, qr{^HTTP/1\.1 400 .*\r\n\r\n\{"non_field_errors":\["Unable to log in with provided credentials\."\]\}\z}s,
         'SIGHUP: the request in flight got its whole answer');
    is(waitpid(authtokend_pid(), WNOHANG), 0,
       'SIGHUP: the daemon is still running (has not exited)');
    ($s) = daemon_request('GET', '/healthz');
    is($s, 200, 'SIGHUP: the next request is answered');
    like(authtokend_log(), qr/SIGHUP ignored/, 'SIGHUP: logged');
    is(authtokend_stop(), 0, 'SIGTERM after SIGHUP exits 0');
}

done_testing();
