# A login whose (slow) password hash is under way when the user's password
# is changed, the token revoked, the user deactivated or deleted must not
# hand out a token: the token is issued with a compare-and-set on what the
# check saw, and a change in between gets DRF's 400.
use strict;
use warnings;

use Test::More;
use IO::Select;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;

# A hash that takes a while (2,000,000 PBKDF2 iterations, about a second),
# and a daemon whose policy is the same, so a login does not re-hash.
my $slow = 'pbkdf2_sha256$2000000$raceSaltRaceSaltRace22$'
         . '0ZLlRcuqucFbYLbvXciiwFjEZ0NyG+t9agTpuh5wjpE=';
issuer_setup();
{
    local $ENV{AUTHTOKEN_PBKDF2_ITERATIONS} = 2000000;
    authtokend_start('--throttle-user-addr-rate', 'off',
                     '--throttle-addr-rate', 'off',
                     '--throttle-user-rate', 'off');
}
my $bad = '{"non_field_errors":["Unable to log in with provided credentials."]}';

sub slow_user {
    my ($name) = @_;
    ctl_ok({ stdin => "x\n" }, 'createuser', $name, '--password-stdin');
    my $uid = redis_cmd('GET', "authtoken:username:$name");
    redis_cmd('HSET', "authtoken:user:$uid", 'password', $slow);
    return $uid;
}

# Starts a login, runs @change once the daemon is hashing, then reads the
# answer. Returns (answer, whether the change finished before the answer).
sub login_during {
    my ($name, @change) = @_;
    my $s = login_send(authtokend_port(), $name, 'slow-password');
    # The daemon logs nothing before the hash; give it time to start.
    select(undef, undef, undef, 0.3);
    ctl_ok(@change) if @change;
    my $in_time = !IO::Select->new($s)->can_read(0);
    return (login_read($s, 60), $in_time);
}

sub token_works {
    my ($key) = @_;
    my $digest = token_digest($key);
    return @{ redis_cmd('HMGET', token_key($digest), 'uid', 'active') };
}

# Control: nothing changes, the login succeeds and its token works.
slow_user('calm');
my ($ok) = login_during('calm');
is($ok->{status}, 200, 'an undisturbed slow login succeeds');
my ($key) = $ok->{body} =~ /"token":"([0-9a-f]{40})"/;
my ($uid, $active) = token_works($key // '');
ok($uid && $active eq '1', 'and its token is live');

my %changes = (
    'the password is changed' => [{ stdin => "new-password\n" },
                                  'changepassword', 'NAME', '--password-stdin'],
    'the token is revoked'    => ['revoke', 'NAME'],
    'the user is deactivated' => ['deactivate', 'NAME'],
    'the user is deleted'     => ['deleteuser', 'NAME'],
);
my $i = 0;
for my $what (sort keys %changes) {
    my $name = 'user' . $i++;
    slow_user($name);
    my $before = token_of($name); # the user has a token when the login starts
    my @change = map { $_ eq 'NAME' ? $name : $_ } @{ $changes{$what} };
    my ($res, $in_time) = login_during($name, @change);
    ok($in_time, "$what before the login's hash ends");
    is($res->{status}, 400, "$what during the login: 400");
    is($res->{body}, $bad, "$what during the login: DRF's body");
    my $digest_now = redis_cmd('GET', "authtoken:username:$name")
        ? redis_cmd('HGET', 'authtoken:user:' .
                    redis_cmd('GET', "authtoken:username:$name"), 'token')
        : undef;
    # The user record holds the digest's 32 bytes (schema version 2).
    ok(!defined $digest_now || $digest_now eq pack('H*', token_digest($before)),
       "$what: no new token was made");
}
like(authtokend_log(), qr/400 password, status or token changed during the login/,
     'the cause is logged');

# tokens_per_user = many: every login adds a token (add_token), with the
# same compare-and-set on the uid, the password hash and is_active the
# check saw.
{
    local $ENV{AUTHTOKEN_PBKDF2_ITERATIONS} = 2000000;
    authtokend_start('--throttle-user-addr-rate', 'off',
                     '--throttle-addr-rate', 'off',
                     '--throttle-user-rate', 'off',
                     '--tokens-per-user', 'many',
                     '--token-limit-per-user', '10');
}
$ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
$ENV{AUTHTOKEN_TOKEN_LIMIT_PER_USER} = '10';

# The user's token set and every token record that names the uid.
sub many_tokens {
    my ($uid) = @_;
    my @set = @{ redis_cmd('ZRANGE', "authtoken:user-tokens:$uid", 0, -1) };
    my @records = grep { (redis_cmd('HGET', $_, 'uid') // '') eq $uid }
                  @{ redis_cmd('KEYS', 'authtoken:token:*') };
    return (scalar @set, scalar @records);
}

{
    my $uid = slow_user('many-calm');
    my ($res) = login_during('many-calm');
    is($res->{status}, 200, 'many: an undisturbed slow login succeeds');
    my ($key) = ($res->{body} // '') =~ /"token":"([0-9a-f]{40})"/;
    is(redis_cmd('HGET', token_key($key // ''), 'uid'),
       $uid, 'many: and its token is live');
    is_deeply([many_tokens($uid)], [1, 1], 'many: in the user\'s set');
}

my %many_changes = (
    'the password is changed' => [{ stdin => "new-password\n" },
                                  'changepassword', 'NAME', '--password-stdin'],
    'the user is deactivated' => ['deactivate', 'NAME'],
);
for my $what (sort keys %many_changes) {
    my $name = 'many' . $i++;
    my $uid = slow_user($name);
    my @change = map { $_ eq 'NAME' ? $name : $_ } @{ $many_changes{$what} };
    my ($res, $in_time) = login_during($name, @change);
    ok($in_time, "many: $what before the login's hash ends");
    is($res->{status}, 400, "many: $what during the login: 400");
    is($res->{body}, $bad, "many: $what during the login: DRF's body");
    is_deeply([many_tokens($uid)], [0, 0], "many: $what: no token was added");
}
like(authtokend_log(), qr/400 password, status or token changed during the login/,
     'many: the cause is logged');

done_testing();
