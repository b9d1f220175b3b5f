package AuthToken::RedisProxy;

# A scripted stand-in between nginx and the test's real redis-server, for
# the tests where reply timing must be forced. It listens on a free
# 127.0.0.1 port, opens one connection to Redis per client connection and
# passes bytes both ways at once, until told otherwise through a pipe:
#
#   proxy_delay($proxy, $ms, $text)  the next command a client sends that
#       contains $text reaches Redis at once, but what Redis sends back on
#       that connection from then on is held for $ms (a slow reply, in
#       order: later replies on that connection wait behind it).
#   proxy_hold($proxy, $ms, $text)   the next command a client sends that
#       contains $text (and whatever that client sends after it) reaches
#       Redis only $ms later: e.g. a SUBSCRIBE that Redis has not seen yet.
#   proxy_blackhole($proxy, $text)   every connection whose client has sent
#       $text (e.g. "SUBSCRIBE") stops passing anything either way and
#       stays open: a half-open connection, as a NAT or a balancer that
#       dropped its state leaves it. New connections pass as usual.
#
# The proxy is a forked child; it stops with the test (END) or proxy_stop.

use strict;
use warnings;

use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Time::HiRes qw(time);

use AuthToken::TestRedis qw(redis_port);

use Exporter 'import';
our @EXPORT = qw(proxy_start proxy_stop proxy_delay proxy_hold proxy_blackhole);

my @started;
my $owner = $$;

sub proxy_start {
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                       Listen => 64, ReuseAddr => 1)
        or die "listen: $!";
    pipe(my $ctl_r, my $ctl_w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $ctl_r;
        my $proxy = { port => $listen->sockport, pid => $pid, ctl => $ctl_w };
        close $listen;
        $ctl_w->autoflush(1);
        push @started, $proxy;
        return $proxy;
    }
    close $ctl_w;
    _serve($listen, $ctl_r, redis_port());
    POSIX::_exit(0);
}

# One control line to the proxy ("verb ms text"), then a moment for it to
# read it.
sub _tell {
    my ($proxy, @words) = @_;
    print { $proxy->{ctl} } "@words\n";
    select undef, undef, undef, 0.05;
}

sub proxy_delay     { _tell($_[0], delay => $_[1], $_[2]) }
sub proxy_hold      { _tell($_[0], hold => $_[1], $_[2]) }
sub proxy_blackhole { _tell($_[0], blackhole => 0, $_[1]) }

sub proxy_stop {
    my ($proxy) = @_;
    return unless $proxy->{pid};
    kill 'KILL', $proxy->{pid};
    waitpid($proxy->{pid}, 0);
    delete $proxy->{pid};
}

END {
    local $?;    # keep the test's exit status (proxy_stop's waitpid sets $?)
    if ($$ == $owner) { proxy_stop($_) for @started }
}

# Bytes held one way ($p->{$held}, to $p->{$to}) go out once their time
# ($p->{$until}) has come; until then the select waits no longer than that.
sub _release {
    my ($p, $now, $wait, $until, $held, $to) = @_;
    return unless $p->{$until};
    my $left = $p->{$until} - $now;
    if ($left <= 0) {
        syswrite($p->{$to}, $p->{$held}) if length $p->{$held};
        $p->{$held} = '';
        $p->{$until} = 0;
    } elsif ($left < $$wait) {
        $$wait = $left;
    }
}

# The child: one select loop over the listener, the control pipe and every
# pair of sockets.
sub _serve {
    my ($listen, $ctl, $redis_port) = @_;
    my $sel = IO::Select->new($listen, $ctl);
    my (%peer, %pair, @delays, @holds);
    my $ctl_buf = '';
    while (1) {
        my $now = time;
        my $wait = 1;
        for my $p (values %pair) {
            _release($p, $now, \$wait, 'up_until', 'up_held', 'redis');
            _release($p, $now, \$wait, 'held_until', 'held', 'client');
        }
        for my $fh ($sel->can_read($wait)) {
            if ($fh == $listen) {
                my $client = $listen->accept or next;
                my $redis = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$redis_port")
                    or do { close $client; next };
                my $p = { client => $client, redis => $redis, held => '',
                          held_until => 0, up_held => '', up_until => 0,
                          sent => '', dead => 0 };
                $pair{"$client"} = $p;
                $peer{"$client"} = $p;
                $peer{"$redis"} = $p;
                $sel->add($client, $redis);
                next;
            }
            if ($fh == $ctl) {
                my $n = sysread($ctl, $ctl_buf, 4096, length $ctl_buf);
                POSIX::_exit(0) unless $n;
                while ($ctl_buf =~ s/^(\w+) (\d+) (.*)\n//) {
                    if ($1 eq 'delay') {
                        push @delays, [$2 / 1000, $3];
                    } elsif ($1 eq 'hold') {
                        push @holds, [$2 / 1000, $3];
                    } else {
                        for my $p (values %pair) {
                            $p->{dead} = 1 if index($p->{sent}, $3) >= 0;
                        }
                    }
                }
                next;
            }
            my $p = $peer{"$fh"} or next;
            my $n = sysread($fh, my $buf, 65536);
            if (!$n) {
                $sel->remove($p->{client}, $p->{redis});
                delete $peer{"$p->{client}"};
                delete $peer{"$p->{redis}"};
                delete $pair{"$p->{client}"};
                close $p->{client};
                close $p->{redis};
                next;
            }
            next if $p->{dead};
            if ($fh == $p->{client}) {
                $p->{sent} .= $buf if length($p->{sent}) < 65536;
                for my $i (0 .. $#holds) {
                    next unless index($buf, $holds[$i][1]) >= 0;
                    $p->{up_until} = time + $holds[$i][0];
                    splice @holds, $i, 1;
                    last;
                }
                if ($p->{up_until}) {
                    $p->{up_held} .= $buf;
                    next;
                }
                for my $i (0 .. $#delays) {
                    next unless index($buf, $delays[$i][1]) >= 0;
                    $p->{held_until} = time + $delays[$i][0];
                    splice @delays, $i, 1;
                    last;
                }
                syswrite($p->{redis}, $buf);
            } elsif ($p->{held_until}) {
                $p->{held} .= $buf;
            } else {
                syswrite($p->{client}, $buf);
            }
        }
    }
}

1;
