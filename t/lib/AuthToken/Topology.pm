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

use AuthToken::Process;
use AuthToken::Server qw(nginx_conf_text);
use AuthToken::TestRedis qw(redis_port redis_server_start);

use Exporter 'import';
our @EXPORT = qw(replica_start replica_kill replica_port replica_signal
                 sentinel_start sentinel_port sentinel_url sentinel_wait
                 sentinel_primary sentinel_settled sentinel_replica sentinel_logs
                 edge_start edge_stop edge_port edge_get edge_error_log node_cmd
                 node_info wait_until);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my $base = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-topology-$$";
my (%replica, %sentinel, %edge);    # name => { pid, port, dir }
our $service = 'authtoken';

$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

# One command to the node on $port (a replica, the primary or a Sentinel);
# dies on an error reply or when it cannot connect.
sub node_cmd { redis_at(@_) }

# INFO <section> as a hash.
sub node_info {
    my ($port, $section) = @_;
    my $text = node_cmd($port, 'INFO', $section);
    return { map { /^(\w+):(.*?)\r?$/ ? ($1, $2) : () } split /\n/, $text };
}

sub replica_port { $replica{$_[0]}{port} }

# A replica of the current primary (TestRedis's server unless $of says
# otherwise), empty: no persistence. Extra redis-server options in
# $opt{options}. With ready => N, redis/replica-ready runs beside it and
# sets replica-priority N once it has synced (start it with
# --replica-priority 0, as redis/redis.conf ships). Waits until it has
# synced unless nowait.
sub replica_start {
    my ($name, %opt) = @_;
    my $r = $replica{$name} ||= { port => free_port(), dir => "$base/$name" };
    remove_tree($r->{dir});
    make_path($r->{dir});
    my $of = $opt{of} || redis_port();
    # A config file of its own: Sentinel rewrites it (CONFIG REWRITE) when
    # it re-points or promotes the replica.
    copy("$repo/redis/redis-test.conf", "$r->{dir}/redis.conf") or die $!;
    $r->{pid} = redis_server_start($r->{port}, $r->{dir},
        conf => "$r->{dir}/redis.conf", what => "replica $name",
        options => ['--replicaof', '127.0.0.1', $of, @{ $opt{options} || [] }]);
    $r->{ready_pid} = spawn("$r->{dir}/replica-ready.log",
        "$repo/redis/replica-ready", $opt{ready}, '-p', $r->{port})
        if defined $opt{ready};
    return $r->{port} if $opt{nowait};
    wait_until(10, sub {
        (eval { node_info($r->{port}, 'replication')->{master_link_status} }
         // '') eq 'up' }) // die "replica $name did not sync";
    return $r->{port};
}

sub replica_kill {
    my ($name) = @_;
    my $r = $replica{$name} or return;
    stop_pid($r->{pid}, signal => 'KILL');
    undef $r->{pid};
    stop_pid($r->{ready_pid}, timeout => 1);
    undef $r->{ready_pid};
}

# Sends $signal (STOP, CONT, ...) to replica $name's redis-server.
sub replica_signal {
    my ($name, $signal) = @_;
    kill $signal, $replica{$name}{pid} or die "kill $signal $name: $!";
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
    $s->{pid} = spawn("$s->{dir}/sentinel.log",
        $ENV{TEST_REDIS_SENTINEL} || 'redis-sentinel',
        "$s->{dir}/sentinel.conf");
    wait_port($s->{port}, what => "sentinel $name",
              log => "$s->{dir}/sentinel.log", pid => $s->{pid});
    # Test-only timings (Redis 7's SENTINEL DEBUG):
    # - Sentinel PINGs each node every second (PING-PERIOD) and calls it
    #   down after down-after-milliseconds without a reply. With the tests'
    #   1000 ms that leaves no margin: after a switch-master the first PING
    #   to the new primary may go out a second after the new link, so one
    #   Sentinel calls the new primary down at once and fails it over again
    #   (seen: t/060). A PING every 250 ms gives it four chances.
    # - It reads each replica's INFO (priority, offset, link) every 10 s,
    #   every second once the primary is down: the tests want what it knows
    #   to be at most a second old throughout.
    node_cmd($s->{port}, 'SENTINEL', 'DEBUG', 'PING-PERIOD', 250,
             'INFO-PERIOD', $opt{info_period} || 1000);
    return $s->{port};
}

# What Sentinel $name knows of the replica on $port (SENTINEL REPLICAS):
# a hash of its fields (flags, slave-priority, ...), or undef.
sub sentinel_replica {
    my ($name, $port) = @_;
    my $list = eval { node_cmd($sentinel{$name}{port}, 'SENTINEL', 'REPLICAS',
                               $service) } or return undef;
    for my $fields (@$list) {
        my %h = @$fields;
        return \%h if $h{port} == $port;
    }
    return undef;
}

# True when every Sentinel names $port as the primary and none is in the
# middle of a failover of it.
sub sentinel_settled {
    my ($port) = @_;
    for my $s (values %sentinel) {
        my $m = eval { node_cmd($s->{port}, 'SENTINEL', 'MASTER', $service) }
            or return 0;
        my %h = @$m;
        return 0 if $h{port} != $port || $h{flags} =~ /failover/;
    }
    return 1;
}

# Every Sentinel's log, one after the other.
sub sentinel_logs {
    my $text = '';
    for my $name (sort keys %sentinel) {
        open my $fh, '<', "$sentinel{$name}{dir}/sentinel.log" or next;
        local $/;
        $text .= "--- $name\n" . <$fh>;
    }
    return $text;
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
    $http =~ s/\$PORT\b/$e->{port}/g;
    open my $fh, '>', "$e->{dir}/conf/nginx.conf" or die $!;
    print $fh nginx_conf_text($http, root => $e->{dir});
    close $fh;
    open my $html, '>', "$e->{dir}/html/x" or die $!;
    close $html;
    nginx_prefix_start($e->{dir});
    $e->{started} = 1;
    wait_port($e->{port}, what => "nginx $name",
              log => "$e->{dir}/logs/error.log");
    return $e->{port};
}

sub edge_stop {
    my ($name) = @_;
    my $e = $edge{$name} or return;
    return unless $e->{started};
    nginx_prefix_stop($e->{dir});
    $e->{started} = 0;
}

# The text of edge $name's error log.
sub edge_error_log {
    my ($name) = @_;
    open my $fh, '<', "$edge{$name}{dir}/logs/error.log" or return '';
    local $/;
    return <$fh>;
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
        stop_pid($_->{pid}, cont => 1) for grep { $_->{pid} } values %sentinel;
        stop_pid($_->{pid}, cont => 1) for grep { $_->{pid} } values %replica;
        stop_pid($_->{ready_pid}, timeout => 1)
            for grep { $_->{ready_pid} } values %replica;
        remove_tree($base) if !$ENV{TEST_NGINX_NO_CLEAN};
        $? = $status;
    }
}

1;
