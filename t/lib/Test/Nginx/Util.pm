package Test::Nginx::Util;

# Test::Nginx::Util -- the nginx side of our Test::Nginx::Socket work-alike:
# global settings, the server root, nginx.conf generation, starting and
# stopping nginx, and reading the error log.
#
# This is our own small implementation of the subset of openresty's
# Test::Nginx we use (it is not packaged in Debian).  Names and semantics
# follow upstream so that our .t files run unchanged under the real
# Test::Nginx::Socket; see Test/Nginx/Socket.pm for the block format.

use strict;
use warnings;

use base 'Exporter';

use Errno qw( ESRCH );
use Fcntl qw( LOCK_EX LOCK_NB );
use File::Path qw( make_path remove_tree );
use File::Spec ();
use IO::Socket::INET ();
use POSIX qw( SIGQUIT SIGKILL WNOHANG );
use Test::Builder ();
use Test::LongString ();
use Test::More ();
use Time::HiRes qw( sleep time );

our @EXPORT = qw(
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    bail_out check_accum_error_log config_preamble env_to_nginx
    expand_env_in_text html_dir is_str log_level master_off master_on
    master_process_enabled no_long_string no_root_location no_shuffle
    parse_time repeat_each server_addr server_name server_port
    server_port_for_client server_root timeout worker_connections workers
);

# ----------------------------------------------------------------------
# Settings.  The variable names and their environment overrides are
# upstream's; the defaults too, except that the port is picked at random
# (upstream defaults to 1984) so concurrent runs never share a port.

our $NginxBinary       = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $RepeatEach        = 1;
our $Workers           = 1;
our $WorkerConnections = 64;
our $LogLevel          = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $NoRootLocation    = 0;
our $NoShuffle         = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString      = 0;
our $CheckAccumErrLog  = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG} || 0;
our $Timeout           = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep    = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $Verbose           = $ENV{TEST_NGINX_VERBOSE} || 0;
our $ServerAddr        = '127.0.0.1';
our $ServerName        = 'localhost';
our $ConfigPreamble    = '';
our $WorkerUser        = $ENV{TEST_NGINX_WORKER_USER};

# Upstream restarts nginx before every block unless this is set to 0; with
# 0 a block whose generated nginx.conf is unchanged reuses the running
# nginx (and only sees its own error-log lines).
our $ForceRestartOnTest = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                          ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;

if (defined $WorkerUser && $WorkerUser !~ /^\w[-\w]*(?:\s+\w[-\w]*)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

sub gen_rand_port (;$);
sub claim_servroot ($);

our (@BlockPreprocessors, @CleanupHandlers, @TestCleanupHandlers, @EnvToNginx);

# Only the process that loaded us manages nginx: a child forked by a test
# (a mock server, say) must not stop nginx from its END block.
our $MainPid = $$;

# A signal that ends the test (TERM from prove or a timeout, INT, HUP, an
# uncaught ALRM) must still stop nginx: turn it into an exit, which runs
# the END block below.  Handlers the test set itself are left alone.
for my $sig (qw( TERM INT HUP ALRM )) {
    my $cur = $SIG{$sig};
    next if defined $cur && $cur ne '' && $cur ne 'DEFAULT';
    my $num = { TERM => 15, INT => 2, HUP => 1, ALRM => 14 }->{$sig};
    $SIG{$sig} = sub { $SIG{$sig} = 'DEFAULT'; exit(128 + $num) };
}

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
if (!$ServerPort) {
    $ServerPort = gen_rand_port();
    defined $ServerPort
        or die "Test::Nginx: cannot find a free TCP port on $ServerAddr\n";
}
# Published right away (upstream: in run_tests) so "eval" sections, which
# Test::Base runs early, can see it too.
$ENV{TEST_NGINX_SERVER_PORT} ||= $ServerPort;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

our $Randomize = $ENV{TEST_NGINX_RANDOMIZE};
our $ServRoot = File::Spec->rel2abs(
    $Randomize ? "t/servroot_$ServerPort"
               : ($ENV{TEST_NGINX_SERVROOT} || 't/servroot'));
$ServRoot =~ s{/+$}{};

# Two test runs sharing a server root wipe each other's files and signal
# each other's nginx, so a run holds a lock on its server root for its
# whole life.  If another run holds it (prove -j, or a colleague's run in
# the same tree), we use a private "<servroot>-<port>" instead, removed
# at the end unless something failed.
our $ServRootLock = claim_servroot($ServRoot);
our $PrivateServRoot = 0;
if (!$ServRootLock) {
    my $busy = $ServRoot;
    $ServRoot .= "-$ServerPort";
    $ServRootLock = claim_servroot($ServRoot)
        or die "Test::Nginx: cannot lock $ServRoot either\n";
    $PrivateServRoot = 1;
    Test::Builder->new->diag("NOTE: $busy is in use by another test run; "
                             . "using $ServRoot");
}
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

our $ErrLogFilePos = 0;   # where the current block's error-log lines start
our $RunningConf;         # text of the nginx.conf the running nginx uses
our $PrevConfig;          # the previous block's --- config (see Socket.pm)
our $NginxVersion;        # "1.022001" style, filled lazily

# ----------------------------------------------------------------------
# Setters and getters (upstream API).

sub repeat_each (@)       { $RepeatEach = shift if @_; $RepeatEach }
sub workers (@)           { $Workers = shift if @_; $Workers }
sub worker_connections (@) {
    $WorkerConnections = shift if @_;
    $WorkerConnections;
}
sub log_level (@)         { $LogLevel = shift if @_; $LogLevel }
sub timeout (@)           { $Timeout = shift if @_; $Timeout }
sub sleep_time ()         { $TestNginxSleep }
sub server_addr (@)       { $ServerAddr = shift if @_; $ServerAddr }
sub server_name (@)       { $ServerName = shift if @_; $ServerName }
sub server_port (@) {
    if (@_) {
        # keep the client's port in step unless it was set on its own
        $ServerPortForClient = $_[0] if $ServerPortForClient == $ServerPort;
        $ServerPort = shift;
    }
    $ServerPort;
}
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    $ServerPortForClient;
}
sub master_on ()          { $MasterProcessEnabled = 'on' }
sub master_off ()         { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = (shift() ? 'on' : 'off') if @_;
    $MasterProcessEnabled;
}
sub no_root_location ()   { $NoRootLocation = 1 }
sub no_shuffle ()         { $NoShuffle = 1 }
sub no_long_string ()     { $NoLongString = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub config_preamble ($)   { $ConfigPreamble = shift }
sub html_dir ()           { $HtmlDir }
sub server_root ()        { $ServRoot }
sub add_cleanup_handler ($)      { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

# Like upstream: handlers added later run first.
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

sub env_to_nginx (@) {
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

# ----------------------------------------------------------------------
# Small helpers.

sub tb () { Test::Builder->new }

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# is() with Test::LongString's "strings begin to differ at char N"
# diagnostics (unless no_long_string()), plus a unified diff when the values
# span several lines.
sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    my $ok = $NoLongString
             ? Test::More::is($got, $expected, $desc)
             : Test::LongString::is_string($got, $expected, $desc);

    if (!$ok && defined $got && defined $expected
        && ($got =~ /\n./s || $expected =~ /\n./s))
    {
        require Text::Diff;
        tb->diag("diff (- expected, + got):\n",
                 Text::Diff::diff(\$expected, \$got, { STYLE => 'Unified' }));
    }
    return $ok;
}

# "0.5", "500ms", "2s" -> seconds
sub parse_time ($) {
    my $tm = shift;
    return undef if !defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

# A random TCP port that is free on $ServerAddr right now.  Drawn from
# below the kernel's ephemeral range so it cannot collide with the source
# port of some outgoing connection (nginx -> redis, for instance).
sub gen_rand_port (;$) {
    my $used = shift || {};
    my $top = 32767;
    if (open my $in, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        my ($lo) = split ' ', scalar(<$in> // '');
        $top = $lo - 1 if $lo && $lo > 2048;
        close $in;
    }
    for (1 .. 1000) {
        my $port = 1988 + int rand($top - 1988);
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
            Listen    => 1,
            ReuseAddr => 1,    # nginx sets SO_REUSEADDR too
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

# Returns the handle holding an exclusive lock on $dir/.lock, or undef if
# another process holds it.  (Perl opens it close-on-exec, so nginx does
# not inherit the lock.)
sub claim_servroot ($) {
    my $dir = shift;
    make_path($dir) if !-d $dir;
    open my $fh, '>>', "$dir/.lock"
        or die "Test::Nginx: cannot open $dir/.lock: $!\n";
    return flock($fh, LOCK_EX | LOCK_NB) ? $fh : undef;
}

our $NotedNonPortable = {};

# One diag line per (block, message) about a construct that this harness
# accepts but upstream Test::Nginx does not.
sub note_non_portable ($$) {
    my ($name, $msg) = @_;
    return if $NotedNonPortable->{"$name\0$msg"}++;
    tb->diag("NOTE: $name - not portable to upstream Test::Nginx: $msg");
}

# Replace every $TEST_NGINX_XXX with $ENV{TEST_NGINX_XXX}.  As upstream,
# $TEST_NGINX_RAND_PORT_N becomes a free port (the same one within a block)
# and an undefined variable aborts the test file.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return $text if !defined $text || ref $text;
    $rand_ports ||= {};

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my %used = map { $_ => 1 } $ServerPort, values %$rand_ports;
                $rand_ports->{$var} = gen_rand_port(\%used)
                    // bail_out("$name - cannot find a free port for $var");
            }
            $rand_ports->{$var};
        } elsif (defined $ENV{$var}) {
            $ENV{$var};
        } elsif ($var eq 'TEST_NGINX_HTML_DIR') {
            # upstream does not define this one itself
            note_non_portable($name, "set \$ENV{TEST_NGINX_HTML_DIR} ||= "
                                     . "html_dir() in the .t file");
            $HtmlDir;
        } else {
            bail_out("$name - No environment $var defined.\n");
        }
    }ge;

    return $text;
}

sub get_nginx_version () {
    return $NginxVersion if defined $NginxVersion;
    my $out = `$NginxBinary -V 2>&1`;
    if (defined $out && $out =~ m{nginx[^/]*/(\d+)\.(\d+)\.(\d+)}) {
        $NginxVersion = sprintf "%d.%03d%03d", $1, $2, $3;
    } else {
        bail_out("Failed to run \"$NginxBinary -V\": " . ($out // $!));
    }
    return $NginxVersion;
}

# ----------------------------------------------------------------------
# Server root and nginx.conf.

# Wipe and recreate conf/, html/ and logs/ (only directories we create
# ourselves are removed, so a mistaken TEST_NGINX_SERVROOT cannot cost
# anybody their data).
sub setup_server_root () {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $HtmlDir, $LogDir, "$ServRoot/cache",
                    glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        make_path($dir) or bail_out("Failed to do mkdir $dir: $!");
    }

    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

# --- user_files: upstream's ">>> name [touch-date]" format (or an array
# ref of [name, body] pairs from "eval"); relative names go under html/.
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name  = $block->name;
    my $files = $block->user_files;
    return if !defined $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - --- user_files: only a string or an ARRAY ref "
                 . "is accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1) or bail_out("$name - cannot create directory $1");
        }
        $body = expand_env_in_text($body, $name, $rand_ports);
        open my $out, '>', $path
            or bail_out("$name - cannot open $path for writing: $!");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - failed to touch -t '$date' $path");
        }
    }
}

# Returns the text of nginx.conf for a block, laid out like upstream's.
sub gen_config_text ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my ($main_config, $http_config, $post_main_config) =
        map { expand_env_in_text($_ // '', $name, $rand_ports) }
            scalar $block->main_config, scalar $block->http_config,
            scalar $block->post_main_config;
    $config //= '';

    my $log_level = $block->log_level;
    $log_level = $LogLevel if !defined $log_level || $log_level !~ /\S/;
    $log_level =~ s/^\s+|\s+$//g;

    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/^\s+|\s+$//g;
    $server_name =~ s/(['\\])/\\$1/g;

    # load_module must precede the http/events blocks; relative paths are
    # taken relative to the current directory, not to the nginx prefix.
    my $load_modules = join '',
        map { 'load_module ' . File::Spec->rel2abs($_) . ";\n" }
        grep { length } split /\s+/, ($ENV{TEST_NGINX_LOAD_MODULES} // '');

    my $env = join '', map { /\s/ ? "env '$_';\n" : "env $_;\n" } @EnvToNginx;

    my @temp_paths;
    for my $kind (qw( client_body proxy fastcgi uwsgi scgi )) {
        next if $http_config =~ /\b${kind}_temp_path\b/;
        push @temp_paths, "${kind}_temp_path $ServRoot/${kind}_temp;";
    }
    my $temp_paths = join ' ', @temp_paths;

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        # as upstream: when run as root, keep the workers root so they can
        # read html/ and write logs/ (nginx would switch to "nobody")
        $user = "user root;\n";
    }

    return <<_EOC_;
${load_modules}worker_processes  $Workers;
daemon off;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $log_level;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
    $temp_paths

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
$user
_EOC_
}

# ----------------------------------------------------------------------
# nginx processes.

sub read_pid_file () {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return undef if !defined $pid || $pid !~ /^\s*(\d+)\s*$/;
    return $1;
}

# Alive and not a zombie (PID 1 of a container may never reap daemons).
sub is_running ($) {
    my $pid = shift;
    return 0 if !$pid;
    if (!kill 0, $pid) {
        return $! == ESRCH ? 0 : 1;
    }
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        close $in;
        return 0 if $stat =~ /^\d+ \(.*\) [ZX] /s;
    }
    return 1;
}

# Is $pid an nginx of *our* server root?  Guards against signalling an
# unrelated process that inherited a PID from a stale pid file.
sub is_our_nginx ($) {
    my $pid = shift;
    return 0 if !is_running($pid);
    open my $in, '<', "/proc/$pid/cmdline" or return 1;   # no /proc: trust it
    my $cmdline = do { local $/; <$in> } // '';
    close $in;
    $cmdline =~ tr/\0/ /;
    return index($cmdline, $ServRoot) >= 0 && $cmdline =~ /nginx/;
}

sub nginx_pid () {
    my $pid = read_pid_file();
    return $pid && is_our_nginx($pid) ? $pid : undef;
}

# nginx runs in the foreground ("daemon off") as our child, so that how
# it ended is known exactly: its wait status.  Crashes after the response
# are invisible to the client; they are caught here instead.
our $NginxChild;          # pid of the nginx we started, until reaped
our $NginxStatus;         # its wait status once reaped
our $BlockName;           # the block that is using the running nginx
our $LogScanPos = 0;      # error.log up to here has been scanned for
                          # crashes and [alert]/[crit]/[emerg] lines

# Non-blocking: has our nginx exited?  Returns its wait status or undef.
sub reap_nginx () {
    return $NginxStatus if defined $NginxStatus || !$NginxChild;
    my $got = waitpid $NginxChild, WNOHANG;
    if ($got == $NginxChild) {
        $NginxStatus = $?;
    } elsif ($got < 0) {
        $NginxStatus = -1;    # not our child any more (cannot happen)
    }
    return $NginxStatus;
}

sub describe_status ($) {
    my $st = shift;
    return "status unknown" if $st < 0;
    return sprintf("killed by signal %d%s", $st & 127,
                   ($st & 128) ? " (core dumped)" : '') if $st & 127;
    return sprintf "exit code %d", $st >> 8;
}

# Lines of error.log that mean something went wrong whatever the test
# expects: a dead worker, an assertion, or an [alert]/[crit]/[emerg].
# $allowed (a regex or undef) exempts lines a block expects on purpose.
sub bad_log_lines ($$) {
    my ($lines, $allowed) = @_;
    return grep {
        (/ exited on signal \d+/ || /\bAssertion .*?failed\b/
         || /\[(?:alert|crit|emerg)\]/)
        && !(defined $allowed && $_ =~ $allowed)
    } @$lines;
}

# Complete lines of error.log from byte $from on; returns (lines, new pos).
sub log_lines_from ($) {
    my $from = shift;
    open my $in, '<', $ErrLogFile or return ([], $from);
    binmode $in;
    seek $in, $from, 0 if $from > 0;
    my $data = do { local $/; <$in> } // '';
    close $in;
    my $end = rindex($data, "\n") + 1;
    return ([ split /^/m, substr($data, 0, $end) ], $from + $end);
}

# Scans error.log lines not scanned yet for crashes and alerts; each one
# found is a failure of the block $name.  Returns the number found.
our $AllowedBadLines;     # set per block by Socket.pm

# The last look of a block's --- no_error_log at the lines logged after
# its end-of-block check (timers, late log-phase lines): run when the next
# block starts or the run ends, before nginx is stopped or reused.
our $PendingEndCheck;
sub run_pending_end_check () {
    my $check = $PendingEndCheck;
    undef $PendingEndCheck;
    $check->() if $check;
}
sub scan_log_for_crashes ($) {
    my $name = shift;
    my ($lines, $pos) = log_lines_from($LogScanPos);
    $LogScanPos = $pos;
    my @bad = bad_log_lines($lines, $AllowedBadLines);
    for my $line (@bad) {
        chomp(my $l = $line);
        tb->ok(0, "$name - error.log has no crash or [alert]/[crit]/"
                  . "[emerg] line: $l");
    }
    return scalar @bad;
}

# Graceful stop: QUIT, wait up to timeout(), then KILL the whole process
# group.  Then the checks every block gets: nginx was still running when
# it was asked to stop, it exited with status 0, no worker died and
# nothing was logged at [alert] or above, shutdown included.  Returns
# the number of problems found (each reported as a failed test).
sub stop_nginx () {
    my $problems = 0;
    my $name = $BlockName // "$0 (nginx)";
    my $pid = $NginxChild // nginx_pid();
    if ($NginxChild && defined reap_nginx()) {
        tb->ok(0, "$name - nginx was still running at the end of the "
                  . "block (it had exited: "
                  . describe_status($NginxStatus) . ")");
        tb->diag(error_log_tail());
        $problems++;
    } elsif ($pid) {
        warn "stopping nginx $pid\n" if $Verbose;
        kill SIGQUIT, $pid;
        my $deadline = time + ($Timeout > 1 ? $Timeout : 1);
        while (time < $deadline) {
            last if $NginxChild ? defined reap_nginx() : !is_running($pid);
            sleep 0.01;
        }
        my $running = $NginxChild ? !defined reap_nginx() : is_running($pid);
        if ($running) {
            tb->ok(0, "$name - nginx quit within ${Timeout}s of SIGQUIT");
            $problems++;
            kill SIGKILL, -$pid, $pid;
            $deadline = time + 2;
            while (time < $deadline) {
                last if $NginxChild ? defined reap_nginx() : !is_running($pid);
                sleep 0.01;
            }
        } elsif ($NginxChild && $NginxStatus != 0) {
            tb->ok(0, "$name - nginx exited cleanly on SIGQUIT (it ended "
                      . "with " . describe_status($NginxStatus) . ")");
            tb->diag(error_log_tail());
            $problems++;
        }
    }
    $problems += scan_log_for_crashes($name) if $pid && -e $ErrLogFile;
    undef $NginxChild;
    undef $NginxStatus;
    undef $BlockName;
    unlink $PidFile if -e $PidFile;
    undef $RunningConf;
    return $problems;
}

# Start nginx on the current server root, in the foreground as our child.
# Returns undef on success, or a message with nginx's stderr and the tail
# of error.log.
sub start_nginx () {
    my $errfile = "$ServRoot/nginx.stderr";
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);

    unlink $PidFile;
    undef $NginxStatus;
    my $pid = fork;
    defined $pid or return "fork() failed: $!";
    if ($pid == 0) {
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $errfile;
        # its own process group: a stop can KILL the workers with it
        POSIX::setpgid(0, 0);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    POSIX::setpgid($pid, $pid);    # (either of us may win the race)
    $NginxChild = $pid;
    $LogScanPos = 0;

    # nginx writes its pid file once the configuration is loaded and the
    # listening sockets are open
    my $deadline = time + 10;
    while (1) {
        if (defined reap_nginx()) {
            my $st = $NginxStatus;
            undef $NginxChild;
            return sprintf("\"%s\" failed (%s):\n%s%s", "@cmd",
                           describe_status($st), slurp($errfile),
                           error_log_tail());
        }
        my $written = read_pid_file();
        return undef if defined $written && $written == $pid;
        if (time > $deadline) {
            kill SIGKILL, $pid;
            waitpid $pid, 0;
            undef $NginxChild;
            return "\"@cmd\" did not write its pid file within 10 seconds\n"
                   . slurp($errfile) . error_log_tail();
        }
        sleep 0.005;
    }
}

sub slurp ($) {
    my $file = shift;
    open my $in, '<', $file or return '';
    local $/;
    my $data = <$in>;
    close $in;
    return $data // '';
}

sub error_log_tail () {
    my @lines = split /^/m, slurp($ErrLogFile);
    return '' if !@lines;
    splice @lines, 0, @lines - 20 if @lines > 20;
    return "--- last lines of $ErrLogFile:\n" . join '', @lines;
}

# Make sure nginx runs with $conf_text: keep the running one if $may_reuse
# and it already uses exactly that text, else (re)start it on a freshly
# wiped server root.  Returns undef on success or an error text.
sub ensure_nginx ($$$$) {
    my ($block, $conf_text, $rand_ports, $may_reuse) = @_;
    run_pending_end_check();

    if ($may_reuse && defined $RunningConf
        && $RunningConf eq $conf_text && nginx_pid())
    {
        # keep it; this block only looks at the error-log lines it causes
        write_user_files($block, $rand_ports);
        $ErrLogFilePos = -s $ErrLogFile || 0;
        return undef;
    }

    stop_nginx();
    setup_server_root();
    write_user_files($block, $rand_ports);

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!");
    print $out $conf_text;
    close $out;

    my $err = start_nginx();
    return $err if defined $err;

    # as upstream, the first block after a start also sees the start-up lines
    $ErrLogFilePos = 0;
    $RunningConf = $conf_text;
    return undef;
}

# Run a block's Perl snippet (--- init, --- skip_eval) the way upstream
# does: in this package, with $block and $name in scope.  Returns ($@, value).
sub eval_block_code ($$) {
    my ($block, $code) = @_;
    my $name = $block->name;
    my $value = eval $code;
    return ($@, $value);
}

# ----------------------------------------------------------------------
# Error log.

# Complete lines appended to error.log since the last call (or, with
# check_accum_error_log, since the block's start).
sub error_log_data () {
    open my $in, '<', $ErrLogFile or return [];
    binmode $in;
    my $pos = $ErrLogFilePos;
    seek $in, $pos, 0 if $pos > 0;
    my $data = do { local $/; <$in> } // '';
    close $in;

    # a line nginx is still writing is left for the next read
    my $end = rindex($data, "\n") + 1;
    $data = substr $data, 0, $end;
    $ErrLogFilePos = $pos + $end if !$CheckAccumErrLog;
    return [ split /^/m, $data ];
}

# ----------------------------------------------------------------------
# Cleanup.

sub cleanup () {
    return if $$ != $MainPid;
    run_pending_end_check();
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
    stop_nginx() unless $ENV{TEST_NGINX_NO_CLEAN};
}

# A private or randomized server root goes away with the test file (a
# private one only if everything passed, so failures can be looked at).
sub remove_server_root () {
    return if $$ != $MainPid || $ENV{TEST_NGINX_NO_CLEAN};
    return if !($Randomize || $PrivateServRoot) || !-d $ServRoot;
    if ($Randomize || tb->is_passing) {
        remove_tree($ServRoot);
    } else {
        tb->diag("server root kept for inspection: $ServRoot");
    }
}

# The shared server root is left as upstream Test::Nginx can take it over:
# it removes conf/, html/, logs/ and *_temp/, then rmdir()s the root and
# stops ("Can't remove t/servroot") if anything else is left there.
sub release_server_root () {
    return if $$ != $MainPid || $PrivateServRoot || $Randomize;
    unlink "$ServRoot/nginx.stderr", "$ServRoot/.lock";
}

END {
    local $?;   # do not disturb Test::Builder's exit code
    cleanup();
    release_server_root();
    remove_server_root();
}

1;
