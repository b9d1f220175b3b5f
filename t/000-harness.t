# Self-test of our Test::Nginx::Socket (t/lib) with plain nginx features
# only: every supported section and function is exercised at least once,
# and two nested .t files run in a subprocess prove that mismatches are
# reported as failures (and that --- ONLY and "plan tests => N" work).

use strict;
use warnings;

use Cwd qw( abs_path );
use Fcntl qw( LOCK_EX LOCK_NB );
use File::Basename qw( dirname );
use File::Temp qw( tempdir );
use IO::Socket::INET ();
use IPC::Run ();

use Test::Nginx::Socket 'no_plan';

# A listener that accepts connections (via the kernel backlog) but never
# answers: proxying to it makes nginx wait, so the client times out.
our $Hang = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                  LocalPort => 0)
    or die "cannot listen: $!";
$ENV{TEST_NGINX_HANG_PORT} = $Hang->sockport;

# Portable style: upstream does not define TEST_NGINX_HTML_DIR itself.
$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

# TEST_NGINX_LOAD_MODULES: load Debian's stream module, but only into the
# Debian nginx it was built for.  (This also drops whatever modules the
# caller asked for: the self-test runs plain nginx.)
my $stream_so = '/usr/lib/nginx/modules/ngx_stream_module.so';
our $HaveStream = -e $stream_so
    && ($ENV{TEST_NGINX_BINARY} // 'nginx') =~ m{^(?:nginx|/usr/sbin/nginx)$};
$ENV{TEST_NGINX_LOAD_MODULES} = $HaveStream ? $stream_so : '';

repeat_each(2);
no_shuffle();
log_level('info');
workers(2);
master_on();
worker_connections(1024);
no_root_location();
timeout(5);
env_to_nginx('TEST_HARNESS_ENV');
config_preamble(<<'_EOC_');
        location = /preamble { return 200 "from the preamble"; }
_EOC_

my ($blocks_cleaned, $run_cleaned) = (0, 0);
add_test_cleanup_handler(sub { $blocks_cleaned++ });
add_cleanup_handler(sub { $run_cleaned++ });

# Blocks without a request get a default one; blocks without error-log
# expectations get "no [alert]/[emerg]".
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->request && !defined $block->raw_request) {
        $block->set_value('request', "GET /hi\n");
    }
    if (!defined $block->error_log && !defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[emerg]\n");
    }
});

run_tests();

# ----------------------------------------------------------------------
# After run_tests(): nginx is gone and the last nginx.conf looks right.

my $servroot = server_root();
{
    my $pid;
    if (open my $in, '<', "$servroot/logs/nginx.pid") {
        ($pid) = <$in> =~ /(\d+)/;
    }
    ok(!$pid || !Test::Nginx::Util::is_running($pid)
       || $ENV{TEST_NGINX_NO_CLEAN}, "nginx is stopped after run_tests()");
    is($blocks_cleaned, scalar(blocks()), "test cleanup handler per block");
    is($run_cleaned, 1, "cleanup handler at the end of the run");

    my $conf = do {
        open my $in, '<', "$servroot/conf/nginx.conf" or die $!;
        local $/;
        <$in>;
    };
    my $port = server_port();
    like($conf, qr/^\s*listen\s+127\.0\.0\.1:$port;/m,
         "listens on 127.0.0.1:\$TEST_NGINX_SERVER_PORT");
    is($ENV{TEST_NGINX_SERVER_PORT}, $port, "TEST_NGINX_SERVER_PORT is set");
    like($conf, qr/^worker_processes\s+2;/m, "workers(2)");
    like($conf, qr/^master_process on;/m, "master_on()");
    like($conf, qr/^\s*worker_connections\s+1024;/m, "worker_connections()");
    like($conf, qr/^error_log \S+ info;/m, "log_level('info')");
    unlike($conf, qr/^\s*location \/ \{/m, "no_root_location()");
    like($conf, qr/^env TEST_HARNESS_ENV;/m, "env_to_nginx()");
    if ($> == 0) {
        like($conf, qr/^user root;/m, "workers stay root when run as root");
    }
    if ($HaveStream) {
        like($conf, qr/\Aload_module \Q$stream_so\E;/,
             "TEST_NGINX_LOAD_MODULES becomes load_module at the top");
    }
}

# ----------------------------------------------------------------------
# Nested runs: a harness that cannot fail is worthless.

my $lib = abs_path(dirname(abs_path(__FILE__)) . '/lib');
my $tmp = tempdir('harness-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# Runs a .t file in a subprocess with its own server root and port.
sub run_nested {
    my ($file, $text) = @_;
    my $path = "$tmp/$file";
    open my $out, '>', $path or die "$path: $!";
    print $out $text;
    close $out;

    # only the binary is passed on: no port, server root, NO_CLEAN, ...
    local %ENV = %ENV;
    delete @ENV{ grep { /^TEST_NGINX_/ && $_ ne 'TEST_NGINX_BINARY' }
                 keys %ENV };
    delete @ENV{qw( HARNESS_ACTIVE HARNESS_VERSION )};
    $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot";
    # The nested files crash nginx on purpose. Under tools/nginx-asan (make
    # test-asan, test-nginx-matrix) a SIGSEGV becomes a sanitizer report:
    # those go here, not into the directory whose reports fail the run.
    $ENV{AUTHTOKEN_SANITIZER_DIR} = "$tmp/sanitizer";
    my ($stdout, $stderr) = ('', '');
    IPC::Run::run([$^X, "-I$lib", $path], '<', \'', '>', \$stdout,
                  '2>', \$stderr, IPC::Run::timeout(120));
    return ($? >> 8, $stdout, $stderr);
}

sub nested_nginx_running () {
    for my $cmdline (glob '/proc/[0-9]*/cmdline') {
        (my $stat = $cmdline) =~ s/cmdline$/stat/;
        open my $in, '<', $cmdline or next;
        my $cmd = do { local $/; <$in> } // '';
        next if index($cmd, "$tmp/servroot") < 0;
        open my $st, '<', $stat or next;
        next if (<$st> // '') =~ /^\d+ \(.*\) [ZX] /s;
        return 1;
    }
    return 0;
}

my ($code, $stdout, $stderr) = run_nested('fail.t', <<'_EOT_');
use strict;
use warnings;
use IO::Socket::INET ();
use Test::Nginx::Socket 'no_plan';

our $Hang = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die $!;
$ENV{TEST_NGINX_HANG_PORT} = $Hang->sockport;

no_shuffle();
log_level('info');
run_tests();

__DATA__

=== TEST 1: passes
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok

=== TEST 2: wrong status
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- error_code: 201

=== TEST 3: wrong body
--- config
    location = /t { return 200 "line 1\nline 2\nline 3\n"; }
--- request
GET /t
--- response_body
line 1
line two
line 3

=== TEST 4: wrong body pattern
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body_like: ^nomatch$

=== TEST 5: wrong headers
--- config
    location = /t { add_header X-A yes; add_header X-B yes; return 200; }
--- request
GET /t
--- response_headers
X-A: no
!X-B

=== TEST 6: wrong header pattern
--- config
    location = /t { add_header X-A yes; return 200; }
--- request
GET /t
--- response_headers_like
X-A: n.*

=== TEST 7: expected error-log line missing
--- config
    location = /t { return 200; }
--- request
GET /t
--- error_log
this line is never logged

=== TEST 8: unwanted error-log line present
--- config
    location /s { root html; }
--- request
GET /s/nope
--- error_code: 404
--- no_error_log
No such file or directory

=== TEST 9: client timeout without --- abort
--- config
    location = /hang { proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT; }
--- request
GET /hang
--- timeout: 300ms
--- ignore_response

=== TEST 10: nginx fails to start
--- config
    bogus_directive on;
--- request
GET /t

=== TEST 11: unsupported upstream section
--- config
    location = /t { return 200; }
--- request
GET /t
--- grep_error_log: foo
--- grep_error_log_out
foo

=== TEST 12: the other pattern checks
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- error_code_like: ^5
--- raw_response_headers_like: X-Nope
--- raw_response_headers_unlike: Content-Length
--- response_body_unlike: ok

=== TEST 13: recovers after failures (and warns about a typo)
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- reponse_body
not checked
_EOT_

isnt($code, 0, "nested fail.t exits non-zero");

my @expect = (
    [ 'ok',     'TEST 1: passes - status code ok' ],
    [ 'ok',     'TEST 1: passes - response_body - response is expected' ],
    [ 'not ok', 'TEST 2: wrong status - status code ok' ],
    [ 'ok',     'TEST 3: wrong body - status code ok' ],
    [ 'not ok', 'TEST 3: wrong body - response_body - response is expected' ],
    [ 'not ok', 'TEST 4: wrong body pattern - response_body_like' ],
    [ 'not ok', 'TEST 5: wrong headers - header X-A ok' ],
    [ 'not ok', 'TEST 5: wrong headers - header X-B not present' ],
    [ 'not ok', 'TEST 6: wrong header pattern - header X-A like ok' ],
    [ 'not ok', 'TEST 7: expected error-log line missing - pattern "this line is never logged" should match' ],
    [ 'ok',     'TEST 8: unwanted error-log line present - status code ok' ],
    [ 'not ok', 'TEST 8: unwanted error-log line present - pattern "No such file or directory" should not match' ],
    [ 'not ok', 'ERROR: client socket timed out - ' ],
    [ 'not ok', 'TEST 10: nginx fails to start - nginx started' ],
    [ 'not ok', 'TEST 11: unsupported upstream section - section "--- grep_error_log" is not supported' ],
    [ 'not ok', 'TEST 12: the other pattern checks - status code ok' ],
    [ 'not ok', 'TEST 12: the other pattern checks - raw resp headers like' ],
    [ 'not ok', 'TEST 12: the other pattern checks - raw resp headers unlike' ],
    [ 'not ok', 'TEST 12: the other pattern checks - response_body_unlike' ],
    [ 'ok',     'TEST 13: recovers after failures (and warns about a typo) - status code ok' ],
);
for my $e (@expect) {
    my ($status, $what) = @$e;
    like($stdout, qr/^\Q$status\E \d+ - .*\Q$what\E/m,
         "nested fail.t: $status - $what");
}
my $not_ok = () = $stdout =~ /^not ok /mg;
is($not_ok, grep({ $_->[0] eq 'not ok' } @expect),
   "nested fail.t: no other failures")
    or diag $stdout;

# the diagnostics say what was expected and what was got
like($stderr, qr/got: '200'\n#\s+expected: '201'/, "status mismatch diag");
like($stderr, qr/^#\s+-line two\n#\s+\+line 2$/m, "body mismatch shows a diff");
like($stderr, qr/unknown directive "bogus_directive"/,
     "nginx start failure shows nginx's stderr");
like($stderr, qr/unknown section "--- reponse_body"/,
     "unknown sections are warned about");
like($stderr, qr/No such file or directory/,
     "unwanted error-log line is shown");
ok(!nested_nginx_running(), "nested fail.t left no nginx running");

# A crash the client cannot see, an [alert] and a late log line each fail
# the block that caused them.  The "crash" is a SIGABRT/SIGSEGV sent by a
# helper process once nginx has logged the request, i.e. after the
# response; the [crit] and late lines are appended by a helper too.
my $later = <<'_EOT_';
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw( sleep time );
use Test::Nginx::Socket 'no_plan';

# In a child: once $pattern is in access.log (the response went out),
# wait $delay, then send $sig to nginx's single process or to a worker;
# or append $line to error.log.
sub later {
    my (%a) = @_;
    my $master = Test::Nginx::Util::nginx_pid() or die "no nginx";
    my $root = server_root();
    defined(my $pid = fork) or die "fork: $!";
    return if $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        open my $in, '<', "$root/logs/access.log" or next;
        last if grep { /\Q$a{after}\E/ } <$in>;
        sleep 0.01;
    }
    sleep $a{delay} // 0;
    if ($a{sig}) {
        my $target = $master;
        if ($a{worker}) {
            for my $st (glob '/proc/[0-9]*/stat') {
                open my $in, '<', $st or next;
                my ($p, $pp) = (<$in> // '') =~ /^(\d+) \(.*\) \S (\d+)/s;
                $target = $p, last if defined $pp && $pp == $master;
            }
        }
        kill $a{sig}, $target;
    }
    if ($a{line}) {
        open my $out, '>>', "$root/logs/error.log";
        print $out "2026/01/01 00:00:00 $a{line}\n";
    }
    POSIX::_exit(0);
}
_EOT_

($code, $stdout, $stderr) = run_nested('crash.t', $later . <<'_EOT_');
# A line logged after the end-of-block check of TEST 5 (deterministically:
# between that block and the next one).
add_test_cleanup_handler(sub {
    return if $_[0]->name !~ /TEST 5:/;
    open my $out, '>>', server_root() . '/logs/error.log' or die $!;
    print $out "2026/01/01 00:00:00 [error] late line\n";
});
no_shuffle();
log_level('info');
run_tests();

__DATA__

=== TEST 1: nginx (no master) dies after the response
--- config
    location = /t { return 200 "ok\n"; }
--- init
main::later(after => 'GET /t', sig => 'ABRT');
--- request
GET /t
--- response_body
ok

=== TEST 3: a [crit] line fails the block
--- config
    location = /t3 { return 200 "ok\n"; }
--- init
main::later(after => 'GET /t3', line => '[crit] planted critical line');
--- request
GET /t3
--- wait: 0.3
--- response_body
ok

=== TEST 4: an [alert] the block expects is allowed
--- config
    location = /t4 { return 200 "ok\n"; }
--- init
main::later(after => 'GET /t4', line => '[alert] expected alert line');
--- request
GET /t4
--- response_body
ok
--- error_log
expected alert line

=== TEST 5: --- no_error_log also sees lines logged after the check
--- config
    location = /t5 { return 200 "ok\n"; }
--- init
--- request
GET /t5
--- response_body
ok
--- no_error_log
late line

=== TEST 6: next block, so that TEST 5's late line is looked at
--- config
    location = /t6 { return 200 "ok\n"; }
--- request
GET /t6
--- response_body
ok

=== TEST 7: a HEAD response with a body fails
--- config
    location = /t7 { return 200 "ok\n"; }
--- raw_request eval
"HEAD /t7 HTTP/1.1\r\nHost: localhost\r\n\r\n"
. "GET /t7 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
_EOT_

isnt($code, 0, "nested crash.t exits non-zero");
@expect = (
    [ 'ok',     'TEST 1: nginx (no master) dies after the response - status code ok' ],
    [ 'not ok', 'TEST 1: nginx (no master) dies after the response - nginx was still running at the end of the block (it had exited: killed by signal 6' ],
    [ 'not ok', 'TEST 3: a [crit] line fails the block - error.log has no crash or [alert]/[crit]/[emerg] line: 2026/01/01 00:00:00 [crit] planted critical line' ],
    [ 'ok',     'TEST 4: an [alert] the block expects is allowed - pattern "expected alert line" matches' ],
    [ 'ok',     'TEST 5: --- no_error_log also sees lines logged after the check - pattern "late line" does not match' ],
    [ 'not ok', 'TEST 5: --- no_error_log also sees lines logged after the check - pattern "late line" should not match any line in error.log but matches line "2026/01/01 00:00:00 [error] late line" (logged after the end of the block)' ],
    [ 'ok',     'TEST 6: next block, so that TEST 5\'s late line is looked at - status code ok' ],
    [ 'not ok', 'TEST 7: a HEAD response with a body fails - no bytes after the response body' ],
);
for my $e (@expect) {
    my ($status, $what) = @$e;
    like($stdout, qr/^\Q$status\E \d+ - .*\Q$what\E/m,
         "nested crash.t: $status - $what");
}
$not_ok = () = $stdout =~ /^not ok /mg;
is($not_ok, grep({ $_->[0] eq 'not ok' } @expect),
   "nested crash.t: no other failures")
    or diag $stdout;
ok(!nested_nginx_running(), "nested crash.t left no nginx running");

# With a master process: a worker that dies after the response.
($code, $stdout, $stderr) = run_nested('worker.t', $later . <<'_EOT_');
master_on();
run_tests();

__DATA__

=== TEST 1: a worker dies after the response
--- config
    location = /t { return 200 "ok\n"; }
--- init
main::later(after => 'GET /t', sig => 'SEGV', worker => 1);
--- request
GET /t
--- wait: 0.3
--- response_body
ok
_EOT_

isnt($code, 0, "nested worker.t exits non-zero");
# SIGSEGV is the signal sent; an nginx built with ASan (make
# test-nginx-matrix) turns it into an abort, so the master logs signal 6.
like($stdout, qr/^not ok \d+ - .*TEST 1: a worker dies after the response - error.log has no crash or \[alert\]\/\[crit\]\/\[emerg\] line: .*worker process \d+ exited on signal (?:11|6)\b/m,
     "nested worker.t: the dead worker's line fails the block")
    or diag $stdout;
is(scalar(() = $stdout =~ /^not ok /mg), 1, "nested worker.t: no other failures")
    or diag $stdout;
ok(!nested_nginx_running(), "nested worker.t left no nginx running");

($code, $stdout, $stderr) = run_nested('only.t', <<'_EOT_');
use strict;
use warnings;
use Test::Nginx::Socket;

repeat_each(2);
no_long_string();
plan tests => repeat_each() * 2;
run_tests();

__DATA__

=== TEST 1: would fail if run
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- error_code: 599

=== TEST 2: the only one
--- ONLY
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- response_body chomp
ok
_EOT_

is($code, 0, "nested only.t passes") or diag "$stdout\n$stderr";
like($stdout, qr/^1\.\.4$/m, "nested only.t: plan tests => N");
is(scalar(() = $stdout =~ /^ok \d+ - .*TEST 2: the only one/mg), 4,
   "nested only.t: --- ONLY runs just that block, repeat_each(2) times");
ok(!nested_nginx_running(), "nested only.t left no nginx running");

# Two runs must never share a server root: while the lock on it is held
# (here by us), a run falls back to a private one and removes it after.
{
    open my $lock, '>>', "$tmp/servroot/.lock" or die $!;
    flock($lock, LOCK_EX | LOCK_NB) or die "cannot lock: $!";
    my $only = do { open my $in, '<', "$tmp/only.t" or die $!; local $/; <$in> };
    ($code, $stdout, $stderr) = run_nested('only.t', $only);
    close $lock;
}
is($code, 0, "nested only.t passes while its server root is busy")
    or diag "$stdout\n$stderr";
like($stderr, qr/\Q$tmp\E\/servroot is in use by another test run; using /,
     "it says it uses a private server root");
is_deeply([glob "$tmp/servroot-*"], [], "and removes it afterwards");
ok(!nested_nginx_running(), "and left no nginx running");

__DATA__

=== TEST 1: return, add_header, response_headers (value and absence)
--- config
    location = /hi {
        add_header X-Foo "bar baz";
        return 200 "hi";
    }
--- request
GET /hi
--- error_code: 200
--- response_body chomp
hi
--- response_headers
X-Foo: bar baz
Content-Length: 2
!X-Absent
--- no_error_log
[error]

=== TEST 2: pattern checks
--- config
    location = /hi {
        add_header X-Foo "bar-123";
        return 200 "hello, world\n";
    }
--- request
GET /hi
--- error_code_like: ^2\d\d$
--- response_headers_like
X-Foo: bar-\d+
Content-Type: text/plain
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n
--- raw_response_headers_unlike: Transfer-Encoding
--- response_body_like: ^hello, w.rld$

=== TEST 3: response_body_unlike
--- config
    location = /hi { return 200 "hello\n"; }
--- response_body_unlike: ^bye

=== TEST 4: user_files, root html, $TEST_NGINX_HTML_DIR
--- config
    location /s { root html; }
    location /h/ { alias $TEST_NGINX_HTML_DIR/s/; }
--- user_files
>>> s/hello.txt
hello from a user file
>>> s/deep/er.txt
deeper
--- request eval
["GET /s/hello.txt", "GET /h/deep/er.txt"]
--- response_body eval
["hello from a user file\n", "deeper\n"]

=== TEST 5: missing file -> 404 and an [error] line
--- config
    location /s { root html; }
--- request
GET /s/missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
open() "
No such file or directory

=== TEST 6: error_log / no_error_log eval: strings and qr//
--- config
    location /s { root html; }
--- request
GET /s/missing.txt
--- error_code: 404
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ open\(\) ".*missing\.txt" failed/,
 "(2: No such file or directory)"]
--- no_error_log eval
[qr/\[alert\]/, "[emerg]"]

=== TEST 7: --- log_level overrides log_level()
--- config
    location /s { root html; }
--- log_level: crit
--- request
GET /s/missing.txt
--- error_code: 404
--- no_error_log
No such file or directory

=== TEST 8: more_headers eval with odd bytes in the value
--- config
    location = /hi {
        add_header X-Echo "[$http_x_foo]";
        return 200 "hi";
    }
--- request
GET /hi
--- more_headers eval
"X-Foo: a\tb\x0bc\x0cd\xe9\nX-Other: 1"
--- response_headers eval
"X-Echo: [a\tb\x0bc\x0cd\xe9]"

=== TEST 9: request body gets a Content-Length, trimmed as upstream
--- config
    location = /len { return 200 "len=$content_length method=$request_method"; }
--- request
POST /len
hello world
--- response_body chomp
len=11 method=POST

=== TEST 10: comments before the request line; HTTP/1.0 (no chunking)
--- config
    location = /hi { return 200 "hi via $server_protocol"; }
--- request
# a comment line
GET /hi HTTP/1.0
--- response_body chomp
hi via HTTP/1.0
--- response_headers
!Transfer-Encoding

=== TEST 11: raw_request in packets, with a delay between them
--- config
    location = /hi { return 200 "hi"; }
--- raw_request eval
["GET /hi HTTP/1.1\r\nHost: loc",
 "alhost\r\nConnection: close\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body chomp
hi

=== TEST 12: raw_request with an invalid request line
--- config
--- raw_request eval
"G\x01T / HTTP/1.1\r\n\r\n"
--- error_code: 400
--- error_log
client sent invalid method

=== TEST 13: chunked response (SSI drops the Content-Length)
--- config
    location /ssi/ { ssi on; ssi_types text/plain; root html; }
--- user_files
>>> ssi/page.txt
A<!--# echo var="uri" -->B
--- request
GET /ssi/page.txt
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
A/ssi/page.txtB

=== TEST 14: HEAD: headers only
--- config
    location = /hi { return 200 "hi"; }
--- request
HEAD /hi
--- response_headers
Content-Length: 2
--- response_body chomp

=== TEST 15: several requests in one block
--- config
    location = /hi { return 200 "hi"; }
--- request eval
["GET /hi", "GET /nope"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^hi\$", "404 Not Found"]

=== TEST 16: client abort: --- timeout + --- abort + --- wait
--- config
    location = /hang {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT;
        proxy_read_timeout 10s;
    }
--- request
GET /hang
--- timeout: 300ms
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection

=== TEST 17: --- timeout with a unit
--- config
    location = /hi { return 200 "hi"; }
--- timeout: 2s
--- response_body chomp
hi

=== TEST 18: --- init runs Perl code before the requests
--- config
    location = /init.txt { root html; }
--- init
open my $fh, '>', html_dir() . '/init.txt' or die $!;
print $fh "written by init\n";
close $fh;
--- request
GET /init.txt
--- response_body
written by init

=== TEST 19: http_config, main_config, post_main_config, server_name
--- main_config
worker_rlimit_nofile 4096;
--- http_config
    map $uri $mapped { default "mapped:$uri"; }
--- post_main_config
pcre_jit on;
--- server_name: example.com
--- config
    location = /hi { return 200 "$mapped on $server_name"; }
--- response_body chomp
mapped:/hi on example.com

=== TEST 20: TEST_NGINX_LOAD_MODULES and $TEST_NGINX_RAND_PORT_N
The stream module relays /stream's proxied request back to /hi.
--- skip_eval: 3: !$main::HaveStream
--- main_config
stream {
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        proxy_pass 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
}
--- config
    location = /stream { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/hi; }
    location = /hi { return 200 "hi from $request_uri via $http_x_hop"; }
--- request
GET /stream
--- more_headers
X-Hop: stream
--- response_body chomp
hi from /hi via stream
--- no_error_log
[error]

=== TEST 21: --- skip_eval skips when its code is true
--- skip_eval: 2: 1
--- config
    location = /hi { return 200 "hi"; }
--- error_code: 599
--- response_body chomp
not hi

=== TEST 22: --- skip_nginx: not skipped
--- skip_nginx: 2: < 1.0.0
--- config
    location = /hi { return 200 "hi"; }
--- response_body chomp
hi

=== TEST 23: --- skip_nginx: skipped
--- skip_nginx: 2: >= 1.0.0
--- config
    location = /hi { return 200 "hi"; }
--- error_code: 599
--- response_body chomp
not hi

=== TEST 24: --- SKIP drops a block
--- SKIP
--- config
    location = /hi { return 200 "hi"; }
--- error_code: 599

=== TEST 25: config_preamble() goes into the server block
--- config
--- request
GET /preamble
--- response_body chomp
from the preamble

=== TEST 26: the block preprocessor supplied the request
--- config
    location = /hi { return 200 "hi from the preprocessor's request"; }
--- response_body chomp
hi from the preprocessor's request
