package AuthToken::Process;

# How every t/lib helper (and tools/test-install) starts, waits for and
# stops the processes a test needs, and talks to Redis: one place, so that
# redis-server, redis-sentinel, authtokend, nginx and wrk are all started
# with their output in a log, waited for the same way, and stopped by PID
# with a grace period and then SIGKILL. tools/lib/authtoken_tools.py is
# the same for the Python tools.
#
#   free_port()                       a free 127.0.0.1 TCP port
#   spawn($log, @cmd)                 fork + exec, stdout and stderr appended
#                                     to $log; returns the pid
#   wait_port($port, what => ..., log => ..., pid => ..., timeout => s)
#                                     until 127.0.0.1:$port accepts; dies
#                                     (with the log's tail) if $pid exits
#                                     first or $timeout (10 s) passes
#   wait_socket($path, pid => ..., timeout => s)
#                                     until a unix socket is at $path: true,
#                                     or false once $pid exited or $timeout
#                                     (10 s) passed
#   wait_log($file, $re, $timeout)    until a line of $file matches $re
#   wait_until($timeout, $check)      polls $check every 10 ms; the seconds
#                                     it took, or undef on timeout
#   wait_exit($pid, $timeout)         the wait status once $pid is gone (0
#                                     for a process that is not our child),
#                                     or undef on timeout
#   stop_pid($pid, signal => 'TERM', timeout => 5, cont => 0)
#                                     signal, wait, then SIGKILL; the exit
#                                     code if it went by itself, else undef
#   pid_file($path)                   the pid written in $path, or undef
#   nginx_binary()                    $TEST_NGINX_BINARY or nginx
#   nginx_prefix_start($prefix, @g)   nginx -p $prefix/ -c conf/nginx.conf
#                                     (daemon on); dies with its output
#   nginx_prefix_stop($prefix)        SIGQUIT to logs/nginx.pid, 5 s, SIGKILL
#   redis_client($port_or_socket, %opt)   a Redis.pm client (libredis-perl)
#   redis_call($client, @cmd)         one command; dies "redis error: ..."
#   redis_calls($client, [@cmd], ...) pipelined; the replies in order
#   redis_at($port, @cmd)             one command on a fresh connection
#
# Redis.pm sends commands as given (binary-safe) and returns replies as
# Perl values: strings, numbers, array refs, undef for a nil. Commands go
# through its generic dispatch (the name upper-cased), so PING, INFO and
# KEYS return what Redis sent, like any other command.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Redis;
use Time::HiRes qw(sleep time);

use Exporter 'import';
our @EXPORT = qw(free_port spawn wait_port wait_socket wait_log wait_until
                 wait_exit
                 stop_pid pid_file nginx_binary nginx_prefix_start
                 nginx_prefix_stop redis_client redis_call redis_calls
                 redis_at);

sub free_port {
    my $sock = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                     LocalPort => 0, Proto => 'tcp')
        or die "cannot find a free port: $!";
    my $p = $sock->sockport;
    close $sock;
    return $p;
}

sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);    # no END blocks in the child
    }
    return $pid;
}

sub _tail {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $text = <$fh> // '';
    return length $text > 3000 ? substr($text, -3000) : $text;
}

sub wait_exit {
    my ($pid, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        return $? if $w == $pid;
        return 0 if $w == -1 && !kill 0, $pid;    # not our child, and gone
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

sub stop_pid {
    my ($pid, %opt) = @_;
    return unless $pid;
    local $?;
    kill 'CONT', $pid if $opt{cont};    # a paused (SIGSTOP) process
    kill $opt{signal} || 'TERM', $pid;
    my $status = wait_exit($pid, $opt{timeout} // 5);
    return $status >> 8 if defined $status;
    kill 'KILL', $pid;
    wait_exit($pid, 5);
    return undef;
}

sub wait_port {
    my ($port, %opt) = @_;
    my $what = $opt{what} || 'the server';
    my $log = $opt{log} // '';
    my $deadline = time + ($opt{timeout} || 10);
    while (time < $deadline) {
        if ($opt{pid} && waitpid($opt{pid}, WNOHANG) == $opt{pid}) {
            die "$what exited at startup; its log ($log):\n" . _tail($log);
        }
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 0.2);
        if ($s) { close $s; return $port; }
        sleep 0.05;
    }
    die "$what did not listen on 127.0.0.1:$port; its log ($log):\n"
        . _tail($log);
}

sub wait_socket {
    my ($path, %opt) = @_;
    my $exited;
    wait_until($opt{timeout} || 10, sub {
        -S $path
            || ($opt{pid} && ($exited = waitpid($opt{pid}, WNOHANG) == $opt{pid}));
    });
    return -S $path && !$exited;
}

sub wait_log {
    my ($file, $re, $timeout) = @_;
    return wait_until($timeout // 10, sub {
        open my $fh, '<', $file or return 0;
        while (my $line = <$fh>) { return 1 if $line =~ $re }
        return 0;
    });
}

sub wait_until {
    my ($timeout, $check) = @_;
    my $t0 = time;
    while (time - $t0 < $timeout) {
        return time - $t0 if $check->();
        sleep 0.01;
    }
    return undef;
}

sub pid_file {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    my ($pid) = (<$fh> // '') =~ /^(\d+)/;
    return $pid;
}

sub nginx_binary { $ENV{TEST_NGINX_BINARY} || 'nginx' }

sub nginx_prefix_start {
    my ($prefix, @global) = @_;
    my $g = @global ? " -g '@global'" : '';
    my $out = `@{[nginx_binary()]} -p $prefix/ -c conf/nginx.conf$g 2>&1`;
    die "nginx failed to start: $out" if $?;
    return $prefix;
}

sub nginx_prefix_stop {
    my ($prefix) = @_;
    stop_pid(pid_file("$prefix/logs/nginx.pid"), signal => 'QUIT');
}

# redis_client(6379) or redis_client('/path/redis.sock'); %opt: timeout
# (connect, seconds, default 5) and any other Redis->new option.
sub redis_client {
    my ($where, %opt) = @_;
    my $timeout = delete $opt{timeout} // 5;
    return Redis->new(($where =~ m{/} ? (sock => $where)
                                      : (server => "127.0.0.1:$where")),
                      cnx_timeout => $timeout, reconnect => 0, %opt);
}

sub _send {
    my ($client, $slot, $cmd, @args) = @_;
    my $method = uc $cmd;    # Redis.pm's generic dispatch (AUTOLOAD)
    # Redis.pm sends a method name's '_' as a word break (client_list is
    # CLIENT LIST), so FCALL_RO would go out as "FCALL RO": refuse rather
    # than send another command than the test asked for.
    die "redis_cmd: Redis.pm cannot send '$cmd' (it splits command names at '_'); "
        . "send its words as separate arguments or use redis-cli\n"
        if $cmd =~ /_/;
    $client->$method(@args, sub {
        my ($reply, $error) = @_;
        $$slot = defined $error ? \"redis error: $error\n" : [$reply];
    });
}

sub redis_calls {
    my ($client, @cmds) = @_;
    my @slots;
    _send($client, \$slots[$_], @{ $cmds[$_] }) for 0 .. $#cmds;
    $client->wait_all_responses;
    for my $s (@slots) { die $$s if ref $s eq 'SCALAR' }
    return map { $_->[0] } @slots;
}

sub redis_call {
    my ($client, @cmd) = @_;
    my ($reply) = redis_calls($client, \@cmd);
    return $reply;
}

sub redis_at {
    my ($port, @cmd) = @_;
    my $client = redis_client($port);
    return redis_call($client, @cmd);    # closed as $client goes
}

1;
