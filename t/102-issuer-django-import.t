# `authtokenctl import-django` with the real dumpdata fixture: every user
# logs in with the password from the fixture README (and gets its Django
# token back; grace, who had none, gets a new one), every Django token
# authenticates in nginx (frank's: "User inactive or deleted."), frank and
# heidi cannot log in. A second import changes nothing; a malformed file is
# refused with its position and writes nothing.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;
use AuthToken::Issuer;

my $fixtures = $ENV{AUTHTOKEN_FIXTURES_DIR}
    || abs_path(dirname(__FILE__)) . '/fixtures';
my $dump = "$fixtures/django-dumpdata.json";

my $dir = issuer_setup();
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                 '--throttle-user-addr-rate', 'off');

# A malformed file first: refused with a position, and Redis stays empty.
{
    open my $in, '<', $dump or die "$dump: $!";
    local $/;
    my $text = <$in>;
    $text =~ s/"is_active": false/"is_active": "no"/;
    open my $out, '>', "$dir/bad.json" or die;
    print $out $text;
    close $out;
}
our @bad = ctl('import-django', "$dir/bad.json");
# (Not counting the heartbeat a running authtokend writes every second.)
our $keys_after_bad =
    grep { $_ ne 'authtoken:heartbeat' } @{ redis_cmd('KEYS', 'authtoken:*') };

our @first = ctl('import-django', $dump);
# Every user and token record, field by field (hash order is not stable).
sub snapshot {
    my @out;
    for my $k (sort grep { /^authtoken:(?:user|token):/ }
               @{ redis_cmd('KEYS', 'authtoken:*') }) {
        my %h = @{ redis_cmd('HGETALL', $k) };
        push @out, "$k=" . join '|', map { "$_:$h{$_}" } sort keys %h;
    }
    return join ',', @out;
}
our $dump_before = snapshot();
our @second = ctl('import-django', $dump);
our $dump_after = snapshot();

# A user created after the import gets a uid past Django's.
ctl_ok({ stdin => "x\n" }, 'createuser', 'newcomer', '--password-stdin');
our $newcomer_uid = redis_cmd('GET', 'authtoken:username:newcomer');

our %token = (
    admin => 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7',
    carol => '77ef650bd8240910af65f4d890b1036f507031c6',
    dave  => '736f84cb9986bde3a264ba29e21c1f6598a11fe1',
    erin  => 'bc224c697c0a8181e780997c0ec23185bf3e0421',
    frank => 'd59b0e50cfaa49fdbbe17df0693a84381a235a0c',
    heidi => '8668f8c7786039c77c45c3fb67c21e820328a342',
);

# grace had no token in Django: her first login after the import creates
# one (TEST 11 then gets the same one through nginx, TEST 14 uses it).
# Made here, not in a block's --- init: upstream Test::Nginx evaluates a
# block's sections before its init runs.
our $grace_token;
$grace_token = AuthToken::Issuer::obtain_token('grace', 'no-token-yet');
die "grace's new token is one of the fixture's" if grep { $_ eq $grace_token } values %token;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<'_EOC_');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_
    $block->set_value(config => <<'_EOC_');
    location /api/ {
        auth_token on;
        proxy_set_header X-User $auth_token_user;
        proxy_set_header X-Uid $auth_token_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
    }
    location /upstream/ {
        return 200 "$http_x_user $http_x_uid\n";
    }
    location = /api-token-auth/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
    }
_EOC_
    $block->set_value(no_error_log => "[alert]\n[emerg]\n");
});

# Perl checks of the CLI's answers, before nginx is involved.
is($bad[0], 1, 'a malformed file is refused');
like($bad[2], qr{at /4/fields/is_active: expected true or false; nothing was imported},
     'with the JSON position of the problem');
is($keys_after_bad, 0, 'and nothing is written');
is($first[0], 0, 'the fixture imports');
like($first[1], qr/Imported 7 users and 6 tokens .*\(7 new, 0 updated, 0 unchanged\)/,
     'seven users, six tokens');
like($second[1], qr/\(0 new, 0 updated, 7 unchanged\)/, 'a second import changes nothing');
is($dump_after, $dump_before, 'not a single field, not even a sealed key');
is($newcomer_uid, 8, 'new users get uids after the imported ones');

run_tests();

__DATA__

=== TEST 1: admin's Django token authenticates as uid 1
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{admin}"
--- error_code: 200
--- response_body
admin 1



=== TEST 2: carol's Django token authenticates as uid 2
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{carol}"
--- error_code: 200
--- response_body
carol 2



=== TEST 3: dave's Django token authenticates as uid 3
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{dave}"
--- error_code: 200
--- response_body
dave 3



=== TEST 4: erin's Django token authenticates as uid 4
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{erin}"
--- error_code: 200
--- response_body
erin 4



=== TEST 5: heidi's Django token authenticates as uid 7
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{heidi}"
--- error_code: 200
--- response_body
heidi 7



=== TEST 6: frank's Django token: "User inactive or deleted."
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::token{frank}"
--- error_code: 401
--- response_body chomp
{"detail":"User inactive or deleted."}



=== TEST 7: admin logs in with the Django password and gets the Django token
--- request
POST /api-token-auth/
{"username": "admin", "password": "admin-pass-123"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body eval
qq{{"token":"$::token{admin}"}}



=== TEST 8: carol logs in with the Django password and gets the Django token
--- request
POST /api-token-auth/
{"username": "carol", "password": "correct horse battery staple"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body eval
qq{{"token":"$::token{carol}"}}



=== TEST 9: dave logs in with the Django password and gets the Django token
--- request
POST /api-token-auth/
{"username": "dave", "password": "p@ssw0rd-üß"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body eval
qq{{"token":"$::token{dave}"}}



=== TEST 10: erin logs in with the Django password and gets the Django token
--- request
POST /api-token-auth/
{"username": "erin", "password": "erin's secret"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body eval
qq{{"token":"$::token{erin}"}}



=== TEST 11: grace, who had no token in Django, gets a new one
--- request
POST /api-token-auth/
username=grace&password=no-token-yet
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body eval
qq({"token":"$::grace_token"})



=== TEST 12: frank cannot log in (inactive)
--- request
POST /api-token-auth/
{"username": "frank", "password": "frank-inactive"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body chomp
{"non_field_errors":["Unable to log in with provided credentials."]}



=== TEST 13: heidi cannot log in (unusable password, even its stored form)
--- request
POST /api-token-auth/
{"username": "heidi", "password": "!WsGVlrcqth3mS1Z99n3WVB8GirZvsvjTCgQvG0dA"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body chomp
{"non_field_errors":["Unable to log in with provided credentials."]}



=== TEST 14: grace's new token authenticates through nginx, as her Django uid
--- request
GET /api/x
--- more_headers eval
"Authorization: Token $::grace_token"
--- error_code: 200
--- response_body
grace 6
