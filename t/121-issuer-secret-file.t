# The secret file that seals every stored token key: authtokend and
# authtokenctl refuse a symbolic link (O_NOFOLLOW) and a file owned by
# another user; the secret is kept out of core dumps (every copy of its
# bytes in the daemon's memory lies in a MADV_DONTDUMP mapping); and
# --create-secret refuses to make a new secret when Redis already holds
# tokens sealed under one (each of them would stop working).
use strict;
use warnings;
no warnings "portable";

use File::Temp qw(tempdir);
use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Process;

my $dir = issuer_setup();
my $secret = $ENV{AUTHTOKEN_SECRET_FILE};
my $bin = ($ENV{AUTHTOKEN_BUILD_DIR} || 'build') . '/authtokend';

# Runs authtokend until it exits or 3 s pass; returns (exit code, output).
sub daemon_once {
    my (@flags) = @_;
    my $log = "$dir/daemon-once.log";
    unlink $log;
    my $pid = spawn($log, $bin, '--listen', '127.0.0.1:0', @flags);
    my $status = wait_exit($pid, 3);
    my $code = defined $status ? $status >> 8 : -1;
    stop_pid($pid) unless defined $status;
    open my $fh, '<', $log or return ($code, '');
    local $/;
    return ($code, <$fh> // '');
}

# A symbolic link to a perfectly good secret.
symlink($secret, "$dir/link") or die "symlink: $!";
my ($code, $out) = daemon_once('--secret-file', "$dir/link");
is($code, 1, 'authtokend refuses a secret file that is a symbolic link');
like($out, qr{secret file \Q$dir\E/link is a symbolic link}, 'and says so');
my ($c, $o, $e) = ctl('--secret-file', "$dir/link", 'users');
is($c, 1, 'authtokenctl refuses it too');
like($e, qr/is a symbolic link/, 'with the same reason');

# A file owned by someone else.
my $foreign;
if ($> == 0) {
    $foreign = "$dir/foreign";
    open my $fh, '>', $foreign or die;
    print $fh 'x' x 32;
    close $fh;
    chmod 0600, $foreign;
    chown 65534, 65534, $foreign or die "chown: $!";
} else {
    ($foreign) = grep { -f $_ && (stat $_)[4] != $> } qw(/etc/hostname /etc/passwd);
}
($code, $out) = daemon_once('--secret-file', $foreign);
is($code, 1, 'authtokend refuses a secret file owned by another user');
like($out, qr{secret file \Q$foreign\E belongs to uid \d+, not to the user running},
     'naming the owner');

# The secret's bytes in the running daemon: only in MADV_DONTDUMP memory.
ctl_ok({ stdin => "pw\n" }, 'createuser', 'alice', '--password-stdin');
authtokend_start('--max-connections', '4', '--threads', '1');
my ($s) = obtain_direct('alice', 'pw');
is($s, 200, 'the daemon seals and unseals with the secret');
my $bytes = do { open my $fh, '<:raw', $secret or die; local $/; <$fh> };
is(length $bytes, 32, 'the secret has 32 bytes');
{
    my $pid = authtokend_pid();
    open my $smaps, '<', "/proc/$pid/smaps" or die "smaps: $!";
    my (@maps, $cur);
    while (<$smaps>) {
        if (/^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/) {
            $cur = { from => hex $1, to => hex $2, perms => $3, name => $4,
                     dd => 0 };
            push @maps, $cur;
        } elsif (/^VmFlags:(.*)$/) {
            $cur->{dd} = $1 =~ /\bdd\b/ ? 1 : 0;
        }
    }
    open my $mem, '<:raw', "/proc/$pid/mem" or die "mem: $!";
    my ($found, @exposed) = (0);
    for my $m (@maps) {
        next unless $m->{perms} =~ /^r/;
        next if $m->{name} =~ /^\[(?:vvar|vsyscall|vdso)\]$/;
        next if $m->{to} - $m->{from} > 512 << 20;
        my $data = '';
        sysseek($mem, $m->{from}, 0) or next;
        my $n = sysread($mem, $data, $m->{to} - $m->{from});
        next unless $n;
        my $at = -1;
        while (($at = index($data, $bytes, $at + 1)) >= 0) {
            $found++;
            push @exposed, sprintf('%x %s', $m->{from} + $at, $m->{name} || 'anon')
                unless $m->{dd};
        }
    }
    ok($found > 0, "the secret is found in the daemon's memory ($found copies)");
    is("@exposed", '', 'every copy is in memory excluded from core dumps');
}
authtokend_stop();

# --create-secret with tokens already in Redis: refused, nothing created.
ok(scalar @{ redis_cmd('KEYS', 'authtoken:token:*') } > 0, 'Redis holds a token');
($code, $out) = daemon_once('--secret-file', "$dir/new-secret", '--create-secret');
is($code, 1, '--create-secret refuses when Redis holds sealed tokens');
like($out, qr/Redis already holds tokens sealed under a secret/, 'and says why');
ok(!-e "$dir/new-secret", 'no secret file was created');

redis_cmd('FLUSHALL');
authtokend_start('--secret-file', "$dir/new-secret", '--create-secret');
ok(-s "$dir/new-secret" == 32, 'on an empty Redis it creates the secret');
authtokend_stop();

done_testing();
