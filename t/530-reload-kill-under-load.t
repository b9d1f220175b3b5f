# nginx reload (HUP) and a worker killed with SIGKILL while wrk drives 200
# keep-alive connections with a mix of valid, invalid (unknown and revoked)
# and inactive tokens, without and with auth_token_cache:
#
# - a valid token never gets anything but 200: every non-2xx would be a
#   wrong verdict. What a fault may cost is a connection, never an answer:
#   wrk counts a connection that nginx closed or reset under an
#   outstanding request as a socket error (read/write/connect), separately
#   from the statuses. Those are bounded by the connections the faulted
#   workers held: for SIGKILL, those of the killed worker counted just
#   before the kill; for a reload, those of the old workers (a worker that
#   shuts down gracefully finishes the request in flight, then closes the
#   keep-alive connection; its last response still said keep-alive, so wrk
#   has already sent the next request on it and sees the close as a read
#   error. Observed with nginx 1.22: nearly every connection an old worker
#   held loses one request per reload. A client that retries idempotent
#   requests on a closed keep-alive connection, as browsers do, sees none).
# - an invalid or inactive token never gets a 2xx, and always its DRF body;
# - the master respawns the killed worker, nginx still answers every class
#   right afterwards, and the error log has no [alert]/[crit]/[emerg]/[error]
#   beyond "worker process <killed> exited on signal 9" (and "shared memory
#   zone ... was locked by <killed>", should the kill land inside the cache
#   zone's lock: the master then unlocks it).
#
# Each phase is its own wrk run of a few seconds, on 127.0.0.1 only.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Load;

my $wrk = wrk_binary();
plan skip_all => "wrk not found (apt-get install wrk)"
    unless system("command -v $wrk >/dev/null 2>&1") == 0;

my $DURATION = $ENV{TEST_LOAD_DURATION} || 6;   # seconds per wrk run
my $CONNS = 200;

redis_start();

# 40 active users, 10 inactive, 10 revoked tokens, 40 never issued.
my (@valid, @inactive, @revoked, @unknown);
for my $i (1 .. 40) {
    my $k = sprintf '%040x', 0xa11ce000 + $i;
    seed_token($k, uid => $i, user => "u$i", active => 1);
    push @valid, $k;
}
for my $i (1 .. 10) {
    my $k = sprintf '%040x', 0x1dead000 + $i;
    seed_token($k, uid => 100 + $i, user => "off$i", active => 0);
    push @inactive, $k;
}
for my $i (1 .. 10) {
    push @revoked, sprintf '%040x', 0x4e40c000 + $i;
}
for my $i (1 .. 40) {
    push @unknown, join '', map { sprintf '%02x', int rand 256 } 1 .. 20;
}

sub config {
    my ($cache) = @_;
    return <<"HTTP";
    auth_token_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    $cache
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        keepalive_requests 1000000;
        location /s/ {
            auth_token on;
            # a loaded machine must not turn slow lookups into 503s: this
            # test is about faults of nginx, not about latency
            auth_token_timeout 5s;
            add_header X-Class \$http_x_class always;
            alias html/;
        }
    }
HTTP
}

sub get {
    my ($key) = @_;
    my $res = http_request('/s/ok', Authorization => "Token $key",
                           -timeout => 10);
    return $res || { status => 0, body => '' };
}

# Worker processes that are not shutting down (old workers of a reload keep
# running until their connections are done).
sub live_workers {
    my @w;
    my @pids = nginx_workers();   # copies: nginx_workers() returns $1s
    for my $pid (@pids) {
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        push @w, $pid if $cmd =~ /worker process/ && $cmd !~ /shutting down/;
    }
    return @w;
}

sub wait_for {
    my ($cond, $timeout) = @_;
    my $t0 = time;
    while (time - $t0 < $timeout) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

# wrk's connections that no worker held when they were counted (still in
# the listen queue on a slow machine): each may belong to the faulted worker.
sub unplaced {
    my ($placed) = @_;
    return $placed < $CONNS ? $CONNS - $placed : 0;
}

sub socket_errors {
    my ($r) = @_;
    my $e = $r->{errors};
    return $e->{connect} + $e->{read} + $e->{write};
}

sub describe {
    my ($r) = @_;
    my $e = $r->{errors};
    return sprintf "%d requests; socket errors connect %d read %d write %d "
                 . "timeout %d; %s", $r->{requests}, $e->{connect}, $e->{read},
                 $e->{write}, $e->{timeout},
                 join(', ', map { "$_: $r->{counts}{$_}" }
                            sort keys %{ $r->{counts} });
}

# The verdicts of one wrk run: the promise, class by class.
sub check_verdicts {
    my ($r, $what) = @_;
    my $valid = class_counts($r, 'valid');
    my @wrong = grep { $_ ne '200' } sort keys %$valid;
    ok(!@wrong, "$what: every answer to a valid token is 200")
        or diag("valid: " . join ', ', map { "$_ x$valid->{$_}" } @wrong);
    ok(($valid->{200} // 0) >= 100,
       "$what: load was applied (" . ($valid->{200} // 0) . " valid requests)");
    for my $class (qw(invalid inactive)) {
        my $c = class_counts($r, $class);
        my $want = $class eq 'invalid' ? '401-invalid' : '401-inactive';
        my @twoxx = grep { /^2/ } keys %$c;
        ok(!@twoxx, "$what: no 2xx for an $class token")
            or diag("$class: " . join ', ', map { "$_ x$c->{$_}" } @twoxx);
        my @other = grep { $_ ne $want } sort keys %$c;
        ok(!@other && ($c->{$want} // 0) > 0,
           "$what: every $class token gets $want")
            or diag("$class: " . join ', ', map { "$_ x$c->{$_}" } sort keys %$c);
    }
    my $unmatched = class_counts($r, '?');
    ok(!%$unmatched, "$what: every response carries its class")
        or diag(join ', ', map { "$_ x$unmatched->{$_}" } keys %$unmatched);
}

sub run_mode {
    my ($name, $cache) = @_;

    nginx_start(config($cache), workers => 2, log_level => 'notice',
                worker_connections => 2048);
    my $root = AuthToken::Server::_root();
    my $port = nginx_port();
    open my $fh, '>', "$root/html/ok" or die;
    print $fh "ok\n";
    close $fh;

    # Revoked tokens: known (and cached, with a cache) first, then gone.
    for my $k (@revoked) {
        seed_token($k, uid => 200, user => 'revoked', active => 1);
        get($k) for 1 .. 4;
        redis_cmd('DEL', token_key($k));
        redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($k));
    }
    my $ready = wait_for(sub {
        get($valid[0])->{status} == 200 && get($revoked[0])->{status} == 401
    }, 5);
    ok($ready, "$name: nginx answers before the load");

    my $tokens = write_tokens("$root/tokens",
        (map { [valid => $_] } @valid), (map { [invalid => $_] } @unknown),
        (map { [invalid => $_] } @revoked), (map { [inactive => $_] } @inactive));
    my $url = "http://127.0.0.1:$port/s/ok";

    # ---- reloads
    my $h = wrk_start(url => $url, tokens => $tokens, duration => $DURATION,
                      connections => $CONNS, out => "$root/wrk-reload.out");
    sleep 1.5;
    my ($held_reload, $reloads) = (0, 0);
    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
    for my $i (1 .. 3) {
        my @old = live_workers();
        # every connection wrk has is (or is about to be) an old worker's
        my $held = 0;
        $held += worker_connections($_, $port) for @old;
        $held_reload += $held + unplaced($held);
        my $out = `$nginx -p $root/ -c conf/nginx.conf -s reload 2>&1`;
        is($?, 0, "$name: nginx -s reload $i") or diag($out);
        $reloads++;
        my $switched = wait_for(sub {
            my %old = map { $_ => 1 } @old;
            my @new = live_workers();
            @new == 2 && !grep { $old{$_} } @new;
        }, 10);
        ok($switched, "$name: reload $i: two new workers");
        sleep 0.8;
    }
    my $r = wrk_wait($h);
    note("$name, $reloads reloads: " . describe($r));
    check_verdicts($r, "$name, reloads");
    cmp_ok(socket_errors($r), '<=', $held_reload,
           "$name, reloads: connections lost (" . socket_errors($r)
           . ") no more than the old workers held ($held_reload)");
    ok(wait_for(sub { nginx_workers() == 2 }, 10),
       "$name: the old workers are gone after the load");

    # ---- SIGKILL of a worker
    $h = wrk_start(url => $url, tokens => $tokens, duration => $DURATION,
                   connections => $CONNS, out => "$root/wrk-kill.out");
    sleep 2;
    my %held = map { $_ => worker_connections($_, $port) } live_workers();
    my ($victim) = sort { $held{$b} <=> $held{$a} } keys %held;
    die "$name: no live worker to kill (workers: @{[nginx_workers()]})"
        unless defined $victim;
    my $held_kill = worker_connections($victim, $port);
    $held_kill = $held{$victim} if $held{$victim} > $held_kill;
    my $placed = 0;
    $placed += $_ for values %held;
    # a connection no worker had accepted yet may still land on the victim
    $held_kill += unplaced($placed);
    note("$name: connections per worker before the kill: "
         . join(', ', map { "$_: $held{$_}" } sort keys %held)
         . "; the kill may cost $held_kill");
    kill 'KILL', $victim;
    my $respawned = wait_for(sub {
        my @w = live_workers();
        @w == 2 && !grep { $_ == $victim } @w;
    }, 10);
    ok($respawned, "$name: the master respawned the killed worker $victim");
    $r = wrk_wait($h);
    note("$name, SIGKILL of a worker holding $held_kill connections: "
         . describe($r));
    check_verdicts($r, "$name, kill");
    cmp_ok(socket_errors($r), '<=', $held_kill,
           "$name, kill: connections lost (" . socket_errors($r)
           . ") no more than the killed worker held ($held_kill)");

    # ---- afterwards
    my $after_ok = 1;
    for (1 .. 10) {   # new connections each: both workers answer
        $after_ok &&= get($valid[$_ % @valid])->{status} == 200;
        my $res = get($unknown[$_ % @unknown]);
        $after_ok &&= $res->{status} == 401
                      && $res->{body} eq '{"detail":"Invalid token."}';
        $res = get($inactive[$_ % @inactive]);
        $after_ok &&= $res->{status} == 401
                      && $res->{body} eq '{"detail":"User inactive or deleted."}';
    }
    ok($after_ok, "$name: nginx answers every class right after the faults");

    my $log = nginx_error_log();
    my @bad = grep {
        !/worker process $victim exited on signal 9/
        && !/shared memory zone "[^"]*" was locked by $victim\b/
    } log_lines($log, qw(alert crit emerg error));
    ok(!@bad, "$name: no [alert]/[crit]/[emerg]/[error] but the killed worker's")
        or diag(join "\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]);
    my $exited = () = $log =~ /worker process $victim exited on signal 9/g;
    is($exited, 1, "$name: the master logged the killed worker's exit");

    nginx_stop();
}

run_mode('no cache', '');
run_mode('cache', 'auth_token_cache zone=tokens:1m valid=30s invalid=5s;');

done_testing();
