# authtokend bounds the request head as nginx does with
# large_client_header_buffers 4 8k: a request line over 8192 bytes gets
# 414, a header line over 8192 bytes, a head over max_header_size bytes or
# more than max_header_fields fields get 431, each with a JSON detail, and
# the connection is closed. A client streaming one header line without a
# newline must not grow the daemon's memory (httplib 0.11 alone buffered it
# all: 264 MB in 4 s).
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Issuer;

$SIG{PIPE} = 'IGNORE';

issuer_setup();
authtokend_start('--max-header-fields', '50');
ctl_ok({ stdin => "pw\n" }, 'createuser', 'alice', '--password-stdin');

# VmHWM is the peak resident size: it shows what was held while the
# header streamed in, even once it is freed again.
sub memory_kb {
    my ($field) = @_;
    open my $fh, '<', '/proc/' . authtokend_pid() . '/status' or die $!;
    while (<$fh>) { return $1 if /^$field:\s+(\d+) kB/ }
    die "no $field";
}

sub connect_daemon {
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . authtokend_port(), Timeout => 5);
    die "connect: $!" unless $sock;
    return $sock;
}

# Sends $head, then $filler repeatedly (up to $max bytes) until the daemon
# answers; returns (answer, bytes sent).
sub stream_until_answer {
    my ($head, $filler, $max) = @_;
    my $sock = connect_daemon();
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my $pending = $head;
    my $sent = 0;
    my $deadline = time + 30;
    while (time < $deadline) {
        last if $sel->can_read(0);
        if ($pending eq '') {
            last if $sent >= $max;
            $pending = $filler;
        }
        if ($sel->can_write(0.05)) {
            my $n = syswrite($sock, $pending);
            last if !defined $n && !$!{EAGAIN} && !$!{EWOULDBLOCK};
            if ($n) { $sent += $n; substr($pending, 0, $n) = '' }
        }
    }
    $sock->blocking(1);
    my $answer = '';
    while ($sel->can_read(5)) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $answer .= $buf;
        last if $answer =~ /\r\n\r\n.*\}/s;
    }
    close $sock;
    return ($answer, $sent);
}

my $before = memory_kb('VmHWM');
my ($answer, $sent) = stream_until_answer(
    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ", 'a' x 65536, 256 << 20);
my $after = memory_kb('VmHWM');
diag("authtokend peak RSS (VmHWM) before ${before} kB, after streaming a "
     . "header line (${sent} bytes sent): ${after} kB; VmRSS now "
     . memory_kb('VmRSS') . ' kB');
like($answer, qr{^HTTP/1\.1 431 }, 'a header line streamed without a newline gets 431');
like($answer, qr{\r\n\r\n\{"detail":"A request header line is longer than 8192 bytes\."\}$},
     'with a JSON detail');
like($answer, qr{\r\nConnection: close\r\n}i, 'and the connection is closed');
ok($after - $before < 16 * 1024,
   'the daemon did not buffer the streamed header (peak RSS grew under 16 MB)');

($answer) = stream_until_answer(
    'GET /' . ('a' x 9000), 'a' x 4096, 1 << 20);
is((split /\r\n/, $answer)[0], 'HTTP/1.1 414 URI Too Long',
   'a request line over 8192 bytes gets 414');
like($answer, qr{\{"detail":"Request line is longer than 8192 bytes\."\}$},
     'with a JSON detail');

# Many short fields: each line is short, the head is not.
$before = memory_kb('VmHWM');
($answer, $sent) = stream_until_answer(
    "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-A: b\r\n" x 8192, 256 << 20);
$after = memory_kb('VmHWM');
diag("peak RSS before ${before} kB, after streaming header fields "
     . "(${sent} bytes sent): ${after} kB");
like($answer, qr{^HTTP/1\.1 431 }, 'an endless stream of header fields gets 431');
like($answer, qr{\{"detail":"Request has more than 50 header fields\."\}$},
     'counting the fields (max_header_fields)');
ok($after - $before < 16 * 1024, 'without growing the daemon');

($answer) = stream_until_answer(
    "GET /healthz HTTP/1.1\r\nHost: x\r\n"
    . join('', map { "X-F$_: " . ('b' x 8000) . "\r\n" } 1 .. 5), '', 0);
like($answer, qr{^HTTP/1\.1 431 }, 'a head over max_header_size gets 431');
like($answer, qr{\{"detail":"Request headers are larger than 32768 bytes\."\}$},
     'saying the limit');

# Within the limits, requests work, including a pipelined second one whose
# bytes arrived with the first head.
{
    my $ok_head = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
        . join('', map { "X-F$_: " . ('b' x 100) . "\r\n" } 1 .. 45);
    my $line = "X-Long: " . ('c' x 8000) . "\r\n";
    my $sock = connect_daemon();
    print $sock $ok_head . $line . "\r\n" . $ok_head . "Connection: close\r\n\r\n";
    local $/;
    my $both = <$sock> // '';
    my @answers = $both =~ m{(HTTP/1\.1 200 OK)}g;
    is(scalar @answers, 2, 'a large head within the limits, and a pipelined one, are served');
}
my ($s, $h, $b) = obtain_direct('alice', 'pw');
is($s, 200, 'obtain still works');
like(authtokend_log(), qr/request head from 127\.0\.0\.1: 431 /, 'refusals are logged');

done_testing();
