# Several tokens per user (tokens_per_user = many), through nginx with the
# module's cache in front and authtokend behind it: every login makes a new,
# optionally named, token (knox); token_limit_per_user refuses (the default)
# or drops the oldest; POST /api-token-logout/ and /api-token-logout-all/,
# GET /api-tokens/ and DELETE /api-tokens/<id>/ are checked by the issuer
# itself (every 401 path, straight to the daemon too); revoking,
# deactivating, deleting and a new password reach every token of the user
# at once at the edge (cache HITs included), and no other user's. The
# default mode (`one`) keeps DRF's one token, ignores `name`, and serves the
# same endpoints for its one token.
use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP qw(decode_json encode_json);
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;
use AuthToken::CacheEdge;
use AuthToken::Issuer;

issuer_setup();
authtokend_start();

my $conf = <<'HTTP';
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m valid=1h invalid=1h;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            add_header X-Cache $auth_token_cache_status always;
            add_header X-User $auth_token_user always;
            alias html/;
        }
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location ~ ^/(api-token-logout/|api-token-logout-all/|api-tokens/) {
            auth_token on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
    }
HTTP
nginx_start($conf);
nginx_html(x => "ok\n");
wait_subscribed(5);

# authtokend on a new port with other settings, and nginx pointed at it.
sub restart_daemon {
    authtokend_start(@_);
    nginx_reload($conf);
    wait_subscribed(5);
}

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

# A request through nginx: (status, headers, body).
sub edge {
    my ($method, $path, $token, $body) = @_;
    my %h = $token ? (Authorization => "Token $token") : ();
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = $http->request($method, 'http://127.0.0.1:' . nginx_port() . $path,
        { headers => \%h, (defined $body ? (content => $body) : ()) });
    return ($res->{status}, $res->{headers}, $res->{content});
}

# A login through nginx with a JSON body; the key, or dies.
sub login {
    my ($user, $pass, %extra) = @_;
    my ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
                              encode_json({ username => $user, password => $pass, %extra }));
    die "login $user: $s $b" unless $s == 200;
    return decode_json($b)->{token};
}

# The edge's verdict for a token, once the revocation message had 50 ms to
# land (t/034: messages are applied by the worker's event loop).
sub settle { sleep 0.05 }
sub at_edge { my $r = get($_[0]); return "$r->{status}" }

# authtokend_tokens_revoked_total, from the daemon's /metrics.
sub revoked {
    my ($s, undef, $b) = daemon_request('GET', '/metrics');
    die "metrics: $s" unless $s == 200;
    $b =~ /^authtokend_tokens_revoked_total(?:\{\})? (\d+)$/m or die "no revoked counter";
    return $1;
}

sub user { ctl_ok({ stdin => "$_[0]-pass\n" }, 'createuser', $_[0], '--password-stdin') }

# --- the default mode: one token per user, as DRF -------------------------

user('dora');
my $dora = token_of('dora');
is(login('dora', 'dora-pass', name => 'x' x 100), $dora,
   'one: a login answers the user\'s one token, and `name` is ignored (no max_length error)');
{
    my ($s, undef, $b) = edge('GET', '/api-tokens/', $dora);
    is($s, 200, 'one: GET /api-tokens/ answers 200');
    my $list = decode_json($b);
    is(scalar @$list, 1, 'one: the list holds the user\'s one token');
    is($list->[0]{id}, substr(token_digest($dora), 0, 16), 'its id is the first 16 hex digits of the digest');
    ok($list->[0]{current}, 'and it is marked current');
    unlike($b, qr/\Q$dora\E|\Q${\ token_digest($dora)}\E/, 'the body holds neither the key nor the digest');
}
is(at_edge($dora), 200, 'one: the token works at the edge before logout');
{
    my ($s, $h, $b) = edge('POST', '/api-token-logout/', $dora);
    is($s, 204, 'one: logout answers 204');
    is($b // '', '', 'with no body');
}
settle();
is(at_edge($dora), 401, 'one: the logged-out token is refused at the edge');
isnt(login('dora', 'dora-pass'), $dora, 'one: the next login makes a new token');

# --- many ------------------------------------------------------------------

restart_daemon('--tokens-per-user', 'many', '--token-limit-per-user', '3');
$ENV{AUTHTOKEN_TOKENS_PER_USER} = 'many';
$ENV{AUTHTOKEN_TOKEN_LIMIT_PER_USER} = '3';

user('alice');
user('bob');
is(redis_cmd('HGET', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:alice'), 'token'),
   undef, 'many: createuser makes no token (a key is shown only once, when made)');

my $laptop = login('alice', 'alice-pass', name => 'laptop');
my $phone = login('alice', 'alice-pass', name => '  phone  ');
isnt($laptop, $phone, 'many: each login makes a new token');
my $bobs = login('bob', 'bob-pass');
is(redis_cmd('HGET', 'authtoken:user:' . redis_cmd('GET', 'authtoken:username:alice'), 'token_sealed'),
   undef, 'many: no sealed copy of a key is kept');

for my $t ($laptop, $phone) {
    is(seen(get($t)), 'MISS 200', 'many: a new token works at the edge');
    is(seen(get($t)), 'HIT 200', 'and is then a cache hit');
}

subtest 'name is validated like a DRF CharField(max_length=64)' => sub {
    my ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
        encode_json({ username => 'alice', password => 'alice-pass', name => 'n' x 65 }));
    is($s, 400, '65 characters: 400');
    is($b, '{"name":["Ensure this field has no more than 64 characters."]}', 'DRF\'s max_length message');
    ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
        '{"username":"alice","password":"alice-pass","name":null}');
    is($b, '{"name":["This field may not be null."]}', 'null: DRF\'s null message');
    ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
        '{"username":"","password":"alice-pass","name":["x"]}');
    is($b, '{"username":["This field may not be blank."],"name":["Not a valid string."]}',
       'every field\'s errors together, name after username and password');
    ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
        encode_json({ username => 'alice', password => 'alice-pass', name => "\x{5c71}" x 64 }));
    is($s, 200, '64 characters of three bytes each are 64 characters, not 192');
};
# That login made alice's third token.
my $third = (grep { $_->{name} eq "\x{5c71}" x 64 } @{ decode_json((edge('GET', '/api-tokens/', $laptop))[2]) })[0];
ok($third, 'the third token is listed by its name');

subtest 'GET /api-tokens/ lists the caller\'s tokens, never a key or a digest' => sub {
    my ($s, $h, $b) = edge('GET', '/api-tokens/', $laptop);
    is($s, 200, 'GET answers 200');
    my $list = decode_json($b);
    is_deeply([map { $_->{name} } @$list], ['laptop', 'phone', "\x{5c71}" x 64],
              'names in creation order, trimmed as CharField trims');
    is_deeply([map { $_->{current} ? 1 : 0 } @$list], [1, 0, 0], 'the token the request carries is current');
    is_deeply([sort keys %{ $list->[0] }], [qw(created current expires id last_address last_used name)],
              'fields: id, name, created, last_used, last_address, expires, current');
    like($list->[0]{created}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'created is ISO 8601');
    is($list->[0]{expires}, undef, 'expires is null without token_ttl');
    for my $t ($laptop, $phone) {
        unlike($b, qr/\Q$t\E/, 'no key in the body');
        unlike($b, qr/\Q${\ token_digest($t)}\E/, 'no whole digest in the body');
    }
    unlike($b, qr/\Q${\ substr(token_digest($bobs), 0, 16)}\E/, 'nothing of another user\'s tokens');

    # The last use, as the edge's flush records it in the token record
    # (last_used in Unix seconds, last_addr), shown when present.
    redis_cmd('HSET', token_key($phone), 'last_used', '1700000000',
              'last_addr', '192.0.2.7');
    my ($p) = grep { $_->{name} eq 'phone' } @{ decode_json((edge('GET', '/api-tokens/', $laptop))[2]) };
    is($p->{last_used}, '2023-11-14T22:13:20Z', 'last_used as ISO 8601 UTC');
    is($p->{last_address}, '192.0.2.7', 'last_address');
    like(ctl_ok('tokens', 'alice'), qr/\sphone\s.*2023-11-14T22:13:20Z 192\.0\.2\.7\s+never$/m,
         'authtokenctl tokens shows the last use and its address');
};

subtest 'token_limit_per_user with the default policy refuses, as knox' => sub {
    my ($s, undef, $b) = edge('POST', '/api-token-auth/', undef,
        encode_json({ username => 'alice', password => 'alice-pass' }));
    is($s, 403, 'a fourth login: 403');
    is($b, '{"detail":"Maximum amount of tokens allowed per user exceeded."}', 'knox\'s message, DRF\'s shape');
    is(scalar @{ decode_json((edge('GET', '/api-tokens/', $laptop))[2]) }, 3, 'still three tokens');
    is(at_edge($laptop), 200, 'the existing ones still work');
};

subtest 'logout revokes only the token it carries, at the edge at once' => sub {
    is(seen(get($phone)), 'HIT 200', 'phone is a cache hit before');
    my $before = revoked();
    my ($s, $h, $b) = edge('POST', '/api-token-logout/', $phone);
    is(revoked() - $before, 1, 'counted in authtokend_tokens_revoked_total');
    is($s, 204, 'logout: 204 No Content');
    is($b // '', '', 'no body');
    settle();
    is(seen(get($phone)), 'MISS 401', 'the revoked token is refused at the edge (the cache dropped it)');
    is(seen(get($laptop)), 'HIT 200', 'another token of the same user still works (still cached)');
    ($s) = edge('POST', '/api-token-logout/', $phone);
    is($s, 401, 'logging out again with the dead token: 401');
};

subtest 'DELETE /api-tokens/<id>/ deletes one of the caller\'s own tokens only' => sub {
    my $bob_id = decode_json((edge('GET', '/api-tokens/', $bobs))[2])->[0]{id};
    my ($s, undef, $b) = edge('DELETE', "/api-tokens/$bob_id/", $laptop);
    is($s, 404, 'another user\'s id: 404');
    is($b, '{"detail":"Not found."}', 'DRF\'s NotFound');
    is(at_edge($bobs), 200, 'and bob\'s token still works');
    ($s, undef, $b) = edge('DELETE', '/api-tokens/no-such-id/', $laptop);
    is($s, 404, 'an id that never was: 404');
    ($s, undef, $b) = edge('DELETE', "/api-tokens/$third->{id}/", $laptop);
    is($s, 204, 'one of the caller\'s ids: 204');
    is($b // '', '', 'no body');
    ($s) = edge('DELETE', "/api-tokens/$third->{id}/", $laptop);
    is($s, 404, 'the same id again: 404');
    is(scalar @{ decode_json((edge('GET', '/api-tokens/', $laptop))[2]) }, 1, 'one token left');
};

subtest 'other methods: 405 with Allow, once authenticated (DRF runs authentication first)' => sub {
    my ($s, $h, $b) = edge('GET', '/api-token-logout/', $laptop);
    is($s, 405, 'GET /api-token-logout/: 405');
    is($h->{allow}, 'POST, OPTIONS', 'Allow: POST, OPTIONS');
    is($b, '{"detail":"Method \"GET\" not allowed."}', 'DRF\'s MethodNotAllowed');
    ($s, $h) = edge('POST', '/api-tokens/', $laptop, '{}');
    is($s, 405, 'POST /api-tokens/: 405');
    is($h->{allow}, 'GET, HEAD, OPTIONS', 'Allow: GET, HEAD, OPTIONS');
    ($s, $h) = edge('GET', '/api-tokens/x/', $laptop);
    is($s, 405, 'GET /api-tokens/<id>/: 405');
    is($h->{allow}, 'DELETE, OPTIONS', 'Allow: DELETE, OPTIONS');
    ($s, $h, $b) = edge('OPTIONS', '/api-token-logout-all/', $laptop);
    is($s, 200, 'OPTIONS: 200');
    is(decode_json($b)->{name}, 'Logout All', 'with the view\'s metadata');
    ($s) = edge('PUT', '/api-token-logout/', undef);
    is($s, 401, 'without a token, any method is 401');
};

subtest 'the issuer checks the token itself: every 401, straight to the daemon' => sub {
    my @cases = (
        [{}, 'Authentication credentials were not provided.', 'no header'],
        [{ Authorization => 'Token' }, 'Invalid token header. No credentials provided.', 'keyword alone'],
        [{ Authorization => 'Token a b' }, 'Invalid token header. Token string should not contain spaces.', 'spaces'],
        [{ Authorization => 'Token ' . ('0' x 40) }, 'Invalid token.', 'unknown key'],
        [{ Authorization => "Token $phone" }, 'Invalid token.', 'a revoked key'],
        [{ 'X-User' => 'alice', 'X-Auth-Token-User' => 'alice' }, 'Authentication credentials were not provided.',
         'identity headers alone'],
    );
    for my $path ('/api-token-logout/', '/api-token-logout-all/', '/api-tokens/') {
        for my $c (@cases) {
            my ($s, $h, $b) = daemon_request($path eq '/api-tokens/' ? 'GET' : 'POST', $path, headers => $c->[0]);
            is($s, 401, "$path, $c->[2]: 401");
            is($h->{'www-authenticate'}, 'Token', 'with WWW-Authenticate: Token');
            is($b, encode_json({ detail => $c->[1] }), "\"$c->[1]\"");
        }
    }
    # A record the user does not hold (in neither its token field nor its
    # set): the module would accept it, the issuer does not.
    my $stray = 'f' x 40;
    redis_cmd('HSET', token_key($stray), 'uid',
              redis_cmd('GET', 'authtoken:username:alice'), 'user', 'alice',
              'active', '1', 'expires', '0');
    my ($s, $h, $b) = daemon_request('GET', '/api-tokens/', headers => { Authorization => "Token $stray" });
    is("$s $b", '401 {"detail":"Invalid token."}', 'a token record the user does not hold: 401 Invalid token.');
    redis_cmd('DEL', token_key($stray));
    ($s, $h, $b) = daemon_request('PUT', '/api-token-logout/');
    is($s, 401, 'a wrong method without a token: 401 before 405 (APIView.initial() runs first)');
    is($h->{allow}, undef, 'and no Allow');
    is(at_edge($laptop), 200, 'nothing was revoked by them');
};

subtest 'logout-all revokes every token of the user at the edge, and no one else\'s' => sub {
    my $tablet = login('alice', 'alice-pass', name => 'tablet');
    is(seen(get($_)), 'MISS 200', 'cached') for $tablet;
    is(seen(get($_)), 'HIT 200', 'hit') for $laptop, $tablet, $bobs;
    my $before = revoked();
    my ($s, undef, $b) = edge('POST', '/api-token-logout-all/', $tablet);
    is($s, 204, 'logout-all: 204');
    is(revoked() - $before, 2, 'each token counted in authtokend_tokens_revoked_total');
    is($b // '', '', 'no body');
    settle();
    is(seen(get($laptop)), 'MISS 401', 'laptop refused at the edge at once');
    is(seen(get($tablet)), 'MISS 401', 'tablet refused at the edge at once');
    is(seen(get($bobs)), 'HIT 200', 'bob\'s token still works');
    is(redis_cmd('EXISTS', 'authtoken:user-tokens:' . redis_cmd('GET', 'authtoken:username:alice')), 0,
       'the user\'s token set is gone');
};

# Two cached tokens of a user, then one CLI command: both refused at once.
sub two_cached {
    my ($u) = @_;
    my @t = map { login($u, "$u-pass", name => "d$_") } 1, 2;
    get($_) for @t;
    is(seen(get($_)), 'HIT 200', "$u: a cached token") for @t;
    return @t;
}

subtest 'deactivate and activate reach every token of the user' => sub {
    user('carl');
    my @t = two_cached('carl');
    like(ctl_ok('deactivate', 'carl'), qr/deactivated/, 'deactivate');
    settle();
    for my $t (@t) {
        my $r = get($t);
        is("$r->{headers}{'x-cache'} $r->{status}", 'MISS 401', 'refused at the edge');
        is($r->{body}, '{"detail":"User inactive or deleted."}', 'as inactive');
    }
    my ($s, $h, $b) = daemon_request('GET', '/api-tokens/', headers => { Authorization => "Token $t[0]" });
    is("$s $b", '401 {"detail":"User inactive or deleted."}', 'the issuer itself: 401 inactive');
    is($h->{'www-authenticate'}, 'Token', 'with WWW-Authenticate: Token');
    ctl_ok('activate', 'carl');
    settle();
    is(seen(get($_)), 'MISS 200', 'activated: works again') for @t;
};

subtest 'deactivate and activate never recreate a token record deleted behind the issuer' => sub {
    user('gus');
    my $gone = login('gus', 'gus-pass', name => 'gone');
    my $kept = login('gus', 'gus-pass', name => 'kept');
    my $key = token_key($gone);
    is(redis_cmd('DEL', $key), 1, 'one token record deleted straight in Redis');
    ctl_ok('deactivate', 'gus');
    is(redis_cmd('EXISTS', $key), 0, 'deactivate: the deleted record stays gone');
    is(redis_cmd('HGET', token_key($kept), 'active'), '0',
       'deactivate: the other token is marked inactive');
    ctl_ok('activate', 'gus');
    is(redis_cmd('EXISTS', $key), 0, 'activate: the deleted record stays gone');
    is(redis_cmd('HGET', token_key($kept), 'active'), '1',
       'activate: the other token is active again');
    settle();
    is(at_edge($gone), 401, 'the deleted token is refused at the edge');
    is(at_edge($kept), 200, 'the other one works');
};

subtest 'authtokenctl revoke reaches every token of the user' => sub {
    user('rhea');
    my @t = two_cached('rhea');
    is(ctl_ok('revoke', 'rhea'), "Revoked 2 tokens of user rhea\n", 'revoke says how many');
    settle();
    is(seen(get($_)), 'MISS 401', 'refused at the edge') for @t;
};

subtest 'a new password revokes every token of the user (many mode)' => sub {
    user('pia');
    my @t = two_cached('pia');
    like(ctl_ok({ stdin => "pia-new\n" }, 'changepassword', 'pia', '--password-stdin'),
         qr/Every token of user pia was revoked/, 'changepassword says so');
    settle();
    is(seen(get($_)), 'MISS 401', 'refused at the edge') for @t;
};

subtest 'deleteuser reaches every token of the user' => sub {
    user('dan');
    my @t = two_cached('dan');
    ctl_ok('deleteuser', 'dan');
    settle();
    is(seen(get($_)), 'MISS 401', 'refused at the edge') for @t;
    is(redis_cmd('EXISTS', token_key($_)), 0, 'its record is deleted') for @t;
};

subtest 'expired tokens do not count toward the limit: the next login sweeps them' => sub {
    user('eve');
    my @t = map { login('eve', 'eve-pass', name => "e$_") } 1 .. 3;
    redis_cmd('HSET', token_key($t[1]), 'expires', int(time()) - 60);
    is(at_edge($t[1]), 401, 'the expired token is refused at the edge');
    my $new = login('eve', 'eve-pass', name => 'e4');
    ok($new, 'a login at the limit succeeds when one of the tokens has expired');
    is(redis_cmd('EXISTS', token_key($t[1])), 0, 'the expired record is deleted');
    is_deeply([map { $_->{name} } @{ decode_json((edge('GET', '/api-tokens/', $new))[2]) }],
              [qw(e1 e3 e4)], 'and it left the list');
    my $ttl = token_of('eve', '-r', '--ttl', '1h');
    my ($listed) = @{ decode_json((edge('GET', '/api-tokens/', $ttl))[2]) };
    my $want = int(time()) + 3600;
    my ($y, $mo, $d, $h, $mi, $sec) = $listed->{expires} =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/;
    require Time::Local;
    my $got = defined $y ? Time::Local::timegm($sec, $mi, $h, $d, $mo - 1, $y) : 0;
    ok(abs($got - $want) <= 2, 'token --ttl 1h in many mode: expires listed as ISO 8601, an hour from now')
        or diag($listed->{expires});
};

subtest 'the drop_oldest policy deletes the oldest tokens to make room' => sub {
    restart_daemon('--tokens-per-user', 'many', '--token-limit-per-user', '3',
                   '--token-limit-policy', 'drop_oldest');
    user('olga');
    my @t = map { login('olga', 'olga-pass', name => "o$_") } 1 .. 3;
    get($_) for @t;
    is(seen(get($t[0])), 'HIT 200', 'the oldest is cached');
    my $before = revoked();
    my $fourth = login('olga', 'olga-pass', name => 'o4');
    is(revoked() - $before, 1, 'the dropped token is counted as revoked');
    settle();
    is(seen(get($t[0])), 'MISS 401', 'the oldest is dropped and refused at the edge at once');
    is(at_edge($_), 200, 'the others work') for @t[1, 2], $fourth;
    is_deeply([map { $_->{name} } @{ decode_json((edge('GET', '/api-tokens/', $fourth))[2]) }],
              [qw(o2 o3 o4)], 'the list holds the newest three');
    like(authtokend_log(), qr/obtain-token for "olga".*200 \(new token, the oldest dropped at the limit\)/,
         'the daemon logs the drop');
};

subtest 'authtokenctl in many mode: token --name, tokens, users, backfill' => sub {
    user('cli');
    my $a = token_of('cli', '--name', 'script');
    my $b = token_of('cli');
    isnt($a, $b, 'token NAME makes a new token each time');
    my $table = ctl_ok('tokens', 'cli');
    like($table, qr/^id\s+name\s+created\s+last used\s+expires$/m, 'tokens: a header');
    like($table, qr/^[0-9a-f]{16}\s+script\s+\S+\s+-\s+never$/m, 'the named token');
    unlike($table, qr/\Q$a\E|\Q$b\E/, 'no key');
    my $json = decode_json(ctl_ok('tokens', 'cli', '--json'));
    is_deeply([map { $_->{name} } @$json], ['script', ''], 'tokens --json');
    is($json->[0]{id}, substr(token_digest($a), 0, 16), 'the same id as the API');
    like(ctl_ok('users'), qr/^\d+\s+cli\s+yes\s+no\s+no\s+2$/m, 'users: the number of tokens');
    my ($u) = grep { $_->{username} eq 'cli' } @{ decode_json(ctl_ok('users', '--json')) };
    ok($u->{has_token} && $u->{tokens} == 2, 'users --json: has_token and tokens');
    my $c = token_of('cli', '-r');
    settle();
    is(at_edge($_), 401, 'token -r revoked the others') for $a, $b;
    is(at_edge($c), 200, 'and its new token works');
    token_of('cli') for 1, 2;
    my ($code, undef, $err) = ctl('token', 'cli');
    is($code, 1, 'a token over the limit: exit 1');
    like($err, qr/already holds token_limit_per_user \(3\) tokens/, 'saying why');
    ($code, undef, $err) = ctl('backfill');
    is($code, 1, 'backfill refuses in many mode');
    like($err, qr/a key is shown only when it is created/, 'saying why');
};

subtest 'many mode needs a finite token_limit_per_user' => sub {
    for my $v ('0', 'off', '1001') {
        local $ENV{AUTHTOKEN_TOKEN_LIMIT_PER_USER} = $v;
        my ($code, undef, $err) = ctl('users');
        isnt($code, 0, "token_limit_per_user $v is refused");
        like($err, qr/token_limit_per_user.*(finite|from 1 to 1000)/, 'saying the bound');
    }
    local $ENV{AUTHTOKEN_TOKENS_PER_USER} = 'several';
    my ($code, undef, $err) = ctl('users');
    like($err, qr/tokens_per_user "several": expected one or many/, 'tokens_per_user: one or many');
};

done_testing();
