# authtokend's own writes with tokens_per_user = many (a login, knox's
# logout and logout-all) with the token directory (docs/operations.md,
# "Two stores") SIGSTOPped, SIGKILLed, or SIGKILLed and restarted empty
# after the user store took the change and before the directory applied
# it; nginx reads only the directory, through a cache that had the old
# verdict. The companion of t/142 (authtokenctl's changes). Pinned:
#   - a 2xx means the directory has the change: nothing pending, and the
#     edge answers the new verdict at once;
#   - a 503 says what is true: the catalogue body "recorded; it reaches the
#     edges when the token directory is back", the user store has the
#     change and it is pending; the daemon's replayer thread applies it
#     once the directory is back, with no other request;
#   - no logged-out token is accepted at the edge afterwards;
#   - a login answered 503 leaves no token behind: the one it made is
#     revoked (through the outbox, so the directory applies both and ends
#     without it), the user's token count and token_limit_per_user answer
#     as before the fault.
use strict;
use warnings;

use POSIX ();
use Time::HiRes qw(sleep time);
use Test::More;

use AuthToken::Process;
use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;


issuer_setup();    # the user store: the test's Redis

# The token directory (no persistence: a restart is a restart empty).
my $dport = directory_setup();
my $ddir = directory_dir();

directory_nginx_start(http => 'auth_token_cache zone=tokens:1m valid=60s invalid=5s;');

# edge_after_reconnect: the verdict once the edge reaches the directory
# (a 503 while nginx reconnects to a restarted directory is retried).
my $OK = '200 ok';
my $INVALID = q{401 {"detail":"Invalid token."}};
my $BEHIND = q{{"detail":"The change is recorded; it reaches the edges when the token directory is back."}};

$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
$ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
sub record_exists { record_exists_digest(token_digest($_[0])) }
sub record_exists_digest { redis_cmd('EXISTS', token_key($_[0])) }
sub settled_within {
    my ($seconds) = @_;
    my $until = time + $seconds;
    sleep 0.05 while pending() && time < $until;
    return pending() == 0;
}

ctl_ok({ stdin => "seed-pw\n" }, 'createuser', 'seed', '--password-stdin');
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');

# One request to the daemon in the background with the directory
# SIGSTOPped; once the user store has the change (the outbox number
# moved), $then runs while the daemon waits on the directory. Returns
# (status, body, whether the change was seen recorded first); a directory
# still stopped stays so (SIGCONT is the caller's, after its checks: the
# replayer thread applies the change as soon as it is back).
sub request_with_stopped_directory {
    my ($then, $method, $path, %opt) = @_;
    my $file = "$ddir/../daemon-$$.reply";
    my (undef, $recorded) = fork_with_directory_stopped($then, sub {
        my ($status, undef, $body) = daemon_request($method, $path, %opt);
        open my $fh, '>', $file or die $!;
        print $fh "$status\n$body";
        close $fh;
        POSIX::_exit(0);
    });
    my ($status, $body) = do { local (@ARGV, $/) = $file; split /\n/, <> // '', 2 };
    unlink $file;
    return ($status, $body // '', $recorded);
}
sub token_header { (headers => { Authorization => "Token $_[0]" }) }
sub user_tokens {
    redis_cmd('ZCARD', 'authtoken:user-tokens:' . redis_cmd('GET', "authtoken:username:$_[0]"));
}
sub login_body {
    my ($user) = @_;
    (headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
     body => "username=$user&password=pw");
}

my @ops = (
    {
        name => 'login (obtain-token)',
        prepare => sub { $_[0] },
        request => sub { ('POST', '/api-token-auth/', login_body($_[0]{user})) },
        ok_status => 200,
        # The key is in the 200's body only: a 503 hands out no token, and
        # the one the login made is revoked, so the user holds 2 again.
        in_store => sub { user_tokens($_[0]{user}) == ($_[1] == 200 ? 3 : 2) },
        refused => sub { () },
    },
    {
        name => 'logout',
        prepare => sub { $_[0] },
        request => sub { ('POST', '/api-token-logout/', token_header($_[0]{tokens}[0])) },
        ok_status => 204,
        in_store => sub { !record_exists($_[0]{tokens}[0]) && record_exists($_[0]{tokens}[1]) },
        refused => sub { ($_[0]{tokens}[0]) },
        kept => sub { ($_[0]{tokens}[1]) },
    },
    {
        name => 'logout-all',
        prepare => sub { $_[0] },
        request => sub { ('POST', '/api-token-logout-all/', token_header($_[0]{tokens}[0])) },
        ok_status => 204,
        in_store => sub { !grep { record_exists($_) } @{ $_[0]{tokens} } },
        refused => sub { @{ $_[0]{tokens} } },
    },
);
my %fault = (
    stopped => undef,
    killed => sub { directory_kill() },
    'restarted empty' => sub { directory_kill(); directory_start() },
);

my $n = 0;
for my $op (@ops) {
    for my $fault_name ('stopped', 'killed', 'restarted empty') {
        $n++;
        subtest "$op->{name}, directory $fault_name mid-request" => sub {
            my $user = "m$n";
            ctl_ok({ stdin => "pw\n" }, 'createuser', $user, '--password-stdin');
            my $c = $op->{prepare}->({ user => $user,
                                       tokens => [map { obtain_token($user, 'pw') } 1 .. 2] });
            is(edge_after_reconnect($_), $OK, 'before: accepted (and cached)') for @{ $c->{tokens} };
            is(pending(), 0, 'before: nothing pending');

            my ($status, $body, $recorded) =
                request_with_stopped_directory($fault{$fault_name}, $op->{request}->($c));
            ok($recorded, 'the user store took the change while the directory waited')
                if $fault_name ne 'stopped';
            ok($op->{in_store}->($c, $status), 'the user store holds the change');
            if ($status == $op->{ok_status}) {
                is(pending(), 0, "$op->{ok_status}: nothing pending");
            } else {
                is($status, 503, 'otherwise 503') or diag $body;
                is($body, $BEHIND, '503: the catalogue body says it is recorded');
                cmp_ok(pending(), '>', 0, '503: the change is pending, not acknowledged');
            }
            kill 'CONT', directory_pid() if $fault_name eq 'stopped';
            if ($fault_name eq 'killed') {
                isnt(edge_once($_), $OK, 'directory down: the edge refuses what the change refuses')
                    for $op->{refused}->($c);
                directory_start();
            }
            ok(settled_within(10), "the daemon's replayer thread applies it, with no other request");
            is(edge_after_reconnect($_), $INVALID, 'applied: refused') for $op->{refused}->($c);
            is(edge_after_reconnect($_), $OK, 'applied: the other token still accepted') for ($op->{kept} || sub { () })->($c);
        };
    }
}

# The orphan: in many mode a login creates a token that only its answer
# hands out. Withheld for a 503, the token must not stay: nobody holds its
# key to use or log it out, yet it would count toward token_limit_per_user
# (with `refuse`, enough such 503s lock the user out).
subtest 'many-mode logins answered 503 leave no token behind' => sub {
    authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                     '--token-limit-per-user', '3');
    my $user = 'orphan';
    ctl_ok({ stdin => "pw\n" }, 'createuser', $user, '--password-stdin');
    my @kept = map { obtain_token($user, 'pw') } 1 .. 2;
    is(edge_after_reconnect($_), $OK, 'before: accepted') for @kept;
    is(user_tokens($user), 2, 'before: 2 tokens, one short of token_limit_per_user (3)');
    my $log_before = () = authtokend_log() =~ /revoked: its answer was withheld/g;

    my $from = outbox_seq() + 1;
    kill 'STOP', directory_pid();
    my @statuses;
    for (1 .. 3) {
        my ($status, undef, $body) = daemon_request('POST', '/api-token-auth/', login_body($user));
        push @statuses, $status;
        is($body, $BEHIND, "login $_ with the directory stopped: the catalogue body")
            if $status == 503;
    }
    is("@statuses", '503 503 503', 'every login answered 503 (none refused at the limit)');
    is(user_tokens($user), 2, 'the user store: the token count is what it was');
    kill 'CONT', directory_pid();
    ok(settled_within(10), "the replayer thread applies the creations and revocations");

    # The digests those logins wrote to the outbox: their records exist in
    # neither store, so no edge can accept their keys.
    my @made = map { unpack 'H*', $_->[1][1] }
               @{ redis_cmd('XRANGE', 'authtoken:outbox', "$from-0", '+') };
    my %made = map { $_ => 1 } @made;
    is(scalar(keys %made), 3, 'the three logins each made a token (in the outbox)');
    is(scalar(grep { redis_at($dport, 'EXISTS', token_key($_)) } keys %made), 0,
       'the token directory holds none of them: no edge accepts them');
    is(scalar(grep { record_exists_digest($_) } keys %made), 0, 'nor does the user store');
    is(user_tokens($user), 2, 'applied: the token count is what it was');
    is(edge_after_reconnect($_), $OK, 'the tokens from before still accepted') for @kept;
    my $log_after = () = authtokend_log() =~ /revoked: its answer was withheld/g;
    is($log_after - $log_before, 3, 'each revocation logged');

    my $token = obtain_token($user, 'pw');
    is(edge_after_reconnect($token), $OK, 'a login after the fault: allowed, as before it (one slot left)');
    my ($status, undef, $body) = obtain_direct($user, 'pw');
    is("$status $body", q{403 {"detail":"Maximum amount of tokens allowed per user exceeded."}},
       'the next one refused at token_limit_per_user, as before the fault');
};

# The same orphan from the admin API: a many-mode regeneration replaces
# every token of the user with one shown once, in its answer only.
subtest 'a many-mode admin regeneration answered 503 leaves no token behind' => sub {
    ctl_ok({ stdin => "boss-pw\n" }, 'createuser', 'boss', '--superuser', '--password-stdin');
    my $boss = obtain_token('boss', 'boss-pw');
    my $user = 'regen';
    ctl_ok({ stdin => "pw\n" }, 'createuser', $user, '--password-stdin');
    my $old = obtain_token($user, 'pw');
    is(edge_after_reconnect($old), $OK, 'before: the old token is accepted');

    my $from = outbox_seq() + 1;
    kill 'STOP', directory_pid();
    my ($status, undef, $body) = daemon_request('POST', "/api-admin/users/$user/token/",
        headers => { Authorization => "Token $boss" });
    kill 'CONT', directory_pid();
    is("$status $body", "503 $BEHIND", 'the regeneration answers 503 with the catalogue body');
    ok(settled_within(10), 'the replayer thread applies the regeneration and the revocation');
    my %made = map { unpack('H*', $_->[1][1]) => 1 }
               @{ redis_cmd('XRANGE', 'authtoken:outbox', "$from-0", '+') };
    delete $made{token_digest($old)};
    is(scalar(keys %made), 1, 'the regeneration made one new token (in the outbox)');
    my ($new) = keys %made;
    is(redis_at($dport, 'EXISTS', token_key($new)), 0,
       'the token directory does not hold it: no edge accepts its key');
    is(record_exists_digest($new), 0, 'nor does the user store');
    is(user_tokens($user), 0, 'the user holds no token nobody got');
    is(edge_after_reconnect($old), $INVALID, 'the old token is gone, as the regeneration asked');
    like(authtokend_log(), qr/regenerated the token of "regen": the new token [0-9a-f]{16} revoked: its answer was withheld/,
         'the revocation is logged');
};

done_testing();
