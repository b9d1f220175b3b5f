# The t/lib helpers that start processes stop them however the test ends,
# and a CLI that exits before reading its standard input does not take the
# test down with SIGPIPE (issue 17: t/501 was killed in 3 of 32 runs and
# left a redis-server, an authtokend and an nginx behind).
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::Issuer;

my $lib = abs_path(dirname(abs_path(__FILE__)) . '/lib');
my $tmp = tempdir('helpers-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);

subtest 'a CLI that exits without reading its input: an exit code, not SIGPIPE' => sub {
    issuer_setup();
    # More than a pipe holds (64 KiB), to a command that never reads stdin.
    my ($code, $out, $err) = ctl({ stdin => 'x' x (1 << 20) }, 'no-such-command');
    isnt($code, 0, 'the CLI refused the command');
    like($err, qr/\S/, 'and said why on stderr');
    pass('the test process survived the write to a closed pipe');
};

# A nested test that starts redis-server, authtokend and nginx (through
# AuthToken::Server) and then ends the way $how says.
my $nested = <<'_EOT_';
use strict;
use warnings;
use Test::More;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
issuer_setup();
authtokend_start();
nginx_start(<<'HTTP');
    server { listen 127.0.0.1:$TEST_NGINX_SERVER_PORT; location / { return 200; } }
HTTP
$| = 1;
print "started redis=", redis_port(), " authtokend=", authtokend_port(),
      " nginx=", nginx_port(), "\n";
# the outer test looks at the processes, then lets this one go on
sleep 0.05 until -e $ENV{GO};
my $how = $ENV{HOW};
if ($how eq 'die') { die "the test died\n" }
if ($how eq 'sigpipe') {
    ctl({ stdin => 'x' x (1 << 20) }, 'no-such-command');
    print "survived\n";
    ok(1);
    done_testing();
    exit 0;
}
if ($how eq 'signal') { kill 'TERM', $$; sleep 5; }
ok(1);
done_testing();
_EOT_

sub listening {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 1);
    return $s ? 1 : 0;
}

sub kill_left_over {
    my ($root, $nested, $port) = @_;
    my @pids;
    for my $file ("$root-redis-$nested/redis.pid", "$root-$nested/logs/nginx.pid") {
        open my $in, '<', $file or next;
        push @pids, (<$in> // '') =~ /(\d+)/;
    }
    for my $cmdline (glob '/proc/[0-9]*/cmdline') {
        open my $in, '<', $cmdline or next;
        my $cmd = do { local $/; <$in> } // '';
        push @pids, $cmdline =~ m{/proc/(\d+)/}
            if $cmd =~ /authtokend\x00--listen\x00127\.0\.0\.1:$port->{authtokend}\x00/;
    }
    diag("killing what the nested test left: @pids");
    kill 'KILL', $_, -$_ for @pids;    # nginx: its process group too
}

for my $how (qw( die signal sigpipe )) {
    subtest "processes are stopped when the test ends by: $how" => sub {
        my $root = "$tmp/servroot-$how";
        open my $out, '>', "$tmp/nested.t" or die $!;
        print $out $nested;
        close $out;
        local $ENV{TEST_NGINX_SERVROOT} = $root;
        local $ENV{HOW} = $how;
        local $ENV{GO} = "$tmp/go-$how";
        local $ENV{TEST_NGINX_BINARY} = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
        delete local $ENV{TEST_NGINX_LOAD_MODULES};
        my $pid = open my $fh, '-|', $^X, "-I$lib", "$tmp/nested.t"
            // die "cannot run the nested test: $!";
        my %port;
        my $output = '';
        while (my $line = <$fh>) {
            $output .= $line;
            if ($line =~ /^started (.*)/) {
                %port = map { split /=/ } split ' ', $1;
                last;
            }
        }
        ok(%port, 'the nested test started its processes') or diag $output;
        # While it runs, all three answer (so "none left" means something).
        for my $what (qw( redis authtokend nginx )) {
            ok($port{$what} && listening($port{$what}), "$what is running");
        }
        open my $go, '>', $ENV{GO} or die $!;
        close $go;
        $output .= do { local $/; <$fh> } // '';
        close $fh;
        my $status = $?;
        if ($how eq 'sigpipe') {
            is($status, 0, 'the nested test was not killed by SIGPIPE')
                or diag "wait status $status\n$output";
            like($output, qr/survived/, 'and went on after the write');
        } else {
            isnt($status, 0, 'the nested test failed');
        }
        my @left;
        for my $what (qw( redis authtokend nginx )) {
            next if !$port{$what};
            my $deadline = time + 5;
            sleep 0.1 while listening($port{$what}) && time < $deadline;
            ok(!listening($port{$what}), "$what is not left running")
                or push @left, $what;
        }
        # What a failure leaves behind is stopped here, by pid.
        kill_left_over($root, $pid, \%port) if @left;
    };
}

# A test's exit status is what prove judges. An END block that runs
# waitpid, system or a helper that does sets $? and replaces it: a file
# whose tests all passed then "exits 9" (or one that died exits 0). So every
# END block under t/ keeps it: `local $?`, or saves and restores it.
subtest 'every END block under t/ keeps the exit status' => sub {
    my $top = abs_path(dirname(__FILE__));
    my @files = (glob("$top/*.t"), glob("$top/lib/*/*.pm"), glob("$top/lib/*/*/*.pm"));
    my @bad;
    for my $file (@files) {
        open my $fh, '<', $file or die "$file: $!";
        my @lines = <$fh>;
        for my $i (0 .. $#lines) {
            next unless $lines[$i] =~ /^\s*END\s*\{/;
            my $head = join '', @lines[$i .. ($i + 3 > $#lines ? $#lines : $i + 3)];
            push @bad, "$file:" . ($i + 1)
                unless $head =~ /local\s+\$\?|my\s+\$\w+\s*=\s*\$\?/;
        }
    }
    ok(@files > 10, 'the files were found (' . scalar(@files) . ')');
    is(join("\n", @bad), '', 'none replaces $?');
};

# Redis.pm sends a method name's '_' as a word break, so a command such as
# FCALL_RO would reach Redis as "FCALL RO": the helper refuses it instead
# of sending another command than the one asked for.
subtest 'redis commands with an underscore are refused, not mangled' => sub {
    require AuthToken::Process;
    my $listener = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0',
                                         ReuseAddr => 1) or die "listen: $!";
    my $client = AuthToken::Process::redis_client($listener->sockport, read_timeout => 2);
    my $sent = eval { AuthToken::Process::redis_call($client, 'FCALL_RO', 'f', 0); 1 };
    ok(!$sent, 'FCALL_RO is not sent');
    like($@, qr/cannot send 'FCALL_RO'/, 'and the error says why');
};

done_testing();
