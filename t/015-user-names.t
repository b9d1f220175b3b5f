# User names come from Redis and go into upstream headers and log lines. A
# record whose name holds a control byte (CR/LF: header injection, split
# log lines), DEL, or leading/trailing spaces is malformed: 503, fail
# closed, and the error log shows the name escaped. Non-ASCII names are
# fine, and $auth_token_user_escaped gives them percent-encoded for
# upstreams that decode header values as ISO-8859-1 (WSGI).
use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use URI::Escape qw(uri_unescape);

use AuthToken::Cleanup qw(track);
use AuthToken::TestRedis;
use AuthToken::Server;

redis_start();

my %bad = (
    'crlf'       => "mallory\r\nX-Admin: 1",
    'lf'         => "mallory\n",
    'tab'        => "mal\tlory",
    'del'        => "mal\x7flory",
    'escape'     => "\x1b[31mmallory",
    'leading'    => ' mallory',
    'trailing'   => 'mallory ',
);
my %token;
my $i = 0;
for my $kind (sort keys %bad) {
    $token{$kind} = sprintf '%040x', 0xbad0 + $i++;
    seed_token($token{$kind}, uid => 66, user => $bad{$kind});
}
my $inactive_crlf = 'c0ffee0000000000000000000000000000000001';
seed_token($inactive_crlf, uid => 67, user => "sleeper\r\nX-Admin: 1",
           active => 0);
my $zoe = 'a0e0000000000000000000000000000000000001';
seed_token($zoe, uid => 12, user => "Zo\xc3\xab O'Brien+1 100%/x-._~");
my $plain = 'a0e0000000000000000000000000000000000002';
seed_token($plain, uid => 13, user => 'alice');
my $inactive_zoe = 'a0e0000000000000000000000000000000000003';
seed_token($inactive_zoe, uid => 14, user => "Zo\xc3\xab", active => 0);

# An upstream that answers with the request head it received, byte for
# byte: what nginx passed on, spoofed headers included.
my $echo_port = free_port();
$ENV{TEST_NGINX_ECHO_PORT} = $echo_port;
$ENV{TEST_NGINX_UNDERSCORE_PORT} = free_port();
my $echo_listen = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1',
                                        LocalPort => $echo_port, ReuseAddr => 1)
    or die "echo: $!";
my $echo = fork // die "fork: $!";
if ($echo == 0) {
    while (my $c = $echo_listen->accept) {
        my $head = '';
        while (defined(my $line = <$c>)) {
            last if $line eq "\r\n";
            $head .= $line;
        }
        print $c "HTTP/1.0 200 OK\r\nContent-Length: " . length($head)
               . "\r\n\r\n$head";
        close $c;
    }
    exit 0;
}
close $echo_listen;
track($echo);    # killed and reaped at the end

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            proxy_set_header X-Auth-User $auth_token_user;
            proxy_set_header X-Auth-User-Escaped $auth_token_user_escaped;
            proxy_set_header X-Auth-User-Id $auth_token_user_id;
            rewrite ^ /echo break;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
        }
        location = /echo {
            return 200 "[$http_x_auth_user_escaped] [$http_x_auth_user_id]\n";
        }
    }

    # The recipe of docs/ngx_http_auth_token_module.md for a server that
    # needs underscores_in_headers on: every other spelling of the identity
    # headers is cleared.
    server {
        listen 127.0.0.1:$TEST_NGINX_UNDERSCORE_PORT;
        underscores_in_headers on;
        location /api/ {
            auth_token on;
            proxy_set_header X-Auth-User    $auth_token_user;
            proxy_set_header X-Auth-User-Id $auth_token_user_id;
            proxy_set_header X_Auth_User    "";
            proxy_set_header X_Auth-User    "";
            proxy_set_header X-Auth_User    "";
            proxy_set_header X_Auth_User_Id "";
            proxy_set_header X_Auth_User-Id "";
            proxy_set_header X_Auth-User_Id "";
            proxy_set_header X_Auth-User-Id "";
            proxy_set_header X-Auth_User_Id "";
            proxy_set_header X-Auth_User-Id "";
            proxy_set_header X-Auth-User_Id "";
            proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
        }
    }
HTTP

for my $kind (sort keys %bad) {
    subtest "a user name with $kind is a malformed record" => sub {
        my $r = http_request('/api/x', Authorization => "Token $token{$kind}");
        is($r->{status}, 503, '503, fail closed');
        is($r->{body},
           '{"detail":"Service temporarily unavailable, try again later."}',
           "DRF's ServiceUnavailable body");
        unlike($r->{body} . join('', %{$r->{headers}}), qr/X-Admin|mallory/i,
               'nothing of the name reaches the client');
    };
}

subtest 'an inactive user with CR/LF in the name is malformed too' => sub {
    my $r = http_request('/api/x', Authorization => "Token $inactive_crlf");
    is($r->{status}, 503, '503, not 401');
};

subtest 'the error log shows each bad name escaped, on one line' => sub {
    sleep 0.1;
    my $log = nginx_error_log();
    like($log, qr/malformed token record \(uid "66", user "mallory\\x0D\\x0AX-Admin: 1"\)/,
         'CR/LF as \x0D\x0A');
    like($log, qr/user "mal\\x7Flory"/, 'DEL as \x7F');
    like($log, qr/user "\\x1B\[31mmallory"/, 'ESC as \x1B');
    like($log, qr/user " mallory"/, 'the leading space is shown inside quotes');
    unlike($log, qr/^X-Admin/m, 'no log line was split by a name');
    unlike($log, qr/^lory/m, 'nor by a tab or DEL');
};

subtest 'a UTF-8 name passes, and $auth_token_user_escaped percent-encodes it' => sub {
    my $r = http_request('/api/x', Authorization => "Token $zoe");
    is($r->{status}, 200, 'the valid token gets 200');
    my ($escaped, $uid) = $r->{body} =~ /^\[(.*)\] \[(.*)\]$/;
    is($escaped, "Zo%C3%AB%20O%27Brien%2B1%20100%25%2Fx-._~",
       "every byte but RFC 3986's unreserved ones encoded, as Python's "
       . "quote(name, safe='') does");
    is(uri_unescape($escaped), "Zo\xc3\xab O'Brien+1 100%/x-._~",
       'and it decodes back to the exact bytes');
    like($escaped, qr/^[\x21-\x7e]+$/, 'plain ASCII, no space: a safe header value');
    is($uid, '12', '$auth_token_user_id, the stable key');

    $r = http_request('/api/x', Authorization => "Token $plain");
    is($r->{body}, "[alice] [13]\n", 'an ASCII name is left as it is');

    $r = http_request('/api/x', Authorization => "Token $inactive_zoe");
    is($r->{status}, 401, 'an inactive user gets 401');
};

subtest 'the inactive-user log line escapes a non-ASCII name' => sub {
    sleep 0.1;
    like(nginx_error_log(), qr/user "Zo\\xC3\\xAB" of the token is inactive/,
         'UTF-8 bytes as \xHH, as the access log does');
};

subtest 'underscores_in_headers on: the recipe clears every spoofed spelling' => sub {
    my $port = $ENV{TEST_NGINX_UNDERSCORE_PORT};
    my @spoofed = ('X_Auth_User: root', 'X_Auth-User: root', 'X-Auth_User: root',
                   'X_Auth_User_Id: 1', 'X-Auth_User-Id: 1', 'X-Auth-User_Id: 1',
                   'X_Auth-User_Id: 1');
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or die "connect: $!";
    print $s "GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           . "Authorization: Token $plain\r\n"
           . join('', map { "$_\r\n" } @spoofed) . "\r\n";
    local $/;
    my $res = <$s>;
    close $s;
    like($res, qr{^HTTP/1\.1 200}, 'the valid token gets 200');
    my ($head) = $res =~ /\r\n\r\n(.*)\z/s;
    like($head, qr/^X-Auth-User: alice\r$/m, 'the upstream gets the real name');
    like($head, qr/^X-Auth-User-Id: 13\r$/m, 'and the real id');
    my @leaked = grep { /^x[-_]auth[-_]user/i && !/^X-Auth-User(-Id)?: / }
                 split /\r\n/, $head;
    is_deeply(\@leaked, [], 'and no spoofed spelling of either');
};

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal \d+/,
       'no alert, no crash');

done_testing();
