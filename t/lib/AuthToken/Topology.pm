package AuthToken::Topology;

# Several Redis and nginx processes for one .t file, on loopback: the
# primary is AuthToken::TestRedis's server; this adds replicas of it,
# Sentinels watching it, and nginx "edges" (each its own prefix, config and
# port). Every process started here is stopped at the end of the file, also
# when the test dies or is interrupted (SIGINT/SIGTERM/SIGHUP end the file
# through exit, so END runs).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis qw(free_port redis_port);

use Exporter 'import';
our @EXPORT = qw(replica_start replica_kill replica_port sentinel_start
                 sentinel_port sentinel_url sentinel_wait sentinel_primary
                 edge_start edge_stop edge_port edge_get node_cmd
                 node_info wait_until);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my $base = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-topology-$$";
my (%replica, %sentinel, %edge);    # name => { pid, port, dir }
our $service = 'authtoken';

$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

sub _wait_port {
    my ($port, $what, $log) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 0.2);
        if ($s) { close $s; return; }
        sleep 0.05;
    }
    die "$what did not listen on $port; see $log";
}

sub _spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec @cmd;
        die "exec $cmd[0]: $!";
    }
    return $pid;
}

sub _stop_pid {
    my ($pid, $sig) = @_;
    return unless $pid;
    kill 'CONT', $pid;
    kill $sig || 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# Polls $check every 10 ms until it returns true or $timeout seconds pass;
# returns the seconds waited, or undef on timeout.
sub wait_until {
    my ($timeout, $check) = @_;
    my $t0 = time;
    while (time - $t0 < $timeout) {
        return time - $t0 if $check->();
        sleep 0.01;
    }
    return undef;
}

# One command to the node on $port (a replica, the primary or a Sentinel);
# dies on an error reply or when it cannot connect.
sub node_cmd {
    my ($port, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 2)
        or die "cannot connect to 127.0.0.1:$port: $!";
    binmode $s;
    my $req = '*' . @args . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    print $s $req;
    my $reply = AuthToken::TestRedis::_read_reply($s);
    close $s;
    return $reply;
}

# INFO <section> as a hash.
sub node_info {
    my ($port, $section) = @_;
    my $text = node_cmd($port, 'INFO', $section);
    return { map { /^(\w+):(.*?)\r?$/ ? ($1, $2) : () } split /\n/, $text };
}

sub replica_port { $replica{$_[0]}{port} }

# A replica of the current primary (TestRedis's server unless $of says
# otherwise), empty: no persistence. Extra redis-server options in @opts.
# Waits until it has synced.
sub replica_start {
    my ($name, %opt) = @_;
    my $r = $replica{$name} ||= { port => free_port(), dir => "$base/$name" };
    remove_tree($r->{dir});
    make_path($r->{dir});
    my $of = $opt{of} || redis_port();
    # A config file of its own: Sentinel rewrites it (CONFIG REWRITE) when
    # it re-points or promotes the replica.
    copy("$repo/redis/redis-test.conf", "$r->{dir}/redis.conf") or die $!;
    $r->{pid} = _spawn("$r->{dir}/redis.log",
        $ENV{TEST_REDIS_SERVER} || 'redis-server',
        "$r->{dir}/redis.conf", '--port', $r->{port},
        '--dir', $r->{dir}, '--replicaof', '127.0.0.1', $of,
        @{ $opt{options} || [] });
    _wait_port($r->{port}, "replica $name", "$r->{dir}/redis.log");
    return $r->{port} if $opt{nowait};
    wait_until(10, sub {
        (eval { node_info($r->{port}, 'replication')->{master_link_status} }
         // '') eq 'up' }) // die "replica $name did not sync";
    return $r->{port};
}

sub replica_kill {
    my ($name) = @_;
    my $r = $replica{$name} or return;
    kill 'KILL', $r->{pid};
    waitpid($r->{pid}, 0);
    undef $r->{pid};
}

sub sentinel_port { $sentinel{$_[0]}{port} }

# A Sentinel watching the primary as $service, with short timeouts for the
# tests (down after $opt{down_after} ms, default 1000).
sub sentinel_start {
    my ($name, %opt) = @_;
    my $s = $sentinel{$name} = { port => free_port(), dir => "$base/$name" };
    remove_tree($s->{dir});
    make_path($s->{dir});
    my $down = $opt{down_after} || 1000;
    my $failover = $opt{failover_timeout} || 3000;
    open my $fh, '>', "$s->{dir}/sentinel.conf" or die $!;
    print $fh <<"CONF";
port $s->{port}
bind 127.0.0.1
daemonize no
dir $s->{dir}
sentinel monitor $service 127.0.0.1 @{[redis_port()]} 2
sentinel down-after-milliseconds $service $down
sentinel failover-timeout $service $failover
sentinel parallel-syncs $service 2
CONF
    close $fh;
    $s->{pid} = _spawn("$s->{dir}/sentinel.log",
        $ENV{TEST_REDIS_SENTINEL} || 'redis-sentinel',
        "$s->{dir}/sentinel.conf");
    _wait_port($s->{port}, "sentinel $name", "$s->{dir}/sentinel.log");
    return $s->{port};
}

# Waits until every Sentinel knows $replicas replicas and the others.
sub sentinel_wait {
    my ($replicas) = @_;
    my $n = keys %sentinel;
    for my $s (values %sentinel) {
        wait_until(15, sub {
            my $m = eval { node_cmd($s->{port}, 'SENTINEL', 'master', $service) }
                or return 0;
            my %h = @$m;
            $h{'num-slaves'} == $replicas && $h{'num-other-sentinels'} == $n - 1
        }) // die "sentinel on $s->{port} did not discover the topology";
    }
}

# What the first Sentinel that answers says the primary is: its port.
sub sentinel_primary {
    for my $s (values %sentinel) {
        my $a = eval { node_cmd($s->{port}, 'SENTINEL',
                                'get-master-addr-by-name', $service) };
        return $a->[1] if $a;
    }
    return undef;
}

sub sentinel_url {
    'sentinel://' . join(',', map { "127.0.0.1:$sentinel{$_}{port}" }
                              sort keys %sentinel) . "/$service";
}

sub edge_port { $edge{$_[0]}{port} }

# An nginx with its own prefix: $http is the http{} body; $PORT in it is
# this edge's listen port.
sub edge_start {
    my ($name, $http) = @_;
    my $e = $edge{$name} = { port => free_port(), dir => "$base/$name" };
    remove_tree($e->{dir});
    make_path(map { "$e->{dir}/$_" } qw(conf logs html tmp));
    my $modules = join '', map { "load_module $_;\n" }
                            split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    my $user = $> == 0 ? "user root root;\n" : '';
    $http =~ s/\$PORT\b/$e->{port}/g;
    open my $fh, '>', "$e->{dir}/conf/nginx.conf" or die $!;
    print $fh <<"CONF";
$modules$user
worker_processes 1;
daemon on;
master_process on;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log logs/access.log;
    client_body_temp_path tmp;
    proxy_temp_path tmp;
    fastcgi_temp_path tmp;
    uwsgi_temp_path tmp;
    scgi_temp_path tmp;
    $http
}
CONF
    close $fh;
    open my $html, '>', "$e->{dir}/html/x" or die $!;
    close $html;
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $out = `$bin -p $e->{dir}/ -c conf/nginx.conf 2>&1`;
    die "nginx $name failed to start: $out" if $?;
    $e->{started} = 1;
    _wait_port($e->{port}, "nginx $name", "$e->{dir}/logs/error.log");
    return $e->{port};
}

sub edge_stop {
    my ($name) = @_;
    my $e = $edge{$name} or return;
    return unless $e->{started};
    open my $fh, '<', "$e->{dir}/logs/nginx.pid" or return;
    chomp(my $pid = <$fh> // '');
    _stop_pid($pid, 'QUIT') if $pid;
    $e->{started} = 0;
}

my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 0);

# GET $path at edge $name with the token: { status, cache }.
sub edge_get {
    my ($name, $token, $path) = @_;
    my $res = $http->get("http://127.0.0.1:$edge{$name}{port}" . ($path || '/s/x'),
        { headers => { Authorization => "Token $token" } });
    return { status => $res->{status},
             cache => $res->{headers}{'x-cache'} // '' };
}

END {
    if ($$ == $owner) {
        my $status = $?;
        edge_stop($_) for keys %edge;
        _stop_pid($_->{pid}) for grep { $_->{pid} } values %sentinel;
        _stop_pid($_->{pid}) for grep { $_->{pid} } values %replica;
        remove_tree($base) if !$ENV{TEST_NGINX_NO_CLEAN};
        $? = $status;
    }
}

1;
