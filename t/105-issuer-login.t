# Logins through nginx that only unit tests covered before: an outdated
# hash is upgraded on a successful login (Django's must_update) and keeps
# working; a pbkdf2_sha1 user (Django's older hasher) logs in; a form's '+'
# is a space and the username is stripped (str.strip), the password not.
# Each token obtained is checked to authenticate at an auth_token location.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;
use AuthToken::Server;

issuer_setup(); # new hashes: pbkdf2_sha256, 1000 iterations
{
    local $ENV{AUTHTOKEN_PBKDF2_ITERATIONS} = 500;
    ctl_ok({ stdin => "right\n" }, 'createuser', 'upgrader', '--password-stdin');
}
ctl_ok({ stdin => "x\n" }, 'createuser', 'sha1user', '--password-stdin');
redis_cmd('HSET', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:sha1user'),
          'password', 'pbkdf2_sha1$1000$sha1SaltSha1SaltSha1S1$2lczjRsbWm7k8yp0tMt7/A5ppjk=');
ctl_ok({ stdin => "pa ss word\n" }, 'createuser', 'spaced', '--password-stdin');
authtokend_start();
nginx_start(<<'_EOC_');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location /api/ {
            auth_token on;
            proxy_set_header X-User $auth_token_user;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
        }
        location /upstream/ {
            return 200 "$http_x_user\n";
        }
    }
_EOC_

sub hash_of {
    redis_cmd('HGET', 'authtoken:user:' . redis_cmd('GET', "authtoken:username:$_[0]"),
              'password');
}
# The user the token authenticates as at /api/, or the status.
sub authenticates_as {
    my ($body) = @_;
    my ($key) = ($body // '') =~ /^\{"token":"([0-9a-f]{40})"\}$/ or return 'no token';
    my $res = http_request('/api/x', Authorization => "Token $key");
    return $res->{status} == 200 ? $res->{body} : $res->{status};
}

# Must_update: 500 iterations is not the policy's 1000.
like(hash_of('upgrader'), qr/^pbkdf2_sha256\$500\$/, 'upgrader starts at 500 iterations');
my $first = login(nginx_port(), 'upgrader', 'right');
is($first->{status}, 200, 'the login with the outdated hash succeeds');
like(hash_of('upgrader'), qr/^pbkdf2_sha256\$1000\$/,
     'and the hash is upgraded to the current policy');
my $again = login(nginx_port(), 'upgrader', 'right');
is($again->{status}, 200, 'the upgraded hash checks the same password');
is($again->{body}, $first->{body}, 'and gives the same token');
is(authenticates_as($again->{body}), "upgrader\n", 'which authenticates');
is(login(nginx_port(), 'upgrader', 'wrong')->{status}, 400,
   'and a wrong password still fails');

# pbkdf2_sha1, Django's PBKDF2SHA1PasswordHasher.
my $sha1 = login(nginx_port(), 'sha1user', 'sha1-password');
is($sha1->{status}, 200, 'a pbkdf2_sha1 user logs in through nginx');
is(authenticates_as($sha1->{body}), "sha1user\n", 'its token authenticates');
like(hash_of('sha1user'), qr/^pbkdf2_sha256\$1000\$/,
     'and its hash moves to the default hasher');
is(login(nginx_port(), 'sha1user', 'sha1-passwore')->{status}, 400,
   'a wrong password against pbkdf2_sha1 fails');

# Forms: '+' is a space; the username is stripped, the password is not.
my $plus = login(nginx_port(), undef, undef,
                 body => 'username=++spaced+&password=pa+ss+word');
is($plus->{status}, 200, "'+' is a space, and the username is stripped");
is(authenticates_as($plus->{body}), "spaced\n", 'the token is spaced\'s');
is(login(nginx_port(), undef, undef,
         body => 'username=spaced&password=pa%2Bss%2Bword')->{status}, 400,
   "an escaped '+' is a plus sign");
is(login(nginx_port(), undef, undef,
         body => 'username=spaced&password=+pa+ss+word')->{status}, 400,
   'the password is not stripped');

done_testing();
