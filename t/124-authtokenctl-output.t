# What `authtokenctl users` and the long commands print: columns aligned
# by display width (a CJK name counts two columns a character, "Zoë"
# three), names with control characters escaped, an error alone when Redis
# is unreachable (no header line before it), --json for scripts, and a
# progress bar on a terminal that a pipe never sees.
use strict;
use warnings;
use utf8;

use Encode qw(encode_utf8 decode_utf8);
use JSON::PP;
use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;

my $dir = issuer_setup();
ctl_ok('--no-auto-create-token', 'createuser', $_) for (encode_utf8('山田'), encode_utf8('Zoë'), 'bob');
ctl_ok('token', 'bob');

my $out = decode_utf8(ctl_ok('users'));
my @lines = split /\n/, $out;
is($lines[0], 'uid   username                active  staff  superuser  token',
   'the header line');
my %row = map { /^(\d+)\s+(\S+)/ ? ($2 => [$1, $_]) : () } @lines[1 .. $#lines];
sub expected_row {
    my ($name, $pad, $token) = @_;
    return sprintf('%-6s', $row{$name}[0]) . $name . (' ' x $pad)
         . "yes     no     no         $token";
}
is($row{'山田'}[1], expected_row('山田', 20, 'no'),
   'a CJK name is padded by display width (4 columns, not 6 bytes)');
is($row{'Zoë'}[1], expected_row('Zoë', 21, 'no'),
   '"Zoë" by 3 columns, not 4 bytes');
is($row{bob}[1], expected_row('bob', 21, 'yes'), 'an ASCII name as before');

# A name with control bytes stored before import refused them (or written
# by anything else): shown escaped, never raw to the terminal.
{
    ctl_ok('--no-auto-create-token', 'createuser', 'legacy');
    my $uid = redis_cmd('GET', 'authtoken:username:legacy');
    redis_cmd('HSET', "authtoken:user:$uid", 'username', "leg\e[2Jacy\r");
    my $list = ctl_ok('users');
    unlike($list, qr/[\x00-\x09\x0b-\x1f\x7f]/, 'users prints no control bytes');
    like($list, qr/^\Q$uid\E +leg\\x1b\[2Jacy\\x0d +yes/m, 'but the name escaped');
    redis_cmd('ZREM', 'authtoken:users', $uid);
    redis_cmd('DEL', "authtoken:user:$uid", 'authtoken:username:legacy');
}

my $json = decode_json(ctl_ok('users', '--json'));
is(scalar @$json, 3, '--json lists every user');
my ($yamada) = grep { $_->{username} eq '山田' } @$json;
is_deeply([ sort keys %$yamada ],
          [ qw(has_token is_active is_staff is_superuser token_expired uid username) ],
          'with the documented fields');
ok($yamada->{is_active} && !$yamada->{has_token}, 'as booleans');

# Redis unreachable: an error, and nothing on stdout.
{
    local $ENV{AUTHTOKEN_REDIS} = 'redis://127.0.0.1:' . free_port() . '/0';
    my ($code, $o, $e) = ctl('users');
    is($code, 1, 'users fails without Redis');
    is($o, '', 'without printing the header line first');
    like($e, qr/redis/i, 'the error says Redis');
}

# backfill: the summary only through a pipe, a progress bar on a terminal.
ctl_ok('--no-auto-create-token', 'createuser', "user$_") for 1 .. 30;
my ($code, $o, $e) = ctl('backfill');
is($o, "Created tokens for 32 users; 1 already had one.\n", 'backfill through a pipe: the summary');
is($e, '', 'and nothing else');
ctl_ok('revoke', 'bob');
my $bin = ($ENV{AUTHTOKEN_BUILD_DIR} || 'build') . '/authtokenctl';
my $tty = `script -qec '$bin backfill' /dev/null 2>&1`;
like($tty, qr{backfill \[#+ *\] \d+/33}, 'on a terminal a progress bar is drawn');
like($tty, qr/Created tokens for 1 user; 32 already had one\./, 'before the summary');

done_testing();
