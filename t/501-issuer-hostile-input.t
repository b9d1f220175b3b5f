# Hostile input to the issuer, straight to authtokend and through nginx:
# slowloris clients, bodies over the limit, deeply nested JSON, multipart
# and forms with thousands of parts, NUL bytes, non-UTF-8 bodies, Unicode
# usernames. Each gets its documented status and JSON body, the daemon
# stays up and answers a normal obtain promptly, Redis is unchanged.
use strict;
use warnings;

use IO::Select;
use POSIX ":sys_wait_h";
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;
use AuthToken::Hostile;

my $LIMIT = 262144;     # max_body_size for this file
my $READ_TIMEOUT = 1;   # seconds
issuer_setup();
authtokend_start('--threads', '2', '--read-timeout', $READ_TIMEOUT,
                 '--max-body-size', $LIMIT,
                 '--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                 '--throttle-user-addr-rate', 'off');
my $dport = authtokend_port();

ctl_ok({ stdin => "alice-pw\n" }, 'createuser', 'alice', '--password-stdin');
my $alice = token_of('alice');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location = /big/api-token-auth/ {
            client_max_body_size 10m;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT/api-token-auth/;
        }
        location /api/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            default_type application/json;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "{\"hello\":true}\n");
my $nport = nginx_port();

my $FORM = 'application/x-www-form-urlencoded';
my $UNABLE = '{"non_field_errors":["Unable to log in with provided credentials."]}';

sub post {
    my ($port, $ct, $body, %o) = @_;
    my $path = $o{path} || '/api-token-auth/';
    return raw_http($port, "POST $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: $ct\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n$body", $o{timeout} || 10);
}

sub pct { my $s = shift; $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s }

sub obtain_ok {
    my ($name, $port) = @_;
    my $r = post($port || $dport, $FORM, 'username=alice&password=alice-pw',
                 timeout => 5);
    ok($r && $r->{status} == 200 && $r->{body} eq qq{{"token":"$alice"}},
       "$name: a normal obtain still answers alice's token");
    return $r;
}

my $baseline = redis_snapshot();
obtain_ok('at the start');
is_deeply(redis_snapshot(), $baseline, 'a successful obtain writes nothing (no last_login, as DRF)');

subtest 'bodies over max_body_size: 413 JSON, straight and through nginx' => sub {
    my $too_big = qq{{"detail":"Request body is larger than $LIMIT bytes."}};
    my $body = 'username=alice&password=' . ('x' x $LIMIT);
    my $r = post($dport, $FORM, $body);
    is("$r->{status} $r->{body}", "413 $too_big", 'straight: 413 with the documented body');
    is($r->{headers}{'content-type'}, 'application/json', 'as JSON');
    ok($r->{closed}, 'and the connection is closed');
    # Exactly at the limit is accepted (and judged).
    my $at = 'username=alice&password=';
    $at .= 'x' x ($LIMIT - length $at);
    $r = post($dport, $FORM, $at);
    is("$r->{status} $r->{body}", "400 $UNABLE", "a body of exactly $LIMIT bytes is read and judged");
    # Chunked, no length announced: cut at the limit.
    my $s = raw_connect($dport);
    local $SIG{PIPE} = 'IGNORE';
    my $chunk = 'x' x 65536;
    my $req = "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\nContent-Type: $FORM\r\n"
            . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    $req .= sprintf("%x\r\n%s\r\n", length $chunk, $chunk) x 6;
    $req .= "0\r\n\r\n";
    $r = raw_http($dport, $req);
    is("$r->{status} $r->{body}", "413 $too_big", 'a chunked body over the limit: 413');
    # Through nginx, default client_max_body_size (1m): the daemon
    # answers 413 from the Content-Length, then reads and drops the body
    # nginx is still writing before it closes (lingering_time); a plain
    # close would reset the connection and nginx would answer 502.
    $r = post($nport, $FORM, $body);
    isnt($r->{status}, 200, 'through nginx: never 200');
    is("$r->{status} $r->{body}", "413 $too_big", 'through nginx: the daemon\'s 413 JSON');
    # Over nginx's own 1m: nginx answers first, with its HTML page.
    $r = post($nport, $FORM, 'username=alice&password=' . ('x' x (2 * 1024 * 1024)));
    is($r->{status}, 413, 'over client_max_body_size: 413 from nginx');
    like($r->{body}, qr{<title>413 Request Entity Too Large</title>}, "nginx's own page, not JSON");
    # With client_max_body_size 10m, the 2 MiB body reaches the daemon.
    $r = post($nport, $FORM, 'username=alice&password=' . ('x' x (2 * 1024 * 1024)),
              path => '/big/api-token-auth/');
    isnt($r->{status}, 200, 'with client_max_body_size 10m: never 200');
    is("$r->{status} $r->{body}", "413 $too_big", 'with client_max_body_size 10m: the daemon\'s 413 JSON');
    obtain_ok('after oversize bodies');
    obtain_ok('through nginx after oversize bodies', $nport);
};

# `curl -X POST` with no -d sends neither Content-Length nor
# Transfer-Encoding: no body (RFC 9112, 6.3). Django reads it as empty, so
# DRF answers with both fields required; nothing waits for a body.
subtest 'a POST with no Content-Length has an empty body: both fields required' => sub {
    my $required = '{"username":["This field is required."],'
        . '"password":["This field is required."]}';
    for my $via (['straight', $dport], ['through nginx', $nport]) {
        my ($name, $port) = @$via;
        my $r = raw_http($port, "POST /api-token-auth/ HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\n\r\n", 10);
        ok($r, "$name: answered") or next;
        is($r->{status}, 400, "$name: 400");
        is($r->{body}, $required, "$name: DRF's body for an empty POST");
    }
    obtain_ok('after the empty POSTs');
};

subtest 'deeply nested JSON: 400 parse error, the daemon stays up' => sub {
    my $deep = qq{{"detail":"JSON parse error - Nesting deeper than 64 levels is not supported: line 1 column 65 (char 64)"}};
    for my $case (['100000 [', '[' x 100000],
                  ['100000 [ and ]', ('[' x 100000) . (']' x 100000)],
                  ['100000 [ inside the username', '{"username":' . ('[' x 100000)]) {
        my ($name, $body) = @$case;
        my $r = post($dport, 'application/json', $body);
        is($r && $r->{status}, 400, "$name: 400");
        like($r && $r->{body}, qr/^\{"detail":"JSON parse error - Nesting deeper than 64 levels is not supported: line 1 column \d+ \(char \d+\)"\}$/,
             "$name: JSON parse error");
    }
    my $r = post($dport, 'application/json', '[' x 100000);
    is($r->{body}, $deep, 'the position is where the 65th level opens');
    $r = post($dport, 'application/json', ('[' x 64) . (']' x 64));
    is("$r->{status} $r->{body}", '400 {"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}',
       '64 levels still parse');
    $r = post($nport, 'application/json', '{"a":' x 20000, path => '/big/api-token-auth/');
    like("$r->{status} $r->{body}", qr/^400 \{"detail":"JSON parse error - Nesting deeper than 64 levels/,
         'through nginx: 400 parse error');
    obtain_ok('after deep JSON');
};

subtest 'thousands of form and multipart parts: 400 with Django\'s message' => sub {
    my $too_many = 'The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.';
    my $mp = join('', map { "--B\r\nContent-Disposition: form-data; name=\"f$_\"\r\n\r\nx\r\n" } 1 .. 3000)
           . "--B--\r\n";
    my $r = post($dport, 'multipart/form-data; boundary=B', $mp);
    is("$r->{status} $r->{body}", qq{400 {"detail":"Multipart form parse error - $too_many"}},
       'multipart with 3000 parts: 400');
    $r = post($nport, 'multipart/form-data; boundary=B', $mp);
    is("$r->{status} $r->{body}", qq{400 {"detail":"Multipart form parse error - $too_many"}},
       'the same through nginx');
    my $files = join('', map { "--B\r\nContent-Disposition: form-data; name=\"f$_\"; filename=\"f\"\r\n\r\nx\r\n" } 1 .. 2000)
              . "--B--\r\n";
    $r = post($dport, 'multipart/form-data; boundary=B', $files);
    is("$r->{status} $r->{body}",
       '400 {"detail":"Multipart form parse error - The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES."}',
       'multipart with 2000 file parts: 400');
    $r = post($dport, $FORM, join '&', map { "f$_=x" } 1 .. 5000);
    is("$r->{status} $r->{body}", qq{400 {"detail":"$too_many"}}, 'a form with 5000 fields: 400');
    $r = post($dport, $FORM, '&' x 5000);
    is("$r->{status} $r->{body}", qq{400 {"detail":"$too_many"}}, 'a form of 5000 empty pieces: 400');
    # 1000 fields in all, credentials among them: still a login.
    $r = post($dport, $FORM, join '&', 'username=alice', 'password=alice-pw', map { "f$_=x" } 1 .. 998);
    is("$r->{status} $r->{body}", qq{200 {"token":"$alice"}}, '1000 form fields in all: accepted');
    obtain_ok('after thousands of parts');
};

subtest 'NUL bytes: 400 "Null characters are not allowed."' => sub {
    my $null = '["Null characters are not allowed."]';
    my @cases = (
        ['form, %00 in the username', $FORM, 'username=al%00ice&password=alice-pw', qq{{"username":$null}}],
        ['form, raw NUL in the username', $FORM, "username=al\0ice&password=alice-pw", qq{{"username":$null}}],
        ['form, %00 in the password', $FORM, 'username=alice&password=alice-pw%00', qq{{"password":$null}}],
        ['form, NUL in both', $FORM, 'username=%00&password=%00', qq{{"username":$null,"password":$null}}],
        ['JSON, \u0000 in the username', 'application/json', '{"username":"alice\u0000","password":"alice-pw"}', qq{{"username":$null}}],
        ['JSON, \u0000 in the password', 'application/json', '{"username":"alice","password":"\u0000alice-pw"}', qq{{"password":$null}}],
        ['multipart, NUL in the username', 'multipart/form-data; boundary=B',
         "--B\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nal\0ice\r\n"
         . "--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nalice-pw\r\n--B--\r\n",
         qq{{"username":$null}}],
    );
    for my $c (@cases) {
        my ($name, $ct, $body, $want) = @$c;
        my $r = post($dport, $ct, $body);
        is("$r->{status} $r->{body}", "400 $want", "$name: 400");
        $r = post($nport, $ct, $body);
        is("$r->{status} $r->{body}", "400 $want", "$name, through nginx: 400");
    }
    # A raw NUL outside a JSON string is junk after the value for Python.
    my $r = post($dport, 'application/json', qq{{"username":"alice","password":"alice-pw"}\0});
    like("$r->{status} $r->{body}", qr/^400 \{"detail":"JSON parse error - Extra data: line 1 column \d+ \(char \d+\)"\}$/,
         'a NUL after a JSON document: 400 Extra data');
    obtain_ok('after NUL bytes');
};

subtest 'non-UTF-8 bodies' => sub {
    # Forms and multipart are decoded with replacement (Django's QueryDict):
    # the name cannot match alice; the login fails like a wrong name.
    for my $c (['%FF in a form username', $FORM, 'username=al%FFice&password=alice-pw'],
               ['raw 0xFF in a form username', $FORM, "username=al\xffice&password=alice-pw"],
               ['overlong UTF-8 in a form password', $FORM, 'username=alice&password=alice-pw%C0%80'],
               ['a lone surrogate in a form', $FORM, 'username=alice%ED%A0%80&password=alice-pw'],
               ['0xFF in a multipart username', 'multipart/form-data; boundary=B',
                "--B\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nal\xffice\r\n"
                . "--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nalice-pw\r\n--B--\r\n"]) {
        my ($name, $ct, $body) = @$c;
        my $r = post($dport, $ct, $body);
        is("$r->{status} $r->{body}", "400 $UNABLE", "$name: 400 Unable to log in");
    }
    my $r = post($dport, 'application/json', qq{{"username":"al\xffice","password":"alice-pw"}});
    is("$r->{status} $r->{body}",
       q{400 {"detail":"JSON parse error - 'utf-8' codec can't decode byte 0xff in position 15: invalid start byte"}},
       'raw 0xFF in a JSON body: 400 with Python\'s codec message');
    # latin-1 declared: 0xE9 is é, a different name from alice.
    $r = post($dport, "$FORM; charset=latin-1", "username=alice%E9&password=alice-pw");
    is("$r->{status} $r->{body}", "400 $UNABLE", 'a latin-1 form for an unknown name: 400');
    obtain_ok('after non-UTF-8 bodies');
};

# Unicode names. Django's createsuperuser runs normalize_username (NFKC)
# and UnicodeUsernameValidator (^[\w.@+-]+\Z) on the name; its login
# (ModelBackend) looks the name up exactly as sent, without normalizing.
my $nfc = "caf\xc3\xa9";          # café, precomposed é
my $nfd = "cafe\xcc\x81";         # café, e + COMBINING ACUTE ACCENT
my $cyr = "\xd0\xbf\xd0\xbe\xd0\xbb\xd1\x8c\xd0\xb7\xd0\xbe\xd0\xb2\xd0\xb0\xd1\x82\xd0\xb5\xd0\xbb\xd1\x8c";   # пользователь
my $cjk = "\xe7\x94\xa8\xe6\x88\xb7";   # 用户

subtest 'Unicode usernames: created with the CLI, log in, authenticate' => sub {
    for my $u ([$nfc, 'nfc-pw'], [$cyr, 'cyr-pw'], [$cjk, 'cjk-pw']) {
        my ($name, $pw) = @$u;
        my ($code, $out, $err) = ctl({ stdin => "$pw\n" }, 'createuser', $name, '--password-stdin');
        is($code, 0, "createuser $name") or diag $err;
        my $tok = token_of($name);
        my $r = post($nport, $FORM, 'username=' . pct($name) . "&password=$pw");
        is("$r->{status} $r->{body}", qq{200 {"token":"$tok"}}, "$name: form login through nginx answers its token");
        my $json_name = join '', map { sprintf '\u%04x', ord } split //, do { my $s = $name; utf8::decode($s); $s };
        $r = post($nport, 'application/json', qq{{"username":"$json_name","password":"$pw"}});
        is("$r->{status} $r->{body}", qq{200 {"token":"$tok"}}, "$name: JSON login with \\u escapes");
        $r = post($nport, 'application/json; charset=utf-8', qq{{"username":"$name","password":"$pw"}});
        is("$r->{status} $r->{body}", qq{200 {"token":"$tok"}}, "$name: JSON login with raw UTF-8");
        $r = post($nport, 'multipart/form-data; boundary=B',
                  "--B\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n$name\r\n"
                  . "--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n$pw\r\n--B--\r\n");
        is("$r->{status} $r->{body}", qq{200 {"token":"$tok"}}, "$name: multipart login");
        $r = raw_http($nport, "GET /api/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Token $tok\r\nConnection: close\r\n\r\n");
        is($r->{status}, 200, "$name: the token authenticates in nginx");
        is($r->{headers}{'x-user'}, $name, "$name: \$auth_token_user is the UTF-8 name, byte for byte");
    }
    # Login does not normalize (as Django's ModelBackend): the NFD
    # spelling is not the NFC user.
    my $r = post($dport, $FORM, 'username=' . pct($nfd) . '&password=nfc-pw');
    is("$r->{status} $r->{body}", "400 $UNABLE", 'the NFD spelling of café with its password: not that user');
    $r = post($dport, $FORM, 'username=' . pct("CAF\xc3\x89") . '&password=nfc-pw');
    is("$r->{status} $r->{body}", "400 $UNABLE", 'nor is CAFÉ (case-sensitive, as Django)');
    # A 100-character Cyrillic name is 200 bytes: Django's max_length is
    # 150 characters.
    my $long = "\xd0\xb6" x 100;
    my ($code, undef, $err) = ctl({ stdin => "long-pw\n" }, 'createuser', $long, '--password-stdin');
    is($code, 0, 'a 100-character (200-byte) Cyrillic name is accepted, as Django (max_length=150 characters)')
        or diag $err;
};

subtest 'createuser and Django\'s username rules' => sub {
    # createuser normalizes (NFKC) and validates the name, as Django does.
    # Django's normalize_username (NFKC) runs before the uniqueness check:
    # both spellings below are an existing user's name, so they are refused.
    my ($code, $out, $err) = ctl({ stdin => "nfd-pw\n" }, 'createuser', $nfd, '--password-stdin');
    isnt($code, 0, 'createuser refuses the NFD spelling of an existing NFC name');
    like($err, qr/^Error: That username is already taken\.$/m,
         'because the normalized name is taken');
    ok(!redis_cmd('EXISTS', "authtoken:username:$nfd"),
       'the NFD spelling does not become a second user');
    ($code, undef, $err) = ctl({ stdin => "x-pw\n" }, 'createuser', "\xef\xbd\x81lice", '--password-stdin');   # ａlice (fullwidth a)
    isnt($code, 0, 'fullwidth "ａlice" is refused: NFKC makes it "alice", who exists');
    like($err, qr/^Error: That username is already taken\.$/m, 'with the same message');
    ok(!redis_cmd('EXISTS', "authtoken:username:\xef\xbd\x81lice"),
       'and is not a second alice');
    ($code) = ctl({ stdin => "x-pw\n" }, 'createuser', "ctl\x01name", '--password-stdin');
    isnt($code, 0, 'a name with a control byte is refused (not \w.@+-)');
    ($code) = ctl({ stdin => "x-pw\n" }, 'createuser', "bad\xffutf8", '--password-stdin');
    isnt($code, 0, 'a name that is not UTF-8 is refused');
    # The NFD spelling does not log in as the NFC user with a wrong password.
    my $r = post($dport, $FORM, 'username=' . pct($nfd) . '&password=nfd-pw');
    is("$r->{status} $r->{body}", "400 $UNABLE", 'the refused NFD spelling does not log in');
};

# Slowloris: the daemon reads with a per-read timeout of $READ_TIMEOUT s and
# a whole-request timeout (request_timeout); each connection has a thread
# of its own (max_connections), password hashes run 2 at a time here.
sub dribbler {
    my ($port, $interval, $limit) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    local $SIG{PIPE} = 'IGNORE';
    my $s = raw_connect($port);
    my $t0 = time;
    my $req = "POST /api-token-auth/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: " . ('a' x 4000);
    my $sel = IO::Select->new($s);
    for my $c (split //, $req) {
        exit 0 unless syswrite($s, $c);                # cut off
        if ($sel->can_read($interval)) {
            my $n = sysread($s, my $buf, 4096);
            exit 0 if !$n;                             # closed by the server
        }
        exit 1 if time - $t0 > $limit;                  # still connected
    }
    exit 1;
}

sub reap {
    my ($pids, $limit) = @_;
    my %code;
    my $t0 = time;
    while (keys %code < @$pids && time - $t0 < $limit) {
        for my $p (@$pids) {
            next if exists $code{$p};
            $code{$p} = $? >> 8 if waitpid($p, WNOHANG) == $p;
        }
        sleep 0.05;
    }
    for my $p (@$pids) {
        next if exists $code{$p};
        kill 'KILL', $p;
        waitpid($p, 0);
        $code{$p} = 'killed';
    }
    return [map { $code{$_} } @$pids];
}

subtest 'slowloris slower than the read timeout: cut off, obtain still answered' => sub {
    my @pids = map { dribbler($dport, $READ_TIMEOUT * 2, 10) } 1 .. 6;
    sleep 0.3;
    my $t0 = time;
    my $r = obtain_ok('while 6 clients dribble one byte every 2 s');
    my $took = time - $t0;
    diag(sprintf 'obtain answered in %.2f s', $took) if $ENV{TEST_VERBOSE};
    cmp_ok($took, '<', $READ_TIMEOUT + 0.5, 'promptly: within the read timeout + 0.5 s');
    cmp_ok($took, '<', 3 * $READ_TIMEOUT + 1.5, 'and no later than 3 read timeouts (6 clients / 2 threads) + 1.5 s');
    is_deeply(reap(\@pids, 10), [(0) x 6], 'every dribbling client was cut off');
    obtain_ok('after the slowloris');
};

subtest 'slowloris through nginx: nginx holds them, the daemon never sees them' => sub {
    my @pids = map { dribbler($nport, 0.3, 4) } 1 .. 6;
    sleep 0.5;
    my $t0 = time;
    obtain_ok('through nginx while 6 clients dribble one byte every 0.3 s', $nport);
    cmp_ok(time - $t0, '<', 1, 'at once');
    reap(\@pids, 6);
};

subtest 'slowloris faster than the read timeout, straight to the daemon' => sub {
    # One byte every 0.3 s never trips a 1 s per-read timeout; each such
    # client holds a connection thread until request_timeout, but there
    # are max_connections of those, not 2.
    my @pids = map { dribbler($dport, 0.3, 6) } 1 .. 4;
    sleep 0.5;
    my $t0 = time;
    my $r = post($dport, $FORM, 'username=alice&password=alice-pw', timeout => 3);
    my $took = time - $t0;
    ok($r && $r->{status} == 200, 'a normal obtain is answered within 3 s');
    diag(sprintf 'obtain during a fast slowloris: %s after %.2f s',
                 $r ? $r->{status} : 'no answer', $took) if $ENV{TEST_VERBOSE};
    reap(\@pids, 8);
    # Whatever happened, it recovers once they are gone.
    ok(defined wait_until(10, sub {
        my $r = post($dport, $FORM, 'username=alice&password=alice-pw', timeout => 2);
        $r && $r->{status} == 200 }), 'the daemon answers again once they are gone');
};

{
    # Nothing hostile wrote anything: the only new keys are the users the
    # test created.
    my $now = redis_snapshot();
    my @changed = grep { !exists $now->{$_} || $now->{$_} ne $baseline->{$_} } keys %$baseline;
    my @new = grep { !exists $baseline->{$_} } keys %$now;
    is_deeply([sort @changed], ['authtoken:next-uid', 'authtoken:revocation-seq', 'authtoken:users'],
              'of the keys that existed, only next-uid, the revocation sequence and the uid set changed (createuser)');
    is_deeply([grep { !m{^authtoken:(user|username|token):} } @new], [],
              'every new key is a user, a username or a token record');
    is_deeply([grep { /throttle/ } keys %$now], [], 'no throttle counter (throttling is off here)');
}

my $log = authtokend_log();
like($log, qr/obtain-token from 127\.0\.0\.1: 413 body over the limit/, 'the daemon logs the 413s');
unlike($log, qr/alice-pw|nfc-pw|cyr-pw|cjk-pw/, 'no password in the daemon log');
unlike($log, qr/\Q$alice\E/, 'no token in the daemon log');
is_deeply([bad_log_lines(nginx_error_log())], [], 'no alert, crit or signal in nginx\'s log');

nginx_stop();
done_testing();
