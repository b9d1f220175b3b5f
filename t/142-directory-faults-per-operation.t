# Every change authtokenctl makes, with the token directory (docs/
# operations.md, "Two stores") stopped, killed, or killed and restarted
# empty in the middle of it: after the user store took the change and
# before the directory applied it. nginx reads only the directory, through
# a cache. Pinned, for each operation and fault:
#   - exit 0 means the directory has applied the change: nothing pending,
#     and the edge answers the new verdict at once;
#   - exit 4 means exactly what it says: the user store has the change, it
#     is pending (not acknowledged), and the next `directory sync` brings
#     it to the edge;
#   - while the directory is down or restarted empty, no token that the
#     change refuses is accepted at the edge (503 or 401, never 200);
#   - nothing acknowledged is lost: at the end, after one more restart
#     empty, every verdict of every case still holds.
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
my $owner = $$;

# A cache with a long validity: a verdict cached before the fault must not
# outlive the change (the revocation channel or its loss must drop it).
directory_nginx_start(http => 'auth_token_cache zone=tokens:1m valid=60s invalid=5s;');

# edge_after_reconnect: the verdict once the edge reaches the directory
# (a 503 while nginx reconnects to a restarted directory is retried).
my $OK = '200 ok';
my $INVALID = q{401 {"detail":"Invalid token."}};
my $INACTIVE = q{401 {"detail":"User inactive or deleted."}};

$ENV{AUTHTOKEN_REDIS_TIMEOUT_MS} = 300;
sub record_of { my ($key) = @_; redis_cmd('HGET', token_key($key), @_[1 .. $#_]) }
sub record_exists { redis_cmd('EXISTS', token_key($_[0])) }
sub user_exists { redis_cmd('EXISTS', "authtoken:username:$_[0]") }
sub sync_ok {
    my ($code, $out, $err) = ctl('directory', 'sync');
    is($code, 0, 'directory sync succeeds') or diag $err;
}

# The user store is set up, then made to feed the directory.
ctl_ok({ stdin => "seed-pw\n" }, 'createuser', 'seed', '--password-stdin');
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');

my $dump_n = 0;
sub django_dump {
    my ($name, $token) = @_;
    my $path = "$ddir/../dump-$$-" . ++$dump_n . '.json';
    my $pk = 90000 + $dump_n;
    open my $fh, '>', $path or die $!;
    print $fh qq([{"model":"auth.user","pk":$pk,"fields":{"password":"!","last_login":null,)
      . qq("is_superuser":false,"username":"$name","first_name":"","last_name":"",)
      . qq("email":"","is_staff":false,"is_active":true,)
      . qq("date_joined":"2026-11-27T20:26:24.247Z","groups":[],"user_permissions":[]}},)
      . qq({"model":"authtoken.token","pk":"$token","fields":{"user":$pk,)
      . qq("created":"2026-11-27T20:26:24.574Z"}}]);
    close $fh;
    return $path;
}
END { local $?; unlink glob("$ddir/../dump-$owner-*.json") if $$ == $owner }

sub many_ctl_ok { local $ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many'; ctl_ok(@_) }
sub many_token_of { local $ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many'; token_of(@_) }

# One row per change. prepare (directory healthy) makes what the change
# works on and returns its context; cmd is the change (stdin, args, env);
# in_store says the user store holds the change; after lists the verdicts
# the change must give: [token or code giving it, verdict]. A verdict of
# $OK for a token the change makes is read lazily (the CLI shows it).
my @ops = (
    {
        name => 'createuser',
        prepare => sub { my ($n) = @_; { user => "new$n" } },
        cmd => sub { ({ stdin => "pw\n" }, 'createuser', $_[0]{user}, '--password-stdin') },
        in_store => sub { user_exists($_[0]{user}) },
        after => sub { my ($c) = @_; ([sub { token_of($c->{user}) }, $OK]) },
    },
    {
        name => 'token -r (replace)',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "rep$n", '--password-stdin');
            { user => "rep$n", old => token_of("rep$n") };
        },
        cmd => sub { (undef, 'token', $_[0]{user}, '-r') },
        in_store => sub { !record_exists($_[0]{old}) },
        after => sub { my ($c) = @_; ([$c->{old}, $INVALID], [sub { token_of($c->{user}) }, $OK]) },
        refused => sub { ($_[0]{old}) },
    },
    {
        name => 'revoke',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "rev$n", '--password-stdin');
            { user => "rev$n", old => token_of("rev$n") };
        },
        cmd => sub { (undef, 'revoke', $_[0]{user}) },
        in_store => sub { !record_exists($_[0]{old}) },
        after => sub { ([$_[0]{old}, $INVALID]) },
        refused => sub { ($_[0]{old}) },
    },
    {
        name => 'deactivate',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "dea$n", '--password-stdin');
            { user => "dea$n", old => token_of("dea$n") };
        },
        cmd => sub { (undef, 'deactivate', $_[0]{user}) },
        in_store => sub { (record_of($_[0]{old}, 'active') // '') eq '0' },
        after => sub { ([$_[0]{old}, $INACTIVE]) },
        refused => sub { ($_[0]{old}) },
    },
    {
        name => 'activate',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "act$n", '--password-stdin', '--inactive');
            my $c = { user => "act$n", old => token_of("act$n") };
            $c;
        },
        cmd => sub { (undef, 'activate', $_[0]{user}) },
        in_store => sub { (record_of($_[0]{old}, 'active') // '') eq '1' },
        after => sub { ([$_[0]{old}, $OK]) },
    },
    {
        name => 'deleteuser',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "del$n", '--password-stdin');
            { user => "del$n", old => token_of("del$n") };
        },
        cmd => sub { (undef, 'deleteuser', $_[0]{user}) },
        in_store => sub { !user_exists($_[0]{user}) && !record_exists($_[0]{old}) },
        after => sub { ([$_[0]{old}, $INVALID]) },
        refused => sub { ($_[0]{old}) },
    },
    {
        name => 'changepassword --revoke-token',
        prepare => sub {
            my ($n) = @_;
            ctl_ok({ stdin => "pw\n" }, 'createuser', "chp$n", '--password-stdin');
            { user => "chp$n", old => token_of("chp$n") };
        },
        cmd => sub { ({ stdin => "pw2\n" }, 'changepassword', $_[0]{user}, '--password-stdin', '--revoke-token') },
        in_store => sub { !record_exists($_[0]{old}) },
        after => sub { ([$_[0]{old}, $INVALID]) },
        refused => sub { ($_[0]{old}) },
    },
    {
        name => 'import-django',
        prepare => sub {
            my ($n) = @_;
            my $token = sprintf '%040x', 0xbeef0000 + $n;
            { user => "imp$n", token => $token, dump => django_dump("imp$n", $token) };
        },
        cmd => sub { (undef, 'import-django', $_[0]{dump}) },
        in_store => sub { user_exists($_[0]{user}) && record_exists($_[0]{token}) },
        after => sub { ([$_[0]{token}, $OK]) },
    },
    {
        name => 'tokens_per_user = many: token -r (every token replaced)',
        env => { AUTHTOKEN_TOKENS_PER_USER => 'many' },
        prepare => sub {
            my ($n) = @_;
            many_ctl_ok({ stdin => "pw\n" }, 'createuser', "mrp$n", '--password-stdin');
            { user => "mrp$n", old => [map { many_token_of("mrp$n") } 1 .. 3] };
        },
        cmd => sub { (undef, 'token', $_[0]{user}, '-r') },
        in_store => sub { !grep { record_exists($_) } @{ $_[0]{old} } },
        after => sub {
            my ($c) = @_;
            ((map { [$_, $INVALID] } @{ $c->{old} }),
             [sub { many_token_of($c->{user}) }, $OK]);
        },
        refused => sub { @{ $_[0]{old} } },
    },
    {
        name => 'tokens_per_user = many: revoke (logout-all)',
        env => { AUTHTOKEN_TOKENS_PER_USER => 'many' },
        prepare => sub {
            my ($n) = @_;
            many_ctl_ok({ stdin => "pw\n" }, 'createuser', "mrv$n", '--password-stdin');
            { user => "mrv$n", old => [map { many_token_of("mrv$n") } 1 .. 3] };
        },
        cmd => sub { (undef, 'revoke', $_[0]{user}) },
        in_store => sub { !grep { record_exists($_) } @{ $_[0]{old} } },
        after => sub { map { [$_, $INVALID] } @{ $_[0]{old} } },
        refused => sub { @{ $_[0]{old} } },
    },
);

# Runs the change in the background with the directory SIGSTOPped; once
# the user store has it (the outbox number moved), $then runs while the
# CLI waits on the directory. Returns (exit code, stderr).
sub ctl_with_stopped_directory {
    my ($then, $opt, @args) = @_;
    my $err_file = "$ddir/../cli-$$.err";
    my ($code, $recorded) = fork_with_directory_stopped($then, sub {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $err_file or die $!;
        my ($code, undef, $err) = ctl($opt ? $opt : (), @args);
        print STDERR $err;
        POSIX::_exit($code);
    });
    kill 'CONT', directory_pid() if directory_pid();
    open my $fh, '<', $err_file or die $!;
    local $/;
    my $err = <$fh> // '';
    close $fh;
    unlink $err_file;
    return ($code, $err, $recorded);
}

my %fault = (
    stopped => sub { undef },    # SIGCONT only after the CLI gave up
    killed => sub { sub { directory_kill() } },
    'restarted empty' => sub { sub { directory_kill(); directory_start() } },
);
my @acknowledged;    # [token or code, verdict, what] of every exit 0
my $n = 0;
for my $op (@ops) {
    for my $fault_name ('stopped', 'killed', 'restarted empty') {
        $n++;
        subtest "$op->{name}, directory $fault_name mid-operation" => sub {
            local @ENV{keys %{ $op->{env} || {} }} = values %{ $op->{env} || {} };
            my $c = $op->{prepare}->($n);
            # Cache what will be refused (the edge has seen it valid).
            is(edge_after_reconnect($_), $OK, 'before: accepted (and cached)') for ($op->{refused} || sub { () })->($c);
            is(pending(), 0, 'before: nothing pending');

            my ($opt, @args) = $op->{cmd}->($c);
            my ($code, $err, $recorded) =
                ctl_with_stopped_directory($fault{$fault_name}->(), $opt, @args);
            ok($recorded, 'the user store took the change while the directory waited')
                if $fault_name ne 'stopped';
            ok($op->{in_store}->($c), 'the user store holds the change');
            note("exit $code");
            if ($code == 0) {
                # Only possible if the CLI reached a restarted directory.
                is(pending(), 0, 'exit 0: nothing pending');
            } else {
                is($code, 4, 'exit 4') or diag $err;
                like($err, qr/recorded; it will reach the edges when the token directory is back/,
                     'exit 4: says recorded, not done');
                cmp_ok(pending(), '>', 0, 'exit 4: the change is pending, not acknowledged');
            }
            if ($fault_name eq 'killed') {
                isnt(edge_once($_), $OK, 'directory down: the edge refuses what the change refuses')
                    for ($op->{refused} || sub { () })->($c);
                directory_start();
            }
            # Restarted empty, it refuses every token until rebuilt (a
            # stopped one is back with what it had: the change reaches it
            # with the sync, as exit 4 said).
            isnt(edge_after_reconnect($_), $OK, 'directory back empty: the edge refuses what the change refuses')
                for $fault_name eq 'stopped' ? () : ($op->{refused} || sub { () })->($c);
            sync_ok() if $code != 0;
            is(pending(), 0, 'applied: nothing pending');
            for my $v ($op->{after}->($c)) {
                my $token = ref $v->[0] ? $v->[0]->() : $v->[0];
                is(edge_after_reconnect($token), $v->[1], "applied: $v->[1]");
                push @acknowledged, [$token, $v->[1], "$op->{name} ($fault_name)"];
            }
        };
    }
}

subtest 'nothing acknowledged is lost: every verdict holds after one more restart empty' => sub {
    directory_kill();
    directory_start();
    sync_ok();
    is(edge_after_reconnect($_->[0]), $_->[1], "$_->[2]: $_->[1]") for @acknowledged;
};

done_testing();
