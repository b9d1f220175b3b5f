package Test::Nginx::Socket;

# Our own small Test::Nginx::Socket: the subset of openresty's
# Test::Nginx::Socket block format that this project uses, with upstream's
# module name, functions, section names and meanings, so that every .t file
# written for it also runs under the real thing.  Test::Base (Debian:
# libtest-base-perl) parses the blocks and runs the section filters.
#
#   use Test::Nginx::Socket 'no_plan';     # or: plan tests => N;
#   repeat_each(2); no_shuffle(); run_tests();
#   __DATA__
#   === TEST 1: ...
#   --- config
#   --- request
#   ...
#
# See the POD at the end of this file for the supported sections.

use strict;
use warnings;

use Test::Base -base;       # -base, not -Base: no Spiffy source filter
use Test::Nginx::Util;

use IO::Select ();
use IO::Socket::INET ();
use List::Util qw( shuffle );
use POSIX qw( EAGAIN EINTR EWOULDBLOCK );
use Time::HiRes qw( sleep time );

# Spiffy exports these to the .t file together with Test::Base's @EXPORT
# (plan, blocks, is, ok, diag, ...).
our @EXPORT = (qw( run_tests run_test ), @Test::Nginx::Util::EXPORT);

# ----------------------------------------------------------------------
# Sections.

my %Supported = map { $_ => 1 } qw(
    main_config http_config config post_main_config server_name
    user_files init
    request raw_request raw_request_middle_delay more_headers
    error_code error_code_like
    response_body response_body_like response_body_unlike
    response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike
    error_log no_error_log error_log_allow log_level
    timeout wait abort ignore_response
    skip_eval skip_nginx
    ONLY SKIP LAST
    no_check_leak no_mockeagain
);

# Upstream sections we do not implement.  Ignoring them silently would
# turn their checks into false passes, so a block using one fails instead.
my %Unsupported = map { $_ => 1 } qw(
    access_log no_access_log grep_error_log grep_error_log_out
    shutdown_error_log no_shutdown_error_log
    pipelined_requests request_eval response_body_eval
    response_body_filters response_body_json_sort write_resp_body_file
    tcp_listen tcp_reply tcp_reply_delay tcp_query tcp_query_len
    tcp_shutdown tcp_shutdown_delay tcp_no_close tcp_query_auto_timeout
    udp_listen udp_reply udp_reply_delay udp_query
    stap stap_out stap_out_like stap_out_unlike
    curl curl_error curl_options http2 http3 http09 charset
    must_die reload_fails shutdown server_addr_for_client error_log_file
    post_setup_server_root suppress_stderr
    todo todo_nginx skip_nginx2 skip_openssl skip_slave
);

our %WarnedUnknown;

sub tb () { Test::Builder->new }

sub section_names ($) {
    my $block = shift;
    my $order = $block->_section_order;
    return ref $order eq 'ARRAY' ? @$order : ();
}

# Returns an error message if the block cannot be run faithfully.
sub check_sections ($) {
    my $block = shift;

    for my $sec (section_names($block)) {
        if ($Unsupported{$sec}) {
            return "section \"--- $sec\" is not supported by this "
                   . "Test::Nginx::Socket (t/lib); see its POD";
        }
        if (!$Supported{$sec} && !$WarnedUnknown{$sec}++) {
            tb->diag("WARNING: unknown section \"--- $sec\" ignored "
                     . "(in " . $block->name . ")");
        }
    }

    # Upstream silently ignores the second section of these pairs.
    if (defined $block->response_body
        && (defined $block->response_body_like
            || defined $block->response_body_unlike))
    {
        return "--- response_body and --- response_body_like/unlike in one "
               . "block: upstream checks only response_body; split the block";
    }
    if (defined $block->response_headers
        && defined $block->response_headers_like)
    {
        return "--- response_headers and --- response_headers_like in one "
               . "block: upstream checks only response_headers; split the "
               . "block";
    }
    if (defined $block->raw_request && defined $block->request) {
        return "both --- raw_request and --- request given";
    }
    if (!defined $block->raw_request && !defined $block->request) {
        return "no --- request or --- raw_request section";
    }
    return undef;
}

# ----------------------------------------------------------------------
# The run loop.

sub run_tests () {
    # stop nginx when the run is interrupted
    local $SIG{INT}  = sub { Test::Nginx::Util::cleanup(); exit 130 };
    local $SIG{TERM} = sub { Test::Nginx::Util::cleanup(); exit 143 };
    local $SIG{PIPE} = 'IGNORE';

    my @blocks = Test::Base::blocks();
    if (!$Test::Nginx::Util::NoShuffle) {
        @blocks = shuffle @blocks;
    }

    for my $block (@blocks) {
        $_->($block) for @Test::Nginx::Util::BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $_->($block) for @Test::Nginx::Util::TestCleanupHandlers;
    }

    Test::Nginx::Util::cleanup();
}

# "--- skip_eval: N: <perl>" and "--- skip_nginx: N: <op> x.y.z[: why]".
# Returns (number of tests to skip, reason) or () to run the block.
sub should_skip ($) {
    my $block = shift;
    my $name  = $block->name;

    if (defined(my $spec = $block->skip_eval)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- skip_eval spec: $spec");
        my ($n, $code) = ($1, $2);
        my ($err, $skip) = Test::Nginx::Util::eval_block_code($block, $code);
        bail_out("$name - skip_eval - failed to eval the Perl code "
                 . "\"$code\": $err") if $err;
        return ($n, 'skip_eval') if $skip;
    }

    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                  (?:\s*:\s*(.*?))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        my ($n, $op, $reason) = ($1, $2, $6);
        my $want = sprintf "%d.%03d%03d", $3, $4, $5;
        my $have = Test::Nginx::Util::get_nginx_version();
        my %cmp = ('<'  => $have <  $want, '<=' => $have <= $want,
                   '>'  => $have >  $want, '>=' => $have >= $want);
        return ($n, $reason || "nginx version $op $3.$4.$5") if $cmp{$op};
    }

    return ();
}

sub run_test ($) {
    my $block = shift;
    my $name  = $block->name;

    return if defined $block->SKIP;   # Test::Base drops these already

    if (defined(my $problem = check_sections($block))) {
        tb->ok(0, "$name - $problem");
        return;
    }

    my ($skip_n, $skip_reason) = should_skip($block);
    if (defined $skip_n) {
        # as upstream: N skips per repetition, and nginx is not started
        tb->skip("$name - $skip_reason") for 1 .. $skip_n * repeat_each();
        return;
    }

    # Upstream restarts nginx for every block (TEST_NGINX_FORCE_RESTART_ON_
    # TEST=0 turns that off); a block without "--- config" runs against the
    # nginx of the previous block.
    my $rand_ports = {};
    my $config = $block->config;
    my ($conf_text, $may_reuse);
    if (!defined $config && defined $Test::Nginx::Util::RunningConf) {
        $conf_text = $Test::Nginx::Util::RunningConf;
        $may_reuse = 1;
    } else {
        $config //= $Test::Nginx::Util::PrevConfig;
        if (!defined $config) {
            tb->ok(0, "$name - No '--- config' section specified and "
                      . "could not get previous one");
            return;
        }
        $Test::Nginx::Util::PrevConfig = $config;
        $conf_text = Test::Nginx::Util::gen_config_text(
            $block, expand_env_in_text($config, $name, $rand_ports),
            $rand_ports);
        $may_reuse = !$Test::Nginx::Util::ForceRestartOnTest;
    }

    my $err = Test::Nginx::Util::ensure_nginx($block, $conf_text,
                                              $rand_ports, $may_reuse);
    if (defined $err) {
        tb->ok(0, "$name - nginx started");
        tb->diag($err);
        return;
    }
    $Test::Nginx::Util::BlockName = $name;
    $Test::Nginx::Util::AllowedBadLines = allowed_bad_lines($block);

    if (defined(my $code = $block->init)) {
        my ($init_err) = Test::Nginx::Util::eval_block_code($block, $code);
        if ($init_err) {
            tb->ok(0, "$name - --- init ran");
            tb->diag("init failed: $init_err");
            return;
        }
    }

    my $reqs = get_requests($block, $rand_ports);
    if (!ref $reqs) {
        tb->ok(0, "$name - $reqs");
        return;
    }
    if (@$reqs > 1) {
        # several requests: every expectation must be one per request
        for my $sec (qw( error_code error_code_like response_body
                         response_body_like response_body_unlike
                         response_headers response_headers_like
                         raw_response_headers_like
                         raw_response_headers_unlike ))
        {
            my $v = $block->$sec;
            next if !defined $v || ref $v eq 'ARRAY';
            tb->ok(0, "$name - You asked for many requests, the expected "
                      . "results should be arrays as well (--- $sec)");
            return;
        }
    }

    my $timeout = parse_time(scalar $block->timeout) // timeout();
    for my $rep (0 .. repeat_each() - 1) {
        run_requests($block, $reqs, $rep, $timeout);
    }
    check_end_of_block($block);
}

sub run_requests ($$$$) {
    my ($block, $reqs, $rep, $timeout) = @_;
    my $name = $block->name;
    my $need_array = @$reqs > 1;
    my $wait = parse_time(scalar $block->wait);

    for my $i (0 .. $#$reqs) {
        my $req = $reqs->[$i];
        my ($raw, $timed_out) = send_request($block, $req, $timeout);

        if ($timed_out && !defined $block->abort) {
            tb->ok(0, "ERROR: client socket timed out - $name");
        }

        if (!defined $block->ignore_response) {
            my $res = parse_response($name, $raw, $req->{head});
            check_error_code($block, $res, $i, $need_array);
            check_raw_response_headers($block, $res, $i, $need_array);
            check_response_headers($block, $res, $i, $need_array);
            check_response_body($block, $res, $i, $rep, $need_array);
        }

        # as upstream: with several requests the error log is checked
        # after each of them
        if ($i < $#$reqs) {
            sleep $wait if $wait;
            check_error_log($block, $rep);
        }
    }

    sleep $wait if $wait;
    check_error_log($block, $rep);
}

# ----------------------------------------------------------------------
# Building requests.

# Returns an array ref of requests { packets => [...], head => bool,
# middle_delay => secs }, or an error message.
sub get_requests ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        my @packets = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        return "--- raw_request must be a string or an array of strings"
            if grep { !defined || ref } @packets;
        @packets = map { expand_in_request($name, $_, $rand_ports) } @packets;
        return [{
            packets      => \@packets,
            head         => (join('', @packets) =~ /^\s*HEAD\s+/ ? 1 : 0),
            middle_delay =>
                parse_time(scalar $block->raw_request_middle_delay),
        }];
    }

    my $request = $block->request;
    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    return "--- request must be a string or an array of strings (request "
           . "packets are not supported)"
        if (ref $request && ref $request ne 'ARRAY') || grep { ref } @list;

    my $more = $block->more_headers // '';
    my @reqs;
    for my $i (0 .. $#list) {
        my $hdrs = ref $more eq 'ARRAY' ? $more->[$i] : $more;
        return "--- more_headers lacks data for request $i" if !defined $hdrs;
        my $req = build_request($name, $list[$i], $hdrs, $rand_ports);
        return $req if !ref $req;
        push @reqs, $req;
    }
    return \@reqs;
}

# Upstream expands $TEST_NGINX_* only in the server side sections; we also
# do it in requests, but say so, as such a .t is not portable.
sub expand_in_request ($$$) {
    my ($name, $text, $rand_ports) = @_;
    my $expanded = expand_env_in_text($text, $name, $rand_ports);
    if ($expanded ne $text) {
        Test::Nginx::Util::note_non_portable($name,
            "\$TEST_NGINX_* in --- request/more_headers/raw_request is "
            . "expanded only by this harness; use \"--- request eval\" "
            . "with \$ENV{...}");
    }
    return $expanded;
}

# "--- request": first line "METHOD [/uri [HTTP/x.y]]" (after leading blank
# and #comment lines), the rest is the body, sent with a computed
# Content-Length and with surrounding whitespace trimmed, as upstream does.
sub build_request ($$$$) {
    my ($name, $request, $more_headers, $rand_ports) = @_;

    $request = expand_in_request($name, $request, $rand_ports);
    $more_headers = expand_in_request($name, $more_headers, $rand_ports);

    1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//s;

    my ($first, $content) = split /\n/, $request, 2;
    $first //= '';
    $content //= '';
    $first =~ /^\s*(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?\s*$/
        or return "Request line is not valid. Should be 'meth [url "
                  . "[version]]' but got \"$first\".";
    my ($method, $url, $http_ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my ($headers, $is_chunked) = parse_more_headers($more_headers);

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $headers !~ /(?:^|\n)Content-Length:/)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    my $auto = '';
    $auto .= "Host: " . server_name() . "\r\n"
        if $headers !~ /(?:^|\n)Host:/msi;
    $auto .= "Connection: close\r\n"
        if $headers !~ /(?:^|\n)Connection/msi;

    return {
        packets => ["$method $url $http_ver\r\n$auto$headers$len_header\r\n"
                    . $content],
        head    => $method eq 'HEAD' ? 1 : 0,
    };
}

# "Name: value" lines -> "Name: value\r\n" ...; "#" lines are comments.
# As upstream, whitespace right after the colon is dropped (so a value
# cannot *start* with a tab; put such bytes in the middle or use
# --- raw_request).
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1
            if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# ----------------------------------------------------------------------
# Talking to nginx.

# Sends one request and reads until the server closes the connection.
# Returns (raw response, timed out?).  $timeout bounds the whole exchange.
sub send_request ($$$) {
    my ($block, $req, $timeout) = @_;
    my $name = $block->name;
    my $deadline = time + $timeout;
    my $port = server_port_for_client();
    my $addr = server_addr();

    my $sock;
    for (my $try = 1; ; $try++) {
        $sock = IO::Socket::INET->new(
            PeerAddr => $addr,
            PeerPort => $port,
            Proto    => 'tcp',
            Timeout  => $timeout,
        );
        last if $sock;
        if ($try >= 20 || time >= $deadline) {
            tb->ok(0, "$name - Can't connect to $addr:$port: $!");
            my $pid = Test::Nginx::Util::nginx_pid();
            tb->diag($pid ? "nginx $pid is running\n" : "nginx is not running\n",
                     Test::Nginx::Util::error_log_tail());
            return ('', 0);
        }
        sleep 0.05;   # nginx may still be starting its workers
    }
    $sock->blocking(0);
    binmode $sock;

    my @packets = @{ $req->{packets} };
    my $wbuf = shift(@packets) // '';
    my $next_write = 0;        # when the next packet may go out
    my $writing = 1;
    my $resp = '';
    my $timed_out = 0;

    while (1) {
        my $now = time;
        if ($now >= $deadline) {
            $timed_out = 1;
            last;
        }
        my $wait = $deadline - $now;
        my $wsel;
        if ($writing) {
            if ($now >= $next_write) {
                $wsel = IO::Select->new($sock);
            } elsif ($next_write - $now < $wait) {
                $wait = $next_write - $now;
            }
        }

        my ($r, $w) = IO::Select->select(IO::Select->new($sock), $wsel,
                                         undef, $wait);

        if ($w && @$w) {
            my $n = syswrite $sock, $wbuf;
            if (defined $n) {
                substr($wbuf, 0, $n) = '';
                if ($wbuf eq '') {
                    if (@packets) {
                        $wbuf = shift @packets;
                        $next_write = time + ($req->{middle_delay} || 0);
                    } else {
                        $writing = 0;
                    }
                }
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                # nginx may answer and close before reading everything
                warn "WARNING: $name - write failed: $!\n" if $resp eq '';
                $writing = 0;
            }
        }

        if ($r && @$r) {
            my $n = sysread $sock, my $buf, 65536;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n";
                last;
            }
            last if $n == 0;
            $resp .= $buf;
        }
    }

    close $sock;
    return ($resp, $timed_out);
}

# Parses a raw HTTP/1.x response by hand.  Returns a hash ref: code,
# raw_headers (status line + header lines, as upstream), headers ([name,
# value] pairs), body (de-chunked), raw (everything received).
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my %res = (raw => $raw, code => undef, headers => [], body => '',
               raw_headers => '');

    $res{raw_headers} = $1 if $raw =~ /\A(.*?\r\n)\r\n/s;

    my ($head, $body);
    if ($raw =~ /\A(.*?)\r?\n\r?\n(.*)\z/s) {
        ($head, $body) = ($1, $2);
    } else {
        ($head, $body) = ($raw, '');
    }

    my @lines = split /\r?\n/, $head;
    my $status = shift(@lines) // '';
    $res{code} = $1 if $status =~ m{^HTTP/\d+\.\d+[ \t]+(\d{3})\b};

    for my $line (@lines) {
        if ($line =~ /^[ \t]+(.*)/ && @{ $res{headers} }) {
            $res{headers}[-1][1] .= " $1";        # obsolete line folding
        } elsif ($line =~ /^([^:\s]+)[ \t]*:[ \t]*(.*?)[ \t]*$/) {
            push @{ $res{headers} }, [$1, $2];
        }
    }

    my $code = $res{code} // 0;
    my $te  = resp_header(\%res, 'Transfer-Encoding');
    my $len = resp_header(\%res, 'Content-Length');
    my $left = '';

    if ($head_req || $code =~ /^1/ || $code == 204 || $code == 304) {
        $left = $body;
        $body = '';
    } elsif (defined $te && $te =~ /\bchunked\b/i) {
        my ($decoded, $rest, $err) = dechunk($body);
        if (defined $err) {
            tb->ok(0, "$name - invalid chunked body received: $err");
            $decoded //= '';
        }
        ($body, $left) = ($decoded, $rest // '');
    } elsif (defined $len && $len =~ /^\s*(\d+)\s*$/) {
        if (length $body < $1) {
            tb->ok(0, "$name - response body complete: $1 bytes "
                      . "expected, but got " . length($body));
        } else {
            $left = substr $body, $1;
            $body = substr $body, 0, $1;
        }
    }

    if ($left ne '') {
        (my $shown = $left) =~
            s/([\0-\037\177-\377])/sprintf '\\x%02x', ord $1/ge;
        $shown = substr($shown, 0, 200) . '...' if length $shown > 200;
        tb->ok(0, "$name - no bytes after the response body (got "
                  . "\"$shown\")");
    }

    $res{body} = $body;
    return \%res;
}

# Returns (decoded body, bytes after the last chunk, error or undef).
sub dechunk ($) {
    my $raw = shift;
    my $out = '';
    pos($raw) = 0;
    while (1) {
        if ($raw !~ /\G[ \t]*([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
            my $at = substr $raw, pos($raw) // 0, 40;
            return ($out, undef, pos($raw) >= length $raw
                                 ? "no last chunk found"
                                 : "bad chunk size line near \"$at\"");
        }
        my $size = hex $1;
        if ($size == 0) {
            # trailer fields, then the final CRLF
            while ($raw =~ /\G([^\r\n]+)\r\n/gc) { }
            $raw =~ /\G\r\n/gc
                or return ($out, undef, "no CRLF after the last chunk");
            return ($out, substr($raw, pos $raw), undef);
        }
        my $p = pos $raw;
        return ($out, undef, "not enough octets for the data section")
            if length($raw) < $p + $size + 2;
        $out .= substr $raw, $p, $size;
        return ($out, undef, "no CRLF after a chunk's data")
            if substr($raw, $p + $size, 2) ne "\r\n";
        pos($raw) = $p + $size + 2;
    }
}

# Like HTTP::Headers->header in scalar context: all values of a field
# (case-insensitive name), joined with ", "; undef if absent.
sub resp_header ($$) {
    my ($res, $key) = @_;
    my @vals = map { $_->[1] }
               grep { lc $_->[0] eq lc $key } @{ $res->{headers} };
    return @vals ? join(', ', @vals) : undef;
}

# ----------------------------------------------------------------------
# Checks.  Test names follow upstream ("<file> TEST n: title - <check>").

sub get_indexed_value ($$$) {
    my ($value, $i, $need_array) = @_;
    return $value->[$need_array ? $i : 0] if ref $value eq 'ARRAY';
    return $value;
}

sub expand_server_port ($) {
    my $s = shift;
    return $s if !defined $s || ref $s;
    my ($port, $client_port) = (server_port(), server_port_for_client());
    $s =~ s/\$ServerPortForClient\b/$client_port/g;
    $s =~ s/\$ServerPort\b/$port/g;
    return $s;
}

# What we got, for failure diagnostics.
sub show_response ($) {
    my $res = shift;
    my $raw = $res->{raw};
    return "no response received (connection closed or reset?)"
        if $raw eq '';
    my $max = 1024;
    my $shown = length $raw > $max
                ? substr($raw, 0, $max) . "... (" . length($raw) . " bytes)"
                : $raw;
    $shown =~ s/\r\n/\n/g;
    return "response received:\n$shown";
}

sub check_error_code ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;
    my $got = $res->{code} // '';
    my $ok;

    if (defined $block->error_code_like) {
        my $pat = get_indexed_value(scalar $block->error_code_like, $i,
                                    $need_array);
        $ok = like($got, qr/$pat/sm, "$name - status code ok");
    } else {
        my $expected = $block->error_code;
        $expected = defined $expected
                    ? get_indexed_value($expected, $i, $need_array) : 200;
        if (!ref $expected && $expected =~ /^\s*(\d+)\s*$/
            && $expected ne $1)
        {
            # upstream compares "401\n" with "401" and fails
            Test::Nginx::Util::note_non_portable($name,
                "write \"--- error_code: N\" (or add the chomp filter)");
            $expected = $1;
        }
        $ok = is($got, $expected, "$name - status code ok");
    }
    tb->diag(show_response($res)) if !$ok;
}

sub check_raw_response_headers ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;
    if (defined(my $pat = $block->raw_response_headers_like)) {
        $pat = get_indexed_value($pat, $i, $need_array);
        like($res->{raw_headers}, qr/$pat/s, "$name - raw resp headers like");
    }
    if (defined(my $pat = $block->raw_response_headers_unlike)) {
        $pat = get_indexed_value($pat, $i, $need_array);
        unlike($res->{raw_headers}, qr/$pat/s,
               "$name - raw resp headers unlike");
    }
}

# "Name: value" per line; "!Name" means the header must be absent.  Later
# lines for the same name replace earlier ones (upstream uses a hash).
sub parse_headers ($) {
    my $s = shift;
    my (@order, %val);
    for my $line (split /\n/, $s // '') {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my ($key, $val);
        if ($line =~ s/^!\s*//) {
            $key = $line;
        } else {
            ($key, $val) = split /\s*:\s*/, $line, 2;
            $val //= '';
        }
        push @order, $key if !exists $val{$key};
        $val{$key} = $val;
    }
    return map { [$_, $val{$_}] } @order;
}

sub check_response_headers ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;

    if (defined(my $spec = $block->response_headers)) {
        for my $h (parse_headers(get_indexed_value($spec, $i, $need_array))) {
            my ($key, $val) = @$h;
            if (!defined $val) {
                # upstream matches the name case-sensitively; we do not
                unlike($res->{raw_headers}, qr/^\s*\Q$key\E\s*:/msi,
                       "$name - header $key not present in the raw headers");
                next;
            }
            is(resp_header($res, $key) // '', expand_server_port($val),
               "$name - header $key ok");
        }
    }

    if (defined(my $spec = $block->response_headers_like)) {
        for my $h (parse_headers(get_indexed_value($spec, $i, $need_array))) {
            my ($key, $val) = @$h;
            $val //= '';
            like(resp_header($res, $key) // '', qr/^$val$/,
                 "$name - header $key like ok");
        }
    }
}

sub check_response_body ($$$$$) {
    my ($block, $res, $i, $rep, $need_array) = @_;
    my $name = $block->name;
    my $content = $res->{body};

    if (defined $block->response_body) {
        my $expected = get_indexed_value(scalar $block->response_body, $i,
                                         $need_array);
        if (defined $expected && !ref $expected) {
            $expected = expand_env_in_text(expand_server_port($expected),
                                           $name, {});
        }
        my $desc = "$name - response_body - response is expected "
                   . "(repeated req $rep, req $i)";
        if (ref $expected) {
            like($content, $expected, $desc);
        } else {
            is_str($content, $expected, $desc);
        }
        return;
    }

    for my $type (qw( like unlike )) {
        my $pats = $type eq 'like' ? $block->response_body_like
                                   : $block->response_body_unlike;
        next if !defined $pats;
        my $pat = expand_server_port(
            get_indexed_value($pats, $i, $need_array));
        (my $summary = $content) =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        $summary = substr($summary, 0, 200) . '...' if length $summary > 200;
        my $desc = "$name - response_body_$type - response is expected "
                   . "($summary)";
        if ($type eq 'like') {
            like($content, qr/$pat/s, $desc);
        } else {
            unlike($content, qr/$pat/s, $desc);
        }
        last;   # upstream: response_body_like wins over _unlike
    }
}

# error_log / no_error_log patterns: a string is one substring per line;
# with "eval", a string, a qr// or an array ref of both.
sub log_patterns ($) {
    my $pats = shift;
    return () if !defined $pats;
    return ($pats) if ref $pats eq 'Regexp';
    return grep { defined } @$pats if ref $pats eq 'ARRAY';
    chomp(my $s = $pats);
    return split /\n+/, $s;
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub check_error_log ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my @want = log_patterns(scalar $block->error_log);
    my @deny = log_patterns(scalar $block->no_error_log);

    # nginx writes log lines synchronously, but lines from the log phase
    # or from timers may land just after the client saw the connection
    # close: give it a moment, and keep polling while an expected line is
    # missing.
    sleep Test::Nginx::Util::sleep_time() * 3;
    my $lines = Test::Nginx::Util::error_log_data();
    my $missing = sub {
        grep { my $p = $_; !grep { line_matches($_, $p) } @$lines } @want;
    };
    my $deadline = time + 1;
    while ($missing->() && time < $deadline) {
        sleep 0.05;
        my $more = Test::Nginx::Util::error_log_data();
        $lines = $Test::Nginx::Util::CheckAccumErrLog ? $more
                                                       : [@$lines, @$more];
    }

    for my $pat (@want) {
        if (grep { line_matches($_, $pat) } @$lines) {
            pass("$name - pattern \"$pat\" matches a line in error.log "
                 . "(req $rep)");
        } else {
            fail("$name - pattern \"$pat\" should match a line in error.log "
                 . "(req $rep)");
            my @tail = @$lines > 30 ? @$lines[-30 .. -1] : @$lines;
            tb->diag(@tail ? "error.log lines of this request"
                             . (@$lines > 30 ? " (last 30)" : "")
                             . ":\n" . join('', @tail)
                           : "no error.log lines for this request");
        }
    }

    for my $pat (@deny) {
        my $p = fmt_str($pat);
        my ($idx) = grep { line_matches($lines->[$_], $pat) } 0 .. $#$lines;
        if (defined $idx) {
            fail("$name - pattern \"$p\" should not match any line in "
                 . "error.log but matches line \"" . fmt_str($lines->[$idx])
                 . "\" (req $rep)");
            my $last = $idx + 10 < $#$lines ? $idx + 10 : $#$lines;
            tb->diag("following lines:\n", @$lines[$idx + 1 .. $last])
                if $idx < $last;
        } else {
            pass("$name - pattern \"$p\" does not match a line in error.log "
                 . "(req $rep)");
        }
    }

    # Unlike upstream (which warns): a dead worker, a failed assertion or
    # an [alert]/[crit]/[emerg] line fails the block, unless the block
    # expects that very line in --- error_log or --- error_log_allow.
    Test::Nginx::Util::scan_log_for_crashes($name);
}

# Patterns a block expects at [alert] or above: its --- error_log patterns
# and, not portable, its --- error_log_allow ones.  Returns a regex or undef.
sub allowed_bad_lines ($) {
    my $block = shift;
    my @pats = (log_patterns(scalar $block->error_log),
                log_patterns(scalar $block->error_log_allow));
    return undef if !@pats;
    if (defined $block->error_log_allow) {
        Test::Nginx::Util::note_non_portable($block->name,
            "--- error_log_allow is this harness's own section");
    }
    my $re = join '|', map { ref $_ ? "(?:$_)" : quotemeta $_ } @pats;
    return qr/$re/;
}

# After the block's last request: nginx must still be running (a crash
# after the response is invisible to the client), and --- no_error_log
# looks once more at what was logged since the last check.
sub check_end_of_block ($) {
    my $block = shift;
    my $name = $block->name;

    sleep Test::Nginx::Util::sleep_time() * 3;
    if (defined Test::Nginx::Util::reap_nginx()) {
        Test::Nginx::Util::stop_nginx();    # reports how it ended
        return;
    }
    my $deny = sub {
        my ($when) = @_;
        my $lines = Test::Nginx::Util::error_log_data();
        for my $pat (log_patterns(scalar $block->no_error_log)) {
            my ($line) = grep { line_matches($_, $pat) } @$lines;
            next if !defined $line;
            fail("$name - pattern \"" . fmt_str($pat) . "\" should not match "
                 . "any line in error.log but matches line \""
                 . fmt_str($line) . "\" ($when)");
        }
    };
    $deny->('end of the block');
    $Test::Nginx::Util::PendingEndCheck = sub {
        return if !Test::Nginx::Util::nginx_pid();
        $deny->('logged after the end of the block');
        Test::Nginx::Util::scan_log_for_crashes($name);
    };
    Test::Nginx::Util::scan_log_for_crashes($name);
}

1;

__END__

=head1 NAME

Test::Nginx::Socket - this project's small work-alike of openresty's
Test::Nginx::Socket

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';
    # or: use Test::Nginx::Socket; plan tests => repeat_each() * 3 * blocks();

    repeat_each(2);
    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hi\n"; }
    --- request
    GET /t
    --- response_body
    hi
    --- no_error_log
    [error]

=head1 DESCRIPTION

Same module name, functions, sections and meanings as upstream
(L<https://github.com/openresty/test-nginx>), for the subset listed here;
write .t files against upstream's documentation and they run under both.
Blocks are parsed by L<Test::Base>, so its filters (C<eval>, C<chomp>, ...)
and C<--- ONLY>, C<--- SKIP>, C<--- LAST> work as usual.

Functions: run_tests, repeat_each, no_shuffle, log_level, workers,
master_on, master_off, master_process_enabled, worker_connections,
no_long_string, no_root_location, timeout, server_port,
server_port_for_client, server_addr, server_name, server_root, html_dir,
config_preamble, env_to_nginx, check_accum_error_log,
add_block_preprocessor, add_cleanup_handler, add_test_cleanup_handler,
bail_out, is_str, expand_env_in_text, parse_time.

Sections: main_config, http_config, config, post_main_config, server_name,
user_files, init, request (string or array of strings), raw_request (string
or array of packets), raw_request_middle_delay, more_headers, error_code,
error_code_like, response_body, response_body_like, response_body_unlike,
response_headers, response_headers_like, raw_response_headers_like,
raw_response_headers_unlike, error_log, no_error_log, log_level, timeout,
wait, abort, ignore_response, skip_eval, skip_nginx; and this harness's own
error_log_allow (patterns of [alert]/[crit]/[emerg] lines a block expects
without requiring them; not portable).  A block using another upstream
section fails rather than silently skipping its check.

Environment: TEST_NGINX_BINARY, TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT
(default: a free random port), TEST_NGINX_CLIENT_PORT, TEST_NGINX_SERVROOT,
TEST_NGINX_LOAD_MODULES, TEST_NGINX_LOG_LEVEL, TEST_NGINX_MASTER_PROCESS,
TEST_NGINX_TIMEOUT, TEST_NGINX_NO_SHUFFLE, TEST_NGINX_NO_CLEAN,
TEST_NGINX_RANDOMIZE, TEST_NGINX_FORCE_RESTART_ON_TEST,
TEST_NGINX_CHECK_ACCUM_ERR_LOG, TEST_NGINX_WORKER_USER, TEST_NGINX_SLEEP,
TEST_NGINX_VERBOSE.

Lifecycle (as upstream, except that upstream stops nginx only at exit):
blocks run in random order unless no_shuffle();
nginx is restarted on a freshly wiped server root before every block
(TEST_NGINX_FORCE_RESTART_ON_TEST=0: only when the generated nginx.conf
changes); a block without C<--- config> reuses the previous block's nginx;
C<master_process> is off unless master_on(); nginx runs in the foreground
("daemon off") as the test's child, so its exit status is known; the
error-log checks of a block (of each repetition) see only the lines written
since the previous check; nginx is stopped (QUIT, then KILL) when
run_tests() ends, and from an END block if the test dies or gets
TERM/INT/HUP.

Checks every block gets, beyond its sections (each failure is one failed
test; nothing is added when all is well, so C<plan tests =E<gt> N> holds):
nginx must still be running after the block's last request and exit 0 on
QUIT (a crash after the response is invisible to the client); no line of
error.log may say a worker "exited on signal", an assertion failed, or be
at [alert], [crit] or [emerg] (upstream only warns), unless the block
expects it in C<--- error_log> or C<--- error_log_allow>; C<--- no_error_log>
looks once more at the end of the block and again just before the next
block starts; bytes after a response body (a HEAD answer with a body) and
a body shorter than its Content-Length fail.

=head1 WRITING PORTABLE TESTS

To keep a .t valid under the real Test::Nginx::Socket too:

=over

=item * Use only the functions and sections listed above, with upstream's
meanings: C<--- error_code: 401> on one line (a multi-line value keeps its
newline upstream), C<--- response_body chomp> when the body has no final
newline, C<--- response_body_like> is an unanchored regex (/s).

=item * Make each block self-contained: do not rely on the order of blocks
or on state (caches, files) left by an earlier block.

=item * Put C<$TEST_NGINX_*> only in main_config, http_config, config and
user_files; in a request use C<--- request eval> / C<--- more_headers eval>
with C<$ENV{TEST_NGINX_...}>.  Set C<$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();>
and any of your own C<TEST_NGINX_*> variables before run_tests().

=item * Code in C<--- init> and C<--- skip_eval> runs in package
Test::Nginx::Util: refer to your own subs and globals as C<main::...>.

=item * For a client abort use C<--- timeout>, C<--- abort> and
C<--- ignore_response> together.

=back

=head1 DIFFERENCES FROM UPSTREAM

Stricter (a .t that passes here passes upstream): C<--- timeout> bounds the
whole exchange rather than each I/O wait; C<!Name> in C<--- response_headers>
matches the name case-insensitively; a block using an upstream section we
do not implement, or a pair upstream would half-ignore (response_body with
response_body_like, response_headers with response_headers_like), fails.

Also stricter: the checks every block gets (see Lifecycle) fail where
upstream warns or does not look.

More lenient, each with a "not portable" diag note: C<$TEST_NGINX_*> is also
expanded in request, more_headers and raw_request; C<$TEST_NGINX_HTML_DIR>
works without being set; a multi-line C<--- error_code> is accepted.

Other: the port defaults to a free random one (upstream: 1984); a positive
C<--- error_log> pattern is polled for up to a second; a run locks its
server root and, if another run holds it, uses a private
C<< <servroot>-<port> >> instead (removed at the end if all passed).

=cut
