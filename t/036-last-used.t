# auth_token_last_used: nginx notes each allowed use of a token (cache hit
# or miss) in the cache zone and one worker per interval writes the notes
# to the primary (auth_token_redis_primary) with FCALL authtoken_touch,
# while lookups read a replica: last_used and last_addr reach the record,
# at most one write per token per interval, a revoked token is never
# recreated, a full notes table drops notes (counted) and never a request,
# helper processes do not flush, and a write that fails is counted and
# logged once, never a refusal.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use IO::Socket::INET;
use IO::Select;
use Digest::SHA qw(sha1_hex);

use AuthToken::TestRedis;
use AuthToken::Topology;
use AuthToken::Server;
use AuthToken::Process qw(redis_at);
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $primary = redis_start();
my $replica = replica_start('edge');

# The issuer loads the Functions library on the primary; here the test does.
my $repo = abs_path(dirname(__FILE__) . '/..');
(my $library = do { local (@ARGV, $/) = "$repo/redis/authtoken.lua"; <> })
    =~ s/'\@LIBRARY_VERSION\@'/'test'/ or die 'no version mark';
redis_cmd('FUNCTION', 'LOAD', 'REPLACE', $library);

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
my $bob   = '2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726';
my $carol = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';
seed_token($alice, uid => 7, user => 'alice', active => 1);
seed_token($bob, uid => 8, user => 'bob', active => 1);
seed_token($carol, uid => 9, user => 'carol', active => 0);

sub key_of { token_key($_[0]) }

sub config {
    my (%opt) = @_;
    my $zone = $opt{zone} || 'tokens:1m';
    my $writes = $opt{primary} // "127.0.0.1:$primary";
    return (<<"HTTP", workers => 2);
    auth_token_redis 127.0.0.1:$replica;
    auth_token_redis_primary $writes;
    auth_token_last_used_interval 1s;
    @{[ $opt{http} // "" ]}
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            auth_token_cache zone=$zone valid=30s;
            auth_token_last_used @{[ $opt{last_used} // 'on' ]};
            add_header X-Cache \$auth_token_cache_status always;
            add_header X-Pid \$pid always;
            alias html/;
        }
        location = /metrics {
            auth_token_metrics;
        }
    }
HTTP
}

sub get {
    my ($token) = @_;
    my $res = http_request('/s/x', $token ? (Authorization => "Token $token") : ());
    die 'no response' unless $res;
    return $res;
}

sub metric {
    my ($name) = @_;
    my $body = http_request('/metrics')->{body};
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}
sub notes { metric(qq(nginx_auth_token_last_used_notes_total{result="$_[0]"})) }

sub wait_for {
    my ($limit, $cond) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

# Until every worker's cache is in use (its subscription is up).
sub wait_subscribed {
    my $in_a_row = 0;
    return wait_for(5, sub {
        my $c = get('feedface' x 5)->{headers}{'x-cache'} // '';
        $in_a_row = $c eq 'BYPASS' ? 0 : $in_a_row + 1;
        $in_a_row >= 6;
    });
}

# MONITOR on the primary: every command it runs, with its time.
sub monitor_start {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$primary", Timeout => 5)
        or die "monitor: $!";
    print $s "MONITOR\r\n";
    my $ok = <$s>;
    die "monitor: $ok" unless $ok =~ /^\+OK/;
    return $s;
}
sub monitor_lines {
    my ($s, $seconds) = @_;
    my ($sel, @lines, $buf) = (IO::Select->new($s));
    my $t0 = time;
    $buf = '';
    while ((my $left = $seconds - (time - $t0)) > 0) {
        next unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or last;
        while ($buf =~ s/^([^\n]*)\n//) { push @lines, $1 }
    }
    return @lines;
}

# authtoken_touch as nginx calls it, straight on the primary.
sub touch { redis_cmd('FCALL', 'authtoken_touch', scalar(@{ $_[0] }), @{ $_[0] }, '1', @_[1 .. $#_]) }

subtest 'authtoken_touch updates existing records only, forward only, bounded' => sub {
    my $now = int time;
    my ($k1, $k2) = map { token_key(('ab' x 31) . $_) } qw(01 02);
    redis_cmd('HSET', $k1, 'uid', 1, 'user', 'x', 'active', 1, 'expires', 0);
    is_deeply(touch([$k1, $k2], $now, '10.0.0.1', $now, '10.0.0.2'), [1, 0],
              'one record updated, none renewed');
    is_deeply(redis_cmd('HMGET', $k1, 'last_used', 'last_addr'), [$now, '10.0.0.1'],
              'last_used and last_addr written');
    is(redis_cmd('EXISTS', $k2), 0, 'a missing record is not created');
    touch([$k1], $now - 100, '10.0.0.9');
    is(redis_cmd('HGET', $k1, 'last_addr'), '10.0.0.1', 'an older use does not overwrite a newer');

    redis_cmd('HSET', $k1, 'expires', $now - 1, 'renew', 3600, 'cap', 0);
    touch([$k1], $now - 2, '10.0.0.1');
    is(redis_cmd('HGET', $k1, 'expires'), $now - 1, 'an expired token stays expired');
    redis_cmd('HSET', $k1, 'expires', $now + 10, 'active', 0);
    touch([$k1], $now, '10.0.0.1');
    is(redis_cmd('HGET', $k1, 'expires'), $now + 10, 'an inactive user\'s token is not renewed');
    redis_cmd('HSET', $k1, 'active', 1, 'cap', $now + 60);
    is_deeply(touch([$k1], $now, '10.0.0.1'), [1, 1], 'a valid one is renewed');
    is(redis_cmd('HGET', $k1, 'expires'), $now + 60, 'up to its cap, not past it');
    redis_cmd('DEL', $k1);

    my @many = map { token_key($_) } 1 .. 257;
    like(eval { touch(\@many, map { ($now, 'a') } @many) } // $@, qr/REFUSED: touch takes at most 256/,
         'more than 256 tokens in one call are refused');
    like(eval { redis_cmd('FCALL', 'authtoken_touch', 1, $k1, '2', $now, 'a') } // $@,
         qr/REFUSED: touch arguments version 2/, 'another arguments version is refused');
};

nginx_start(config());
nginx_html(x => "ok\n");
ok(wait_subscribed(), 'both workers subscribed');

subtest 'a use reaches the primary: last_used and last_addr, not the replica first' => sub {
    my $t0 = int time;
    my $res = get($alice);
    is($res->{status}, 200, 'the request passes');
    ok(wait_for(4, sub { redis_cmd('HGET', key_of($alice), 'last_used') }),
       'last_used is written within the interval');
    my ($used, $addr) = @{ redis_cmd('HMGET', key_of($alice), 'last_used', 'last_addr') };
    cmp_ok($used, '>=', $t0, 'last_used is the time of the use (Unix seconds)');
    cmp_ok($used, '<=', time + 1, '... not later');
    is($addr, '127.0.0.1', 'last_addr is the client address as $remote_addr shows it');
    is(redis_cmd('HGET', key_of($alice), 'uid'), '7', 'the record is otherwise unchanged');
};

subtest 'a cache hit is noted as well as a miss' => sub {
    is(get($alice)->{headers}{'x-cache'}, 'HIT', 'alice is cached') for 1 .. 2;
    redis_cmd('HSET', key_of($alice), 'last_used', 1, 'last_addr', 'old');
    ok(wait_for(2, sub { (redis_cmd('HGET', key_of($alice), 'last_addr') // '') eq 'old' }),
       'the reset reached... the primary');
    my $res = get($alice);
    is($res->{headers}{'x-cache'}, 'HIT', 'this use is a hit');
    ok(wait_for(4, sub { (redis_cmd('HGET', key_of($alice), 'last_addr') // '') eq '127.0.0.1' }),
       'and its note is written');
};

subtest 'refused requests are not uses' => sub {
    redis_cmd('HDEL', key_of($carol), 'last_used');
    is(get($carol)->{status}, 401, 'an inactive user is refused') for 1 .. 2;
    sleep 2.5;
    is(redis_cmd('HGET', key_of($carol), 'last_used'), undef, 'and nothing is written');
};

subtest 'at most one write per token per interval, from one worker at a time' => sub {
    my $mon = monitor_start();
    # Both tokens in use all the time, through both workers.
    my $t0 = time;
    my %pids;
    my $stop = time + 4.5;
    my @lines;
    my $pid = fork // die;
    if (!$pid) {
        while (time < $stop) { get($alice); get($bob); }
        exit 0;
    }
    @lines = monitor_lines($mon, 5);
    waitpid $pid, 0;
    my @touches = grep { /"FCALL" "authtoken_touch"/ } @lines;
    for my $who ([alice => $alice], [bob => $bob]) {
        my $key = key_of($who->[1]);
        my @at = map { /^\+?(\d+\.\d+)/ ? $1 : () } grep { /"\Q$key\E"/ } @touches;
        cmp_ok(scalar @at, '>=', 3, "$who->[0] is written every interval while in use")
            or diag "writes at @at; " . scalar(@touches) . " touches: $touches[0]";
        cmp_ok(scalar @at, '<=', 6, "$who->[0]: no more than one write per interval");
        my @gaps = map { $at[$_] - $at[$_ - 1] } 1 .. $#at;
        my $min = @gaps ? (sort { $a <=> $b } @gaps)[0] : 1;
        cmp_ok($min, '>=', 0.9, "$who->[0]: successive writes at least an interval apart");
        is(scalar(grep { scalar(() = /"\Q$key\E"/g) > 1 } @touches), 0,
           "$who->[0] appears once per write");
    }
    is(scalar(grep { /authtoken_touch/ && !/"FCALL"/ } @lines), 0, 'only FCALLs touch');
    my @writes = grep { /"(HSET|HMSET|HDEL|DEL|SET)"/ && !/\[0 lua\]/ } @lines;
    is(scalar @writes, 0, 'nginx writes nothing else to the primary')
        or diag join "\n", @writes[0 .. 4];
};

subtest 'a revoked token is never recreated by a later flush' => sub {
    seed_token($bob, uid => 8, user => 'bob', active => 1);
    ok(wait_for(2, sub { redis_cmd('EXISTS', key_of($bob), ) }), 'bob exists');
    sleep 1.2;    # a flush between, so bob's next note waits for the next one
    my $flushed = notes('flushed');
    is(get($bob)->{status}, 200, 'bob is used');
    # Revoked as the issuer does: the record deleted, the digest published.
    redis_cmd('DEL', key_of($bob));
    redis_cmd('PUBLISH', 'authtoken:revocations', token_digest($bob));
    ok(wait_for(4, sub { notes('flushed') > $flushed }), 'the note is flushed');
    sleep 0.3;
    is(redis_cmd('EXISTS', key_of($bob)), 0, 'the record stays deleted');
    is(get($bob)->{status}, 401, 'and bob stays refused');
};

subtest 'a full notes table drops notes, counted, and never a request' => sub {
    nginx_stop();
    nginx_start(config(zone => 'small:32k'));
    nginx_html(x => "ok\n");
    ok(wait_subscribed(), 'subscribed');
    my @keys = map { sprintf('%040x', 0xabc000 + $_) } 1 .. 300;
    redis_pipeline(map { ['HSET', key_of($_), 'uid', 100, 'user', 'u', 'active', 1] } @keys);
    ok(wait_for(3, sub { redis_at($replica, 'EXISTS', key_of($keys[-1])) }), 'replicated');
    my ($dropped, $flushed) = (notes('dropped'), notes('flushed'));
    my $ok = 0;
    for (@keys) { $ok++ if get($_)->{status} == 200 }
    is($ok, 300, 'every request passes');
    cmp_ok(notes('dropped') - $dropped, '>=', 300 - 64, 'notes that find no slot are dropped and counted');
    ok(wait_for(4, sub { notes('flushed') - $flushed >= 1 }), 'the ones kept are flushed');
    my $written = grep { defined } map { redis_cmd('HGET', key_of($_), 'last_used') } @keys;
    is($written, notes('flushed') - $flushed, 'exactly the flushed ones are written');
};

subtest 'helper processes do not flush: one write link per worker' => sub {
    nginx_stop();
    nginx_start(config(http => 'proxy_cache_path cache keys_zone=c:1m;'));
    nginx_html(x => "ok\n");
    ok(wait_subscribed(), 'subscribed');
    my @procs = `ps -o args= --ppid ${\ nginx_pid()}`;
    is(scalar(grep { /cache (manager|loader)/ } @procs), 2, 'the cache manager and loader run');
    get($alice);
    sleep 2.5;
    my $clients = redis_cmd('CLIENT', 'LIST');
    my @nginx = grep { !/cmd=client/ && !/flags=[^ ]*[SM]/ } split /\n/, $clients;
    is(scalar @nginx, 2, 'the primary sees two connections, the workers\' write links')
        or diag $clients;
};

subtest 'a write that fails (a read-only replica) is counted and logged once' => sub {
    nginx_stop();
    nginx_start(config(primary => "127.0.0.1:$replica"));
    nginx_html(x => "ok\n");
    ok(wait_subscribed(), 'subscribed');
    my $failed = notes('failed') // 0;
    is(get($alice)->{status}, 200, 'the request passes') for 1 .. 3;
    ok(wait_for(4, sub { (notes('failed') // 0) > $failed }), 'the notes are counted failed');
    sleep 1.5;
    is(get($alice)->{status}, 200, 'requests still pass');
    my @logged = nginx_error_log() =~ /auth token last used: writing \d+ notes to redis \S+ failed: READONLY/g;
    cmp_ok(scalar @logged, '>=', 1, 'the failure is logged');
    cmp_ok(scalar @logged, '<=', 4, 'once per flush, not per note');
};

subtest 'a zone kept across a reload gets its notes table then' => sub {
    nginx_stop();
    nginx_start(config(last_used => 'off'));
    nginx_html(x => "ok\n");
    ok(wait_subscribed(), 'subscribed, without last-used tracking');
    redis_cmd('HDEL', key_of($alice), 'last_used', 'last_addr');
    is(get($alice)->{status}, 200, 'alice is used');
    sleep 1.5;
    is(redis_cmd('HGET', key_of($alice), 'last_used'), undef, 'and nothing is recorded');
    nginx_reload(config());
    ok(wait_subscribed(), 'reloaded with auth_token_last_used on, the same zone');
    is(get($alice)->{status}, 200, 'alice is used again');
    ok(wait_for(4, sub { redis_cmd('HGET', key_of($alice), 'last_used') }),
       'the kept zone got a notes table: the use is written');
    unlike(nginx_error_log(), qr/no room for the \d+-slot last-used table/, 'with room for it');
};

done_testing();
