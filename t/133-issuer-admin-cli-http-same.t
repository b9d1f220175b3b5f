# authtokenctl and the staff admin API run one code path (UserAdmin,
# src/issuer/admin): each operation done once by each, on two users set up
# alike, leaves the same Redis state (flags, password hasher, token record,
# revocation), the same refusals leave Redis untouched, and both write the
# same audit line but for who did it and through which front, in DRF's
# one-token mode and with tokens_per_user = many. Requests go
# straight to authtokend, which checks the caller's token itself (t/132
# covers the same API through nginx).
use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP qw(decode_json encode_json);

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
authtokend_start();

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $me = getpwuid($<);

ctl_ok({ stdin => "root-pass\n" }, 'createuser', 'root', '--superuser', '--password-stdin');
my $root = token_of('root');

sub api {
    my ($method, $path, $json) = @_;
    my $res = $http->request($method, 'http://127.0.0.1:' . authtokend_port() . $path,
        { headers => { Authorization => "Token $root",
                       defined $json ? ('Content-Type' => 'application/json') : () },
          defined $json ? (content => encode_json($json)) : () });
    my $body = eval { decode_json($res->{content}) } // $res->{content};
    return ($res->{status}, $body);
}

# The user as Redis holds it, without what differs between two users by
# nature (name, uid, dates, salt, key): flags, email, the password's hasher
# and whether it is usable, and the active and expires of its token record
# and of each record in its set of tokens (tokens_per_user = many).
sub state_of {
    my ($name) = @_;
    my $uid = redis_cmd('GET', "authtoken:username:$name");
    return 'absent' unless defined $uid;
    my %u = @{ redis_cmd('HGETALL', "authtoken:user:$uid") };
    my %s = map { $_ => $u{$_} } grep { exists $u{$_} } qw(is_active is_staff is_superuser email);
    $s{password} = $u{password} =~ /^!/ ? 'unusable' : join('$', (split /\$/, $u{password})[0, 1]);
    if ($u{token}) {
        # Schema version 2 keeps the user's digest as its 32 bytes; the
        # record's key spells it in hex.
        my $digest = length($u{token}) == 32 ? unpack('H*', $u{token}) : $u{token};
        my %t = @{ redis_cmd('HGETALL', token_key($digest)) };
        if (%t) {
            $s{token} = "active=$t{active} expires=$t{expires} user=" . ($t{user} eq $name ? 'same' : 'other');
        } else {
            fail("the token record of $name exists");
            $s{token} = 'record-missing';
        }
    } else {
        $s{token} = 'none';
    }
    # tokens_per_user = many: the records of the user's set, oldest first
    # (its members are the records' hex digests).
    $s{tokens} = join(',', map {
        my %t = @{ redis_cmd('HGETALL', token_key($_)) };
        %t ? "active=$t{active}/expires=$t{expires}" : 'record-missing'
    } @{ redis_cmd('ZRANGE', "authtoken:user-tokens:$uid", 0, -1) }) || 'none';
    $s{in_users} = redis_cmd('ZSCORE', 'authtoken:users', $uid) // 'no';
    $s{in_users} = 'yes' if $s{in_users} ne 'no';
    return join(' ', map { "$_=$s{$_}" } sort keys %s);
}

# Every key and value in Redis but the counters that move with any write.
sub snapshot {
    my @keys = sort grep { !/^authtoken:(?:revocation-seq|heartbeat|throttle:)/ }
               @{ redis_cmd('KEYS', 'authtoken:*') };
    return join("\n", map { my $k = $_; "$k " . join(',',
        map { ref $_ ? @$_ : $_ } (redis_cmd('TYPE', $k) eq 'hash' ? redis_cmd('HGETALL', $k)
                                  : redis_cmd('TYPE', $k) eq 'zset' ? redis_cmd('ZRANGE', $k, 0, -1)
                                  : redis_cmd('GET', $k))) } @keys);
}

# The audit line an operation on $name left, with the actor, the front and
# the name made generic.
sub last_audit {
    my ($text, $name) = @_;
    my @lines = $text =~ /audit: (.*)$/mg;
    my $line = $lines[-1] // '';
    $line =~ s/^actor="[^"]*" via=\w+ //;
    $line =~ s/user="\Q$name\E"/user="NAME"/;
    return $line;
}

my $seq = 0;
sub pair { $seq++; return ("cli$seq", "api$seq") }

sub same {
    my ($c, $h, $what, $cli_err) = @_;
    is(state_of($c), state_of($h), "$what: the same Redis state (" . state_of($c) . ')');
    if (defined $cli_err) {
        my $cli = last_audit($cli_err, $c);
        my $api = last_audit(authtokend_log(), $h);
        is($cli, $api, "$what: the same audit line ($api)");
        like($cli_err, qr/^authtokenctl: audit: actor="\Q$me\E" via=cli /m,
             "$what: the CLI names the OS user");
    }
}

my ($c, $h) = pair();
my ($code, $out, $err) = ctl({ stdin => "pw-$c\n" }, 'createuser', $c, '--password-stdin', '--email', 'a@example.com');
is($code, 0, 'CLI createuser');
my ($s) = api('POST', '/api-admin/users/', { username => $h, password => "pw-$h", email => 'a@example.com' });
is($s, 201, 'HTTP create');
same($c, $h, 'create with a password', $err);
unlike($err, qr/pw-\Q$c\E/, "the CLI's audit line holds no password");
is(AuthToken::Issuer::obtain_token($c, "pw-$c"), token_of($c), 'the CLI user logs in');
is(AuthToken::Issuer::obtain_token($h, "pw-$h"), token_of($h), 'the API user logs in');

my ($c2, $h2) = pair();
(undef, undef, $err) = ctl('createuser', $c2, '--staff');
api('POST', '/api-admin/users/', { username => $h2, is_staff => JSON::PP::true });
same($c2, $h2, 'create staff without a password', $err);

my ($c3, $h3) = pair();
(undef, undef, $err) = ctl('createuser', $c3, '--superuser', '--inactive');
api('POST', '/api-admin/users/', { username => $h3, is_superuser => JSON::PP::true, is_active => JSON::PP::false });
same($c3, $h3, 'create an inactive superuser', $err);

{
    local $ENV{AUTHTOKEN_AUTO_CREATE_TOKEN} = 'off';
    authtokend_start();
    my ($c4, $h4) = pair();
    (undef, undef, $err) = ctl('createuser', $c4);
    api('POST', '/api-admin/users/', { username => $h4 });
    same($c4, $h4, 'create with auto_create_token off', $err);
    like(state_of($h4), qr/token=none/, 'no token then');
}
authtokend_start();

for my $op (['deactivate', ['deactivate'], ['PATCH', '', { is_active => JSON::PP::false }]],
            ['activate', ['activate'], ['PATCH', '', { is_active => JSON::PP::true }]],
            ['set password', ['changepassword', '--password-stdin'], ['PATCH', '', { password => 'new-pass' }], "new-pass\n"],
            ['set password and revoke', ['changepassword', '--password-stdin', '--revoke-token'],
             ['PATCH', '', { password => 'newer-pass', revoke_token => JSON::PP::true }], "newer-pass\n"],
            ['regenerate', ['token', '-r'], ['POST', 'token/']],
            ['revoke', ['revoke'], ['DELETE', 'token/']],
            ['delete', ['deleteuser'], ['DELETE', '']]) {
    my ($what, $cli, $api, $stdin) = @$op;
    my ($cmd, @flags) = @$cli;
    my ($code, undef, $err) = ctl(defined $stdin ? { stdin => $stdin } : (), $cmd, $c, @flags);
    is($code, 0, "CLI $what");
    my ($s) = api($api->[0], "/api-admin/users/$h/$api->[1]", $api->[2]);
    like($s, qr/^20[014]$/, "HTTP $what: $s");
    unlike($err, qr/[0-9a-f]{40}|new-pass|newer-pass/, "CLI $what: no key or password on stderr");
    same($c, $h, $what, $err);
}
is(state_of($c), 'absent', 'both users are gone after delete');

subtest 'tokens_per_user = many: the same path' => sub {
    local $ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
    authtokend_start();
    my ($c, $h) = pair();
    # The user as the API shows it, without what differs by nature.
    my $seen = sub {
        my (undef, $b) = api('GET', "/api-admin/users/$_[0]/");
        return ref $b ? join(' ', map { "$_=" . ($b->{$_} // 'null') } qw(is_active has_token tokens)) : $b;
    };
    my ($code, undef, $err) = ctl({ stdin => "pw-$c\n" }, 'createuser', $c, '--password-stdin');
    my ($s, $b) = api('POST', '/api-admin/users/', { username => $h, password => "pw-$h" });
    is("$code $s", '0 201', 'create');
    ok(!exists $b->{token}, 'many mode: no key made with the user (it would never be shown)');
    is($seen->($c), $seen->($h), 'create: the same (' . $seen->($h) . ')');
    is(state_of($c), state_of($h), 'create: the same Redis state (' . state_of($c) . ')');
    is(last_audit($err, $c), last_audit(authtokend_log(), $h), 'create: the same audit line');
    for my $op (['regenerate', ['token', '-r'], ['POST', 'token/']],
                ['regenerate again', ['token', '-r'], ['POST', 'token/']],
                ['set password', ['changepassword', '--password-stdin'], ['PATCH', '', { password => 'new-pass' }], "new-pass\n"],
                ['regenerate after', ['token', '-r'], ['POST', 'token/']],
                ['revoke', ['revoke'], ['DELETE', 'token/']]) {
        my ($what, $cli, $http, $stdin) = @$op;
        my ($cmd, @flags) = @$cli;
        ($code, undef, $err) = ctl(defined $stdin ? { stdin => $stdin } : (), $cmd, $c, @flags);
        ($s) = api($http->[0], "/api-admin/users/$h/$http->[1]", $http->[2]);
        is($code, 0, "CLI $what");
        like($s, qr/^20[014]$/, "HTTP $what: $s");
        is($seen->($c), $seen->($h), "$what: the same (" . $seen->($h) . ')');
        is(state_of($c), state_of($h), "$what: the same Redis state (" . state_of($c) . ')');
        is(last_audit($err, $c), last_audit(authtokend_log(), $h), "$what: the same audit line (" . last_audit($err, $c) . ')');
    }
};
authtokend_start();    # back to DRF's one token per user

subtest 'the same refusals, and nothing written' => sub {
    my $before = snapshot();
    my ($code, undef, $err) = ctl('createuser', 'bad name!');
    my ($s, $b) = api('POST', '/api-admin/users/', { username => 'bad name!' });
    is($code, 1, 'CLI refuses an invalid username');
    is($s, 400, 'HTTP refuses it');
    is($err, "Error: $b->{username}[0]\n", 'with the same message: ' . $b->{username}[0]);

    ($code, undef, $err) = ctl('createuser', 'y' x 151);
    ($s, $b) = api('POST', '/api-admin/users/', { username => 'y' x 151 });
    is($err, "Error: $b->{username}[0]\n", 'the same max_length message');

    ($code, undef, $err) = ctl('createuser', 'em', '--email', 'not-an-email');
    ($s, $b) = api('POST', '/api-admin/users/', { username => 'em', email => 'not-an-email' });
    is("$code $s", '1 400', 'an invalid email: CLI exit 1, HTTP 400');
    is($err, "Error: $b->{email}[0]\n", 'with the same message: ' . $b->{email}[0]);

    ($code) = ctl('createuser', 'root');
    ($s, $b) = api('POST', '/api-admin/users/', { username => 'root' });
    is($code, 1, 'CLI refuses a taken username');
    is_deeply([$s, $b], [400, { username => ['A user with that username already exists.'] }], 'HTTP too');

    for my $op (['deactivate', 'PATCH', '', { is_active => JSON::PP::false }],
                ['changepassword', 'PATCH', '', { password => 'x' }],
                ['revoke', 'DELETE', 'token/'],
                ['deleteuser', 'DELETE', '']) {
        my ($cmd, $m, $tail, $j) = @$op;
        ($code, undef, $err) = ctl({ stdin => "x\n" }, $cmd, 'nobody', $cmd eq 'changepassword' ? '--password-stdin' : ());
        ($s) = api($m, "/api-admin/users/nobody/$tail", $j);
        is("$code $s", '1 404', "an unknown user: CLI $cmd exit 1, HTTP $m 404");
        like($err, qr/user 'nobody' does not exist/, "CLI $cmd says so");
        unlike($err, qr/audit:/, "CLI $cmd: a refusal leaves no audit line");
    }
    ($code, undef, $err) = ctl('token', 'nobody', '-r');
    ($s) = api('POST', '/api-admin/users/nobody/token/');
    is("$code $s", '1 404', 'an unknown user: CLI token -r exit 1, HTTP 404');
    unlike($err, qr/audit:/, 'CLI token -r: a refusal leaves no audit line');
    is(snapshot(), $before, 'Redis is as it was');
    my @audit = authtokend_log() =~ /(audit: .*nobody.*)$/mg;
    is(scalar @audit, 0, 'and no refusal left an audit line');
};

done_testing();
