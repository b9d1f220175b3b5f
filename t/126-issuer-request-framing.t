# authtokend refuses a request whose body framing is ambiguous, as nginx
# does (ngx_http_process_request_header), so that a proxy in front and the
# daemon can never split one byte stream into different requests (request
# smuggling, RFC 9112 section 6.3): Content-Length with Transfer-Encoding, a
# second Content-Length, a Content-Length that is not digits, or a NUL byte
# in the head get 400 {"detail":"Malformed request head."}; a
# Transfer-Encoding other than chunked gets 501. Each is answered in JSON,
# logged, and the connection closed: a request smuggled behind it is never
# answered. Checked on a connection's first request (read before
# libmicrohttpd) and on a kept-alive connection's second one.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Hostile;

issuer_setup();
authtokend_start('--throttle-user-addr-rate', 'off',
                 '--throttle-addr-rate', 'off', '--throttle-user-rate', 'off');
my $port = authtokend_port();
ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
my $alice = token_of('alice');

my $MALFORMED = '{"detail":"Malformed request head."}';
my $NOT_IMPLEMENTED =
    '{"detail":"Transfer-Encoding other than chunked is not supported."}';
my $FORM = "Content-Type: application/x-www-form-urlencoded\r\n";
my $LOGIN = 'username=alice&password=alice-pw';
my $SMUGGLED = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

# [name, request head and body, status, body, log reason]
my @cases = (
    ['Content-Length with Transfer-Encoding: chunked',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, $MALFORMED, 'both Content-Length and Transfer-Encoding'],
    ['Transfer-Encoding: chunked before Content-Length',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     400, $MALFORMED, 'both Content-Length and Transfer-Encoding'],
    ['two different Content-Lengths',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Content-Length: 3\r\nContent-Length: 40\r\n\r\na=b",
     400, $MALFORMED, 'duplicate Content-Length'],
    ['two equal Content-Lengths',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Content-Length: 3\r\ncontent-length: 3\r\n\r\na=b",
     400, $MALFORMED, 'duplicate Content-Length'],
    ['Transfer-Encoding: gzip, chunked',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\na=b\r\n0\r\n\r\n",
     501, $NOT_IMPLEMENTED, 'unsupported Transfer-Encoding'],
    ['Transfer-Encoding: identity with Content-Length',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\na=b",
     400, $MALFORMED, 'both Content-Length and Transfer-Encoding'],
);
# What libmicrohttpd parses itself before the daemon sees the head: checked
# on a connection's first request.
my @first_only = (
    ['Content-Length: +3',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Content-Length: +3\r\n\r\na=b",
     400, $MALFORMED, 'invalid Content-Length'],
    ['Content-Length: 3, 3',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
     . "Content-Length: 3, 3\r\n\r\na=b",
     400, $MALFORMED, 'invalid Content-Length'],
    ['a NUL byte in the path (/healthz\0x must not be /healthz)',
     "GET /healthz\0x HTTP/1.1\r\nHost: x\r\n\r\n",
     400, $MALFORMED, 'NUL byte in the head'],
    ['a NUL byte in a header value',
     "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
     . "Content-Type: application/x-www-form-urlencoded\0text/plain\r\n"
     . "Content-Length: " . length($LOGIN) . "\r\n\r\n$LOGIN",
     400, $MALFORMED, 'NUL byte in the head'],
);

sub responses {
    my ($raw) = @_;
    my @all;
    while (my ($res, $used) = parse_response($raw, 1)) {
        push @all, $res;
        $raw = substr($raw, $used);
        last if $raw eq '';
    }
    return @all;
}

sub check {
    my ($name, $bytes, $status, $body, $reason, $before) = @_;
    my $log_at = length authtokend_log();
    my $r = raw_http($port, $bytes . $SMUGGLED, 5);
    ok($r, "$name: answered") or return;
    my @all = responses($r->{raw});
    shift @all if $before; # the kept-alive connection's first answer
    my $got = $all[0] || {};
    is($got->{status}, $status, "$name: $status");
    is($got->{body}, $body, "$name: JSON detail");
    is($got->{headers}{'content-type'}, 'application/json',
       "$name: JSON content type");
    ok($r->{closed}, "$name: connection closed");
    is(scalar @all, 1, "$name: the request behind it is not answered")
        or diag($r->{raw});
    like(substr(authtokend_log(), $log_at), qr/: $status \Q$reason\E/,
         "$name: logged with its cause");
}

for my $c (@cases, @first_only) {
    my ($name, $bytes, $status, $body, $reason) = @$c;
    check("first request, $name", $bytes, $status, $body, $reason, 0);
}
for my $c (@cases) {
    my ($name, $bytes, $status, $body, $reason) = @$c;
    check("second request, $name",
          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" . $bytes,
          $status, $body, $reason, 1);
}

# What is well framed still works: a chunked body (any case of the
# coding), a Content-Length body.
for my $te ('chunked', 'Chunked') {
    my $r = raw_http($port, "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "${FORM}Transfer-Encoding: $te\r\nConnection: close\r\n\r\n"
        . sprintf('%x', length $LOGIN) . "\r\n$LOGIN\r\n0\r\n\r\n");
    is($r && $r->{status}, 200, "Transfer-Encoding: $te: 200");
    is($r && $r->{body}, qq{{"token":"$alice"}}, "Transfer-Encoding: $te: the token");
}
my $r = raw_http($port, "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n$FORM"
    . 'Content-Length: ' . length($LOGIN) . "\r\nConnection: close\r\n\r\n$LOGIN");
is($r && $r->{body}, qq{{"token":"$alice"}}, 'Content-Length body: the token');

is(kill(0, authtokend_pid()), 1, 'authtokend is still running');
is_deeply([bad_log_lines(authtokend_log())], [], 'no crash in the log');

done_testing();
