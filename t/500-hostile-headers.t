# Hostile Authorization headers through nginx + the module: huge header
# lines (nginx's own limit answers first, a bigger buffer lets them reach
# the module), NUL and control bytes in raw requests, and a flood of
# random keys with and without auth_token_cache. Every hostile request
# gets a documented status and body, never a 200, and nothing changes:
# the valid token still works (still a cache HIT), Redis is untouched, the
# error log has no alert, crit or crashed worker.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Hostile;

my $token = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
my $INVALID = '{"detail":"Invalid token."}';
my $TOO_LARGE = qr{<title>400 Request Header Or Cookie Too Large</title>};

redis_start();
seed_token($token, uid => 7, user => 'alice');
my $before = redis_snapshot();

$ENV{TEST_NGINX_BIG_PORT} = free_port();
nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m invalid=60s;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            auth_token_cache off;
            add_header X-User $auth_token_user always;
            add_header X-Status $auth_token_status always;
            default_type application/json;
            alias html/;
        }
        location /cached/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            add_header X-Cache $auth_token_cache_status always;
            default_type application/json;
            alias html/;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_BIG_PORT;
        large_client_header_buffers 4 64k;
        location /api/ {
            auth_token on;
            auth_token_cache off;
            add_header X-Status $auth_token_status always;
            default_type application/json;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "{\"hello\":true}\n");
my $port = nginx_port();
my $big = $ENV{TEST_NGINX_BIG_PORT};

sub get_with_auth {
    my ($p, $value, $path) = @_;
    $path ||= '/api/hello';
    return raw_http($p, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                        . "Authorization: $value\r\nConnection: close\r\n\r\n");
}

sub valid_still_works {
    my ($name) = @_;
    my $r = get_with_auth($port, "Token $token");
    ok($r && $r->{status} == 200 && $r->{headers}{'x-user'} eq 'alice',
       "$name: the valid token still gets 200 for alice");
}

my $r = get_with_auth($port, "Token $token");
is($r->{status}, 200, 'a valid token passes');

subtest 'a header line over large_client_header_buffers: nginx answers 400 first' => sub {
    # 8 KiB of key alone: the line "Authorization: Token <key>" is over
    # the default 8k buffer.
    for my $len (8 * 1024, 64 * 1024) {
        my $r = get_with_auth($port, 'Token ' . ('a' x $len));
        ok($r, "$len-byte key: answered");
        is($r->{status}, 400, "$len-byte key: 400");
        like($r->{body}, $TOO_LARGE, "$len-byte key: nginx's 'Request Header Or Cookie Too Large' page");
        ok(!exists $r->{headers}{'www-authenticate'}, "$len-byte key: no Token challenge (the module never ran)");
    }
    like(nginx_error_log(), qr/\[info\].*client sent too long header line/,
         'nginx logs it at info');
    # Just under the limit, the module judges it.
    my $r = get_with_auth($port, 'Token ' . ('a' x 8000));
    is("$r->{status} $r->{body}", "401 $INVALID", 'an 8000-byte key reaches the module: Invalid token.');
    valid_still_works('after huge headers');
};

subtest 'with large_client_header_buffers 4 64k, big keys reach the module' => sub {
    for my $len (8 * 1024, 16 * 1024, 60 * 1024) {
        my $r = get_with_auth($big, 'Token ' . ('b' x $len));
        is($r->{status}, 401, "$len-byte key: 401");
        is($r->{body}, $INVALID, "$len-byte key: Invalid token.");
        is($r->{headers}{'x-status'}, 'invalid', "$len-byte key: \$auth_token_status invalid");
        is($r->{headers}{'www-authenticate'}, 'Token', "$len-byte key: challenge");
    }
    # A 16 KiB key that is the valid token followed by junk is not the
    # valid token.
    my $r = get_with_auth($big, "Token $token" . ('0' x 16384));
    is("$r->{status} $r->{body}", "401 $INVALID", 'the valid key with 16 KiB appended: Invalid token.');
    # 16 KiB of whitespace around the valid key is ignored, as DRF does.
    $r = get_with_auth($big, "Token " . (" " x 16384) . $token . (" \t" x 4096));
    is($r->{status}, 200, 'the valid key inside 16 KiB of spaces and tabs: 200');
    # Over 64k: nginx again.
    $r = get_with_auth($big, 'Token ' . ('b' x (70 * 1024)));
    is($r->{status}, 400, 'a 70 KiB key over the 64k buffer: 400');
    like($r->{body}, $TOO_LARGE, "nginx's page");
};

subtest 'NUL, CR, LF and control bytes in the Authorization header' => sub {
    # What nginx 1.22 does before the module: NUL anywhere in a header
    # line is "client sent invalid header line" (400); a bare CR too.
    # Other control bytes are kept in the value and reach the module.
    my @cases = (
        # [ name, raw header value, expected status, expected body or undef ]
        ['NUL inside the key',       "Token abc\0def",          400, undef],
        ['NUL after the valid key',  "Token $token\0",          400, undef],
        ['NUL before the valid key', "Token \0$token",          400, undef],
        ['NUL in the keyword',       "To\0ken $token",          400, undef],
        ['bare CR inside the key',   "Token ab\rcd",            400, undef],
        ['SOH inside the key',       "Token abc\x01def",        401, $INVALID],
        ['DEL inside the key',       "Token abc\x7fdef",        401, $INVALID],
        ['ESC after the valid key',  "Token $token\x1b",        401, $INVALID],
        ['BS in the valid key',      "Token " . substr($token, 0, 10) . "\x08" . substr($token, 10), 401, $INVALID],
        ['VT between keyword and key (whitespace for DRF)', "Token\x0b$token", 200, undef],
        ['FF between two parts',     "Token abc\x0cdef",        401,
         '{"detail":"Invalid token header. Token string should not contain spaces."}'],
        ['0x85 (not UTF-8)',         "Token abc\x85def",        401,
         '{"detail":"Invalid token header. Token string should not contain invalid characters."}'],
        ['0xff after the valid key', "Token $token\xff",        401,
         '{"detail":"Invalid token header. Token string should not contain invalid characters."}'],
        ['UTF-8 overlong NUL (C0 80)', "Token abc\xc0\x80def",  401,
         '{"detail":"Invalid token header. Token string should not contain invalid characters."}'],
        ['UTF-16 surrogate as UTF-8 (ED A0 80)', "Token abc\xed\xa0\x80", 401,
         '{"detail":"Invalid token header. Token string should not contain invalid characters."}'],
        ['only control bytes',       "\x01\x02\x03",            401,
         '{"detail":"Authentication credentials were not provided."}'],
    );
    for my $c (@cases) {
        my ($name, $value, $want, $body) = @$c;
        my $r = get_with_auth($port, $value);
        ok($r, "$name: answered") or next;
        isnt($r->{status}, 200, "$name: never 200") unless $want == 200;
        is($r->{status}, $want, "$name: $want");
        is($r->{body}, $body, "$name: body") if defined $body;
        if ($want == 400) {
            like($r->{body}, qr{<title>400 Bad Request</title>},
                 "$name: nginx's own 400 page, before the module");
        }
    }
    # A header folded with obs-fold continuation (LF + space) is refused
    # by nginx too, and a bare LF ends the header line.
    my $r = raw_http($port, "GET /api/hello HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Token\r\n $token\r\nConnection: close\r\n\r\n");
    ok($r && $r->{status} != 200, 'an obs-folded Authorization is never 200');
    is($r && $r->{status}, 400, 'nginx refuses the folded line with 400');
    $r = raw_http($port, "GET /api/hello HTTP/1.1\nHost: localhost\n"
        . "Authorization: Token $token\nConnection: close\n\n");
    is($r && $r->{status}, 200, 'bare LF line ends are HTTP/1.1-tolerated: the valid key still passes');
    # Two Authorization headers: nginx 1.22 treats Authorization as a
    # unique header and refuses the request ("client sent duplicate
    # header line"), whichever of the two is valid.
    for my $pair (["nope", $token], [$token, "nope"]) {
        $r = raw_http($port, "GET /api/hello HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Token $pair->[0]\r\nAuthorization: Token $pair->[1]\r\n"
            . "Connection: close\r\n\r\n");
        is($r && $r->{status}, 400, "two Authorization headers ($pair->[0] first): nginx's 400, never 200");
    }
    valid_still_works('after control bytes');
    my @bad = bad_log_lines(nginx_error_log());
    is_deeply(\@bad, [], 'no alert, crit or signal in the error log');
};

sub flood {
    my ($path, $connections, $per) = @_;
    my %statuses;
    my %cache;
    my $t0 = time;
    for my $c (1 .. $connections) {
        my $s = raw_connect($port);
        for my $i (1 .. $per) {
            my $len = 1 + int rand 80;
            my $key = join '', map { chr(33 + int rand 94) } 1 .. $len;
            $key =~ s/[\\]/x/g;
            my $res = ka_request($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                                     . "Authorization: Token $key\r\n\r\n");
            if (!$res) { $statuses{'no answer'}++; last; }
            $statuses{$res->{status}}++;
            $statuses{'wrong body'}++ if $res->{body} ne $INVALID;
            $cache{$res->{headers}{'x-cache'} // ''}++;
        }
        close $s;
    }
    return (\%statuses, \%cache, time - $t0);
}

subtest '3000 random keys over 5 connections: all 401 Invalid token.' => sub {
    my ($st, undef, $took) = flood('/api/hello', 5, 600);
    is_deeply($st, { 401 => 3000 }, '3000 x 401 Invalid token., no 200, no other status');
    diag(sprintf '3000 random keys in %.2f s', $took) if $ENV{TEST_VERBOSE};
    valid_still_works('after the flood');
};

subtest 'with auth_token_cache: the valid token stays a HIT through 3000 random keys' => sub {
    my $r = get_with_auth($port, "Token $token", '/cached/hello');
    is($r->{status}, 200, 'first request with the valid token');
    $r = get_with_auth($port, "Token $token", '/cached/hello');
    is($r->{headers}{'x-cache'}, 'HIT', 'now a HIT');
    my ($st, $cache) = flood('/cached/hello', 5, 600);
    is_deeply($st, { 401 => 3000 }, '3000 x 401 Invalid token. through the cache');
    $r = get_with_auth($port, "Token $token", '/cached/hello');
    is($r->{status}, 200, 'the valid token still passes');
    is($r->{headers}{'x-cache'}, 'HIT', 'and is still a HIT (unknown keys did not push it out)');
    # A random key answered from its negative entry is still 401.
    my $s = raw_connect($port);
    my $req = "GET /cached/hello HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token zz-not-a-key\r\n\r\n";
    ka_request($s, $req);
    my $again = ka_request($s, $req);
    is("$again->{status} $again->{headers}{'x-cache'}", '401 HIT', 'a repeated unknown key: 401 from its negative entry');
};

is_deeply(redis_snapshot(), $before, 'Redis is exactly as it was (the module only reads)');
my $log = nginx_error_log();
is_deeply([bad_log_lines($log)], [], 'no alert, crit, emerg or signal in the whole error log');
# nginx's own info lines for a header it refuses before any module runs
# ("client sent invalid header line", "too long header line", "duplicate
# header line") quote the start of the offending line: the key of a client
# that sent a broken header can be in the log at info. This is nginx, not
# the module; the test keeps it visible (see the report / README).
my @core = grep { /client sent (invalid|too long|duplicate) header line/ } split /\n/, $log;
my @rest = grep { !/client sent (invalid|too long|duplicate) header line/ } split /\n/, $log;
ok((grep { /\Q$token\E/ } @core),
   "nginx core's own 'client sent ... header line' info lines do quote a refused Authorization header (known, not the module)");
is_deeply([grep { /\Q$token\E/ } @rest], [], 'no other line (none of the module\'s) contains the valid key');
is_deeply([grep { /zz-not-a-key/ } @rest], [], 'nor an unknown key');

nginx_stop();
done_testing();
