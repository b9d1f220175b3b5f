# What `authtokenctl import-django` refuses, reports and keeps in step:
# usernames with control characters or whitespace at either end (refused
# with their positions; --escape-unsafe-usernames stores them escaped, and
# neither the upstream nor `authtokenctl users` ever sees the raw bytes),
# token keys that are not 40 hex characters (refused, counted and placed;
# --allow-weak-keys), argon2 hashes over the work caps (refused), plain-text
# passwords (imported, counted, and their failed logins logged as such,
# never with the password). A re-import that deactivates a user makes nginx
# refuse that user's token at once; an import that reuses another user's
# username or uid is refused and writes nothing.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::Issuer;
use AuthToken::Hostile;

my $dir = issuer_setup();
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            proxy_set_header X-User $auth_token_user;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream/;
        }
        location /upstream/ {
            return 200 "user=[$http_x_user] headers=[$http_x_auth_user]\n";
        }
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
    }
HTTP
my $nport = nginx_port();

my $n = 0;
sub dump_file {
    my (@objects) = @_;
    my $path = "$dir/dump" . ++$n . '.json';
    open my $fh, '>', $path or die;
    print $fh '[' . join(',', @objects) . ']';
    close $fh;
    return $path;
}
sub user {
    my ($pk, $name_json, %f) = @_;
    my $password = $f{password} // '!unusable';
    my $active = ($f{active} // 1) ? 'true' : 'false';
    return qq({"model":"auth.user","pk":$pk,"fields":{"password":"$password",)
         . qq("username":$name_json,"is_active":$active,"is_staff":false,)
         . qq("is_superuser":false,"last_login":null}});
}
sub token {
    my ($key, $uid) = @_;
    return qq({"model":"authtoken.token","pk":"$key","fields":{"user":$uid,)
         . qq("created":"2026-01-01T00:00:00Z"}});
}
# The data's keys: not the heartbeat a running authtokend writes every second.
sub data_keys { grep { $_ ne 'authtoken:heartbeat' } @{ redis_cmd('KEYS', 'authtoken:*') } }
sub keys_now { scalar(my @k = data_keys()) }
# The whole answer as text ("HTTP/1.1 200 OK\r\n...").
sub api {
    my ($key) = @_;
    my $res = raw_http($nport, "GET /api/x HTTP/1.1\r\nHost: x\r\n"
        . "Authorization: Token $key\r\nConnection: close\r\n\r\n");
    return $res ? $res->{raw} : '';
}

my $key_a = 'a' x 40;
my $key_b = 'b' x 40;

subtest 'unsafe usernames are refused with their positions' => sub {
    my $file = dump_file(user(1, '"ok"'),
                         user(2, '"evil\r\nX-Auth-User: admin"'),
                         user(3, '" padded "'),
                         token($key_b, 2));
    my ($code, $out, $err) = ctl('import-django', $file);
    is($code, 1, 'the import fails');
    like($err, qr{2 usernames with control characters or whitespace at either end .*: at /1/fields/username, /2/fields/username},
         'naming how many and where');
    like($err, qr/nothing was imported/, 'all or nothing');
    is(keys_now(), 0, 'and nothing is written');

    ($code, $out, $err) = ctl('import-django', $file, '--escape-unsafe-usernames');
    is($code, 0, '--escape-unsafe-usernames imports them');
    like($err, qr{2 usernames .* imported escaped .*: at /1/fields/username, /2/fields/username},
         'and says which');
    my $list = ctl_ok('users');
    unlike($list, qr/[\x00-\x09\x0b-\x1f\x7f]/, '`users` prints no control bytes');
    like($list, qr/evil\\x0d\\x0aX-Auth-User: admin/, 'but the escaped name');
    my $res = api($key_b);
    like($res, qr{^HTTP/1\.1 200}, "the escaped user's token works");
    like($res, qr{user=\[evil\\x0d\\x0aX-Auth-User: admin\] headers=\[\]},
         'and the upstream gets the escaped name, no injected header');
    redis_cmd('FLUSHALL');
};

subtest 'weak token keys are refused with how many and where' => sub {
    my $file = dump_file(user(1, '"a"'), user(2, '"b"'), user(3, '"c"'),
                         token('1', 1), token($key_a, 2),
                         token('shortkey', 3));
    my ($code, $out, $err) = ctl('import-django', $file);
    is($code, 1, 'the import fails');
    like($err, qr{2 token keys that are not 40 hex characters .*: at /3/pk, /5/pk},
         'naming how many and where');
    is(keys_now(), 0, 'nothing is written');
    like(api('1'), qr{^HTTP/1\.1 401 }, '"Token 1" does not authenticate');

    ($code, $out, $err) = ctl('import-django', $file, '--allow-weak-keys');
    is($code, 0, '--allow-weak-keys imports them');
    like($err, qr{Warning: 2 token keys that are not 40 hex characters were imported .*: at /3/pk, /5/pk},
         'with a warning that says where');
    redis_cmd('FLUSHALL');
};

subtest 'argon2 hashes over the work caps are refused at import' => sub {
    my $heavy = 'argon2$argon2id$v=19$m=1048576,t=64,p=64$c2FsdHNhbHQ$aGFzaGhhc2g';
    my ($code, $out, $err) = ctl('import-django',
                                 dump_file(user(1, '"heavy"', password => $heavy)));
    is($code, 1, 'refused');
    like($err, qr{1 password hashes asking for more work than the caps .*: at /0/fields/password},
         'with the position');
    is(keys_now(), 0, 'nothing is written');
};

subtest 'plain-text passwords are counted and their logins say why' => sub {
    my ($code, $out, $err) = ctl('import-django',
        dump_file(user(1, '"plain"', password => 'Plain-Text-Pw-42'),
                  user(2, '"hashed"', password => '!x')));
    is($code, 0, 'imported');
    like($err, qr{Warning: 1 users have a password in no known hash format .* changepassword .*: at /0/fields/password},
         'counted, with where and what to do');
    my $res = raw_http($nport, "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: 40\r\nConnection: close\r\n\r\n"
        . 'username=plain&password=Plain-Text-Pw-42');
    like($res->{raw}, qr{^HTTP/1\.1 400 }, 'the plain-text password, typed as stored, does not log in');
    my $log = authtokend_log();
    like($log, qr/obtain-token for "plain" from \S+: 400 password in no known hash format/,
         'the log gives the real reason');
    unlike($log, qr/Plain-Text-Pw/, 'and never the password');
    redis_cmd('FLUSHALL');
};

subtest 'a re-import that deactivates a user ends its token in nginx' => sub {
    my $file = dump_file(user(1, '"dora"'), token($key_a, 1));
    ctl_ok('import-django', $file);
    like(api($key_a), qr{^HTTP/1\.1 200 .*user=\[dora\]}s, 'the token works');
    like(api($key_a), qr{^HTTP/1\.1 200 }, 'and is cached');
    ctl_ok('import-django', dump_file(user(1, '"dora"', active => 0), token($key_a, 1)));
    like(api($key_a), qr{^HTTP/1\.1 401 .*"User inactive or deleted\."}s,
         'after the re-import nginx refuses it');
    ctl_ok('import-django', dump_file(user(1, '"dora"', active => 0)));
    ctl_ok('import-django', dump_file(user(1, '"dora"', active => 1)));
    like(api($key_a), qr{^HTTP/1\.1 200 }, 'and reactivating without a token in the file restores it');
    ctl_ok('import-django', dump_file(user(1, '"dora"', active => 0)));
    like(api($key_a), qr{^HTTP/1\.1 401 .*"User inactive or deleted\."}s,
         'as deactivating does');
    redis_cmd('FLUSHALL');
};

subtest "an import may not take another user's username or uid" => sub {
    ctl_ok({ stdin => "pw\n" }, 'createuser', 'alice', '--password-stdin');
    my $uid = redis_cmd('GET', 'authtoken:username:alice');
    my $before = join ',', sort(data_keys());
    my ($code, $out, $err) = ctl('import-django',
        dump_file(user($uid, '"mallory"')));
    is($code, 1, "an import giving alice's uid to another name is refused");
    like($err, qr/uid $uid is already user "alice"/, 'saying whose it is');
    ($code, $out, $err) = ctl('import-django', dump_file(user($uid + 100, '"alice"')));
    is($code, 1, 'an import of the name alice under another uid is refused');
    like($err, qr/username "alice" already belongs to uid $uid/, 'saying whose it is');
    is(join(',', sort(data_keys())), $before,
       'nothing was written');
    is(redis_cmd('HGET', "authtoken:user:$uid", 'username'), 'alice',
       "alice's record is intact");
};

done_testing();
