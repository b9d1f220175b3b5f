# No token key and no password in clear anywhere we write: after a whole
# session (CLI create/changepassword/token -r, obtain with every body type
# and with wrong passwords, nginx lookups with valid, revoked and unknown
# keys, nginx's error log at info), the Redis keyspace (every key name and
# every value), the daemon's log, nginx's error and access logs and every
# answer of the CLI other than `token` hold none of them. Digests and the
# sealed form are what Redis holds.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;
use AuthToken::Hostile;

issuer_setup();
authtokend_start();   # default throttling: wrong passwords are counted
my $dport = authtokend_port();

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m;
    log_format full '$remote_addr "$request" $status $auth_token_status $auth_token_user';
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        access_log logs/access.log full;
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location /api/ {
            auth_token on;
            default_type application/json;
            alias html/;
        }
    }
HTTP
nginx_html(hello => "{}\n");
my $nport = nginx_port();

my @passwords = ('Pa55-first-secret', 'Second-p4ssword!', 'c-h-a-n-g-e-d-pw', 'wrong-guess-7734');
my (@tokens, @cli_output);

sub cli {
    my ($code, $out, $err) = ctl(@_);
    push @cli_output, $out . $err;
    return ($code, $out, $err);
}

sub post {
    my ($ct, $body) = @_;
    return raw_http($nport, "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: $ct\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n$body");
}

sub api {
    my ($key) = @_;
    return raw_http($nport, "GET /api/hello HTTP/1.1\r\nHost: x\r\n"
        . "Authorization: Token $key\r\nConnection: close\r\n\r\n");
}

is((cli({ stdin => "$passwords[0]\n" }, 'createuser', 'carol', '--password-stdin'))[0], 0, 'createuser carol');
is((cli({ stdin => "$passwords[1]\n" }, 'createuser', 'dave', '--password-stdin', '--superuser'))[0], 0, 'createuser dave');
push @tokens, token_of('carol'), token_of('dave');

# Logins of every kind through nginx.
my $r = post('application/x-www-form-urlencoded', "username=carol&password=$passwords[0]");
is($r->{status}, 200, 'form login');
$r = post('application/json', qq{{"username":"dave","password":"$passwords[1]"}});
is($r->{status}, 200, 'JSON login');
$r = post('multipart/form-data; boundary=Q',
          "--Q\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\ncarol\r\n"
          . "--Q\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n$passwords[0]\r\n--Q--\r\n");
is($r->{status}, 200, 'multipart login');
# Wrong passwords (throttle counters get written), and a password typed
# into the username field by mistake.
for (1 .. 3) {
    $r = post('application/x-www-form-urlencoded', "username=carol&password=$passwords[3]");
    is($r->{status}, 400, 'a wrong password');
}
# Password change, rotation, revocation.
is((cli({ stdin => "$passwords[2]\n" }, 'changepassword', 'carol', '--password-stdin'))[0], 0, 'changepassword');
$r = post('application/x-www-form-urlencoded', "username=carol&password=$passwords[2]");
is($r->{status}, 200, 'login with the new password');
push @tokens, token_of('dave', '-r');
cli('revoke', 'carol');
$r = post('application/x-www-form-urlencoded', "username=carol&password=$passwords[2]");
is($r->{status}, 200, 'login after revoke creates a new token');
my ($new) = $r->{body} =~ /"token":"([0-9a-f]{40})"/;
push @tokens, $new;
# nginx lookups: valid, revoked, unknown, malformed.
is(api($tokens[-1])->{status}, 200, 'the new token works');
is(api($tokens[-1])->{status}, 200, 'twice (a cache hit)');
is(api($tokens[0])->{status}, 401, 'the revoked one is refused');
is(api($tokens[1])->{status}, 401, 'the rotated one is refused');
my $unknown = 'ffffeeeeddddccccbbbbaaaa9999888877776666';
push @tokens, $unknown;
is(api($unknown)->{status}, 401, 'an unknown key is refused');
is(api("$tokens[-2] extra")->{status}, 401, 'a malformed header with a real key is refused');
# Throttling wrote its counters.
ok(scalar(grep { /^authtoken:throttle:/ } keys %{ redis_snapshot() }), 'throttle counters exist (checked below too)');
cli('users');

my @secrets = (@passwords, @tokens);
# Sanity: the secrets are real and the scan can find them.
ok(find_in_clear("x$tokens[2]x", @secrets), 'the scan finds a planted token (it can fail)');

subtest 'Redis: no key name and no value holds a key or a password' => sub {
    my $all = redis_everything();
    cmp_ok(length $all, '>', 500, 'the keyspace was read');
    is_deeply([find_in_clear($all, @secrets)], [], 'none of the 4 passwords and 6 keys in clear');
    # The digests are there instead.
    like($all, qr/\Q${\ token_key($tokens[-2])}\E/, 'the live token is stored as its digest (its base64url)');
    like($all, qr/token_sealed=bytes:02[0-9a-f]{96}(?![0-9a-f])/,
         'and sealed in the user record (schema version 2: 49 bytes, the key packed)');
    # Nor in hex or base64 of the keys (a careless encoding).
    my @encoded = map { unpack('H*', $_) } @secrets;
    is_deeply([find_in_clear($all, @encoded)], [], 'nor their hex encodings');
};

my $daemon_log = authtokend_log();
my $nginx_log = nginx_error_log();
my $access_log = do {
    open my $fh, '<', AuthToken::Server::_root() . '/logs/access.log' or die;
    local $/;
    <$fh>;
};
like($nginx_log, qr/\[info\].*token was not found/, 'nginx logged at info');
like($daemon_log, qr/obtain-token for "carol"/, 'the daemon logged the logins');
is_deeply([find_in_clear($daemon_log, @secrets)], [], 'the daemon log holds no key and no password');
is_deeply([find_in_clear($nginx_log, @secrets)], [], 'nginx\'s error log (info) holds no key and no password');
is_deeply([find_in_clear($access_log, @secrets)], [], 'nor its access log');
# The CLI prints a key only from `token`; every other answer is clean.
is_deeply([find_in_clear(join("\n", @cli_output), @secrets)], [],
          'no CLI output (createuser, changepassword, revoke, users) shows a key or a password');

nginx_stop();
done_testing();
