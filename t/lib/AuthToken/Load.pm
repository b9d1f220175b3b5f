package AuthToken::Load;

# Load for the t/ suite: wrk in the background with tools/soak.d/verdicts.lua
# (every response counted per token class and verdict), and what a fault
# test needs to know about nginx's processes: the connections a worker
# holds, its RSS, the lines of the error log at a given level.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX ":sys_wait_h";
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup;
use AuthToken::Process;

use Exporter 'import';
our @EXPORT = qw(wrk_start wrk_wait wrk_binary write_tokens worker_connections
                 process_rss_kb log_lines class_counts);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my %running;   # pid => 1, killed at END if still there

sub wrk_binary { $ENV{WRK} || 'wrk' }

# write_tokens($file, [class => key], ...)
sub write_tokens {
    my ($file, @pairs) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh "$_->[0] $_->[1]\n" for @pairs;
    close $fh or die "$file: $!";
    return $file;
}

# wrk_start(url => ..., tokens => FILE, duration => S, connections => N,
#           threads => T, out => FILE): starts wrk and returns a handle for
# wrk_wait. wrk's --timeout is 10 s (latency is not what is measured here;
# a loaded machine must not turn slow answers into errors).
sub wrk_start {
    my (%o) = @_;
    my $out = $o{out} or die 'wrk_start: out';
    my @cmd = (wrk_binary(),
               '-t', $o{threads} || 2, '-c', $o{connections} || 200,
               '-d', ($o{duration} || 5) . 's', '--timeout', '10s',
               '-s', "$repo/tools/soak.d/verdicts.lua",
               $o{url}, '--', $o{tokens});
    unlink $out;
    my $pid = spawn($out, @cmd);
    $running{$pid} = 1;
    return { pid => $pid, out => $out, cmd => "@cmd",
             deadline => time + ($o{duration} || 5) + 30 };
}

# Waits for wrk and returns its VERDICTS summary as a hash ref, with
# {output} (wrk's whole output) added; dies if wrk fails or hangs.
sub wrk_wait {
    my ($h) = @_;
    my $status = wait_exit($h->{pid}, $h->{deadline} - time);
    stop_pid($h->{pid}, signal => 'KILL') unless defined $status;
    delete $running{$h->{pid}};
    my $output = '';
    if (open my $fh, '<', $h->{out}) { local $/; $output = <$fh> // '' }
    die "wrk did not finish in time: $h->{cmd}\n$output" unless defined $status;
    die "wrk failed ($status): $h->{cmd}\n$output" if $status;
    my ($json) = $output =~ /^VERDICTS (\{.*\})$/m
        or die "no VERDICTS line from wrk: $h->{cmd}\n$output";
    my $r = JSON::PP::decode_json($json);
    $r->{output} = $output;
    return $r;
}

# { verdict => n } of one class, from a wrk_wait result.
sub class_counts {
    my ($r, $class) = @_;
    my %c;
    while (my ($k, $v) = each %{ $r->{counts} }) {
        my ($cl, $verdict) = split / /, $k, 2;
        $c{$verdict} += $v if $cl eq $class;
    }
    return \%c;
}

# The established TCP connections process $pid holds whose local port is
# $port (a worker's client connections), from /proc/$pid/fd and
# /proc/net/tcp.
sub worker_connections {
    my ($pid, $port) = @_;
    my %inodes;
    opendir my $d, "/proc/$pid/fd" or return 0;
    for my $fd (readdir $d) {
        my $link = readlink "/proc/$pid/fd/$fd" // next;
        $inodes{$1} = 1 if $link =~ /^socket:\[(\d+)\]$/;
    }
    closedir $d;
    my $n = 0;
    my $hexport = sprintf '%04X', $port;
    open my $fh, '<', "/proc/$pid/net/tcp" or return 0;
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        next unless @f > 9 && $f[1] =~ /:$hexport$/ && $f[3] eq '01';
        $n++ if $inodes{$f[9]};
    }
    close $fh;
    return $n;
}

sub process_rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return;
    while (my $line = <$fh>) { return $1 if $line =~ /^VmRSS:\s+(\d+)\s+kB/ }
    return;
}

# The lines of an error log text at the given levels (e.g. 'alert', 'emerg').
sub log_lines {
    my ($text, @levels) = @_;
    my $re = join '|', map { quotemeta } @levels;
    return grep { /\[(?:$re)\]/ } split /\n/, $text;
}

END {
    if ($$ == $owner) {
        local $?;
        stop_pid($_, signal => 'KILL') for keys %running;
    }
}

1;
