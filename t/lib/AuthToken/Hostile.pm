package AuthToken::Hostile;

# Helpers for the hostile-input, fault and durability tests (t/50*.t,
# t/51*.t, t/52*.t): raw HTTP (bytes exactly as given, no client library
# to "fix" them), keep-alive request loops, the whole Redis keyspace as
# text (to look for secrets in clear), and error-log checks.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(decode_base64url);
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup;
use AuthToken::Process qw(wait_until);
use AuthToken::TestRedis;

use Exporter 'import';
our @EXPORT = qw(raw_http raw_connect ka_request parse_response
                 bad_log_lines redis_snapshot redis_everything
                 find_in_clear wait_until keyspace_problems
                 late_script_proxy);

# Connects to 127.0.0.1:$port.
sub raw_connect {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or die "connect to $port: $!";
    binmode $s;
    $s->autoflush(1);
    return $s;
}

# Parses one response out of $buf: (response, bytes used) or () when the
# buffer does not hold a whole one yet. A response without Content-Length
# needs $eof (read until close).
sub parse_response {
    my ($buf, $eof) = @_;
    my $end = index($buf, "\r\n\r\n");
    return () if $end < 0;
    my $head = substr($buf, 0, $end);
    return () unless $head =~ m{^HTTP/1\.\d (\d+)};
    my $status = $1 + 0;
    my %headers;
    for my $line (split /\r\n/, $head) {
        $headers{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }
    my $start = $end + 4;
    my $body;
    if (defined $headers{'content-length'}) {
        my $len = $headers{'content-length'};
        return () if length($buf) < $start + $len;
        $body = substr($buf, $start, $len);
        $start += $len;
    } elsif ($headers{'transfer-encoding'}
             && $headers{'transfer-encoding'} =~ /chunked/i) {
        $body = '';
        my $pos = $start;
        while (1) {
            my $nl = index($buf, "\r\n", $pos);
            return () if $nl < 0;
            my $size = hex substr($buf, $pos, $nl - $pos);
            return () if length($buf) < $nl + 2 + $size + 2;
            $body .= substr($buf, $nl + 2, $size);
            $pos = $nl + 2 + $size + 2;
            last if $size == 0;
        }
        $start = $pos;
    } else {
        return () unless $eof;
        $body = substr($buf, $start);
        $start = length $buf;
    }
    return ({ status => $status, headers => \%headers, body => $body },
            $start);
}

# Sends $bytes as they are on a new connection and reads until the server
# closes it (or $timeout): the first response, with {elapsed} and
# {closed} (the server closed the connection). undef if nothing parsable
# came back.
sub raw_http {
    my ($port, $bytes, $timeout) = @_;
    $timeout ||= 5;
    my $s = raw_connect($port);
    my $t0 = time;
    # A server may answer and close before reading everything: ignore
    # EPIPE and keep what was answered.
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($s, $bytes, 65536, $off);
        last unless $n;
        $off += $n;
    }
    my $sel = IO::Select->new($s);
    my ($buf, $eof) = ('', 0);
    while (time - $t0 < $timeout) {
        last unless $sel->can_read($timeout - (time - $t0));
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!$n) { $eof = 1; last; }
    }
    close $s;
    my ($res) = parse_response($buf, $eof);
    return undef unless $res;
    $res->{elapsed} = time - $t0;
    $res->{closed} = $eof;
    $res->{raw} = $buf;
    return $res;
}

# One request on a kept-alive socket; returns the parsed response (undef
# on timeout or close).
sub ka_request {
    my ($s, $request, $timeout) = @_;
    $timeout ||= 5;
    print $s $request;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $t0 = time;
    while (time - $t0 < $timeout) {
        my ($res) = parse_response($buf, 0);
        return $res if $res;
        return undef unless $sel->can_read($timeout - (time - $t0));
        my $n = sysread($s, $buf, 65536, length $buf);
        return undef unless $n;
    }
    return undef;
}

# Lines of an nginx error log (or any log) that must never appear.
sub bad_log_lines {
    my ($log) = @_;
    return grep { /\[(alert|crit|emerg)\]|signal \d+|exited on|core dumped/ }
           split /\n/, $log;
}

# Every key with its type and full value, as one sorted text per key:
# "key type value..." — to compare the keyspace before and after. Leaves
# out authtoken:heartbeat, which a running authtokend rewrites every
# second by design (redis/SCHEMA.md).
# Binary values (schema version 2: a user record's `token` is the digest's
# 32 bytes, `token_sealed` bytes) rendered as text: the digest as the hex a
# token record's key spells, any other value with a byte outside printable
# ASCII as "bytes:<hex>" (so a key stored raw would show as its hex).
sub _printable {
    my ($field, $value) = @_;
    return unpack('H*', $value) if $field eq 'token' && length($value) == 32;
    return 'bytes:' . unpack('H*', $value) if $value =~ /[^\x20-\x7e]/;
    return $value;
}

sub redis_snapshot {
    my %snap;
    my $cursor = 0;
    do {
        my $r = redis_cmd('SCAN', $cursor, 'COUNT', 1000);
        $cursor = $r->[0];
        for my $key (grep { $_ ne 'authtoken:heartbeat' } @{ $r->[1] }) {
            my $type = redis_cmd('TYPE', $key);
            my @v;
            if ($type eq 'string') {
                @v = (redis_cmd('GET', $key));
            } elsif ($type eq 'hash') {
                my %h = @{ redis_cmd('HGETALL', $key) };
                @v = map { "$_=" . _printable($_, $h{$_}) } sort keys %h;
            } elsif ($type eq 'set') {
                @v = sort @{ redis_cmd('SMEMBERS', $key) };
            } elsif ($type eq 'zset') {
                @v = @{ redis_cmd('ZRANGE', $key, 0, -1, 'WITHSCORES') };
            } elsif ($type eq 'list') {
                @v = @{ redis_cmd('LRANGE', $key, 0, -1) };
            }
            $snap{$key} = join "\x1f", $type, @v;
        }
    } while ($cursor ne '0');
    return \%snap;
}

# The whole keyspace as one string (keys and values), for searching.
sub redis_everything {
    my $snap = redis_snapshot();
    return join "\n", map { "$_\x1f$snap->{$_}" } sort keys %$snap;
}

# Which of the secrets occur in $text (as they are, not as digests).
sub find_in_clear {
    my ($text, @secrets) = @_;
    return grep { index($text, $_) >= 0 } @secrets;
}

# The issuer's invariants over the whole keyspace (redis/SCHEMA.md); returns
# the list of violations (empty = consistent). $opt{auto_token}: every
# user must have a token.
sub keyspace_problems {
    my (%opt) = @_;
    my $snap = redis_snapshot();
    my @p;
    my %hash = map {
        my ($type, @v) = split /\x1f/, $snap->{$_}, -1;
        $type eq 'hash' ? ($_ => { map { split /=/, $_, 2 } @v }) : ()
    } keys %$snap;
    my %uids = map { $_ => 1 } @{ redis_cmd('ZRANGE', 'authtoken:users', 0, -1) };
    for my $k (sort keys %$snap) {
        if ($k =~ /^authtoken:username:(.*)\z/s) {
            my $name = $1;
            my $uid = redis_cmd('GET', $k);
            my $u = $hash{"authtoken:user:$uid"};
            push @p, "$k -> $uid has no user record" unless $u;
            push @p, "$k -> $uid names another user" if $u && $u->{username} ne $name;
            push @p, "$k -> $uid not in authtoken:users" unless $uids{$uid};
        } elsif ($k =~ /^authtoken:user:(\d+)\z/) {
            my $uid = $1;
            my $u = $hash{$k};
            my $back = redis_cmd('GET', "authtoken:username:$u->{username}") // '';
            push @p, "$k has no username key" unless $back eq $uid;
            push @p, "$k not in authtoken:users" unless $uids{$uid};
            if (defined $u->{token}) {
                my $t = $hash{ token_key($u->{token}) };
                push @p, "$k: its token record is missing" unless $t;
                push @p, "$k: its token record is not its own"
                    if $t && ($t->{uid} ne $uid || $t->{user} ne $u->{username}
                              || $t->{active} ne $u->{is_active});
                push @p, "$k: token without token_sealed" unless $u->{token_sealed};
            } elsif ($opt{auto_token}) {
                push @p, "$k has no token (auto_create_token is on)";
            }
        } elsif ($k =~ /^authtoken:token:([A-Za-z0-9_-]{43})\z/) {
            my $digest = unpack 'H*', decode_base64url($1);
            my $t = $hash{$k};
            my $u = $hash{"authtoken:user:" . ($t->{uid} // '')};
            push @p, "$k: no such user $t->{uid}" unless $u;
            push @p, "$k: the user's current token is another"
                if $u && ($u->{token} // '') ne $digest;
        } elsif ($k =~ /^authtoken:token:/) {
            push @p, "$k: not schema version 3's name of a token record";
        }
    }
    for my $uid (keys %uids) {
        push @p, "authtoken:users has $uid without a record"
            unless $hash{"authtoken:user:$uid"};
    }
    return @p;
}

# A TCP proxy in front of Redis for one client connection that passes
# everything through at once until the client calls a function (FCALL),
# then holds the rest of what the client sends until the client has
# hung up, and only then hands it to Redis: a command stuck in transit (or
# in a stalled Redis's socket buffer) while its sender gave up. Returns
# (port, pid); the proxy exits by itself once Redis has answered the held
# bytes, or after 10 s. Redis's answers to held bytes go nowhere.
sub late_script_proxy {
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                       Listen => 1, ReuseAddr => 1)
        or die "listen: $!";
    my $port = $listen->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid) {
        AuthToken::Cleanup::track($pid);    # killed at the end if still up
        return ($port, $pid);
    }

    local $SIG{ALRM} = sub { exit 0 };
    alarm 10;
    my $client = $listen->accept or exit 1;
    my $redis = raw_connect(redis_port());
    my ($held, $holding) = ('', 0);
    my $sel = IO::Select->new($client, $redis);
    while (1) {
        for my $fh ($sel->can_read) {
            my $n = sysread($fh, my $buf, 65536);
            if ($fh == $redis) {
                exit 0 unless $n;
                syswrite($client, $buf) unless $holding;
                next;
            }
            if (!$n) {                    # the client gave up: deliver late
                syswrite($redis, $held);
                $sel->remove($client);
                IO::Select->new($redis)->can_read(5);
                exit 0;
            }
            $holding ||= $buf =~ /\r\nFCALL\r\n/i;
            if ($holding) {
                $held .= $buf;
            } else {
                syswrite($redis, $buf);
            }
        }
    }
}

1;

