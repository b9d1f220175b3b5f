# The staff admin API (/api-admin/), through nginx with `auth_token on` in
# front of authtokend, as an operator deploys it: who gets in (no token
# 401 with the challenge, non-staff 403, inactive staff 401 at the edge and
# at the issuer, staff, superusers), each operation (create, list, search,
# page, get, activate, deactivate, set password, regenerate, revoke,
# delete) with its effect at the edge, DRF's validation errors and
# PageNumberPagination, what only superusers may do, and the audit line
# each change leaves (never a password or a key). t/133 proves that
# authtokenctl and the API give the same results.
use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP qw(decode_json encode_json);
use File::Temp qw(tempdir);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;

issuer_setup();
authtokend_start('--admin-page-size', '2');

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api-admin/ {
            auth_token on;
            proxy_set_header Host $http_host;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location /api/ {
            auth_token on;
            add_header X-User $auth_token_user always;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");

my $base = 'http://127.0.0.1:' . nginx_port();
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

# (status, headers, decoded body or raw text) of one request through nginx;
# %opt: token, json (a body to encode), raw (a body as is), direct (to
# the daemon, bypassing nginx), headers.
sub api {
    my ($method, $path, %opt) = @_;
    my %h = %{ $opt{headers} || {} };
    $h{Authorization} = "Token $opt{token}" if $opt{token};
    my $content;
    if (exists $opt{json}) {
        $content = encode_json($opt{json});
        $h{'Content-Type'} = 'application/json';
    } elsif (defined $opt{raw}) {
        $content = $opt{raw};
    }
    my $url = $opt{direct} ? 'http://127.0.0.1:' . authtokend_port() . $path
                           : "$base$path";
    my $res = $http->request($method, $url,
        { headers => \%h, defined $content ? (content => $content) : () });
    my $body = $res->{content} // '';
    my $decoded = eval { decode_json($body) };
    return ($res->{status}, $res->{headers}, $decoded // $body);
}

# The edge's verdict on a key: 200 with the user, or the 401 detail.
sub edge {
    my ($token) = @_;
    my $res = $http->get("$base/api/x", { headers => { Authorization => "Token $token" } });
    return $res->{status} == 200 ? "200 $res->{headers}{'x-user'}\n"
                                 : "$res->{status} $res->{content}";
}

ctl_ok({ stdin => "root-pass\n" }, 'createuser', 'root', '--superuser', '--password-stdin');
ctl_ok({ stdin => "staff-pass\n" }, 'createuser', 'staff', '--staff', '--password-stdin', '--email', 'Ops@Example.com');
ctl_ok({ stdin => "other-pass\n" }, 'createuser', 'otherstaff', '--staff', '--password-stdin');
ctl_ok({ stdin => "plain-pass\n" }, 'createuser', 'plain', '--password-stdin');
ctl_ok({ stdin => "gone-pass\n" }, 'createuser', 'gonestaff', '--staff', '--password-stdin');
my $root = token_of('root');
my $staff = token_of('staff');
my $plain = token_of('plain');
my $gone = token_of('gonestaff');
ctl_ok('deactivate', 'gonestaff');

# Every key and password this file hands out or sends, for the check that
# none reaches the log.
my @secrets = ($root, $staff, $plain, $gone, qw(root-pass staff-pass plain-pass));

subtest 'who gets in' => sub {
    my ($s, $h, $b) = api('GET', '/api-admin/users/');
    is($s, 401, 'no token: 401');
    is($h->{'www-authenticate'}, 'Token', 'with WWW-Authenticate: Token');
    is_deeply($b, { detail => 'Authentication credentials were not provided.' }, "DRF's NotAuthenticated body");

    ($s, $h, $b) = api('GET', '/api-admin/users/', direct => 1);
    is($s, 401, 'no token straight to the daemon: 401 from the issuer itself');
    is($h->{'www-authenticate'}, 'Token', 'with the challenge');

    ($s, undef, $b) = api('GET', '/api-admin/users/', token => $plain);
    is($s, 403, 'a user who is not staff: 403');
    is_deeply($b, { detail => 'You do not have permission to perform this action.' }, "DRF's PermissionDenied body");

    ($s, undef, $b) = api('GET', '/api-admin/users/', token => $plain,
                          direct => 1, headers => { 'X-User' => 'root', 'X-Auth-Token-User' => 'root' });
    is($s, 403, 'an identity header naming a superuser changes nothing: the issuer checks the token');

    ($s, $h, $b) = api('GET', '/api-admin/users/', token => $gone);
    is($s, 401, 'inactive staff: 401 at the edge');
    is_deeply($b, { detail => 'User inactive or deleted.' }, 'User inactive or deleted.');
    ($s, $h, $b) = api('GET', '/api-admin/users/', token => $gone, direct => 1);
    is($s, 401, 'inactive staff straight to the daemon: 401 from the issuer');
    is_deeply($b, { detail => 'User inactive or deleted.' }, 'with the same body');
    is($h->{'www-authenticate'}, 'Token', 'and the challenge');

    ($s, undef, $b) = api('GET', '/api-admin/users/', token => 'f' x 40, direct => 1);
    is($s, 401, 'an unknown key straight to the daemon: 401');
    is_deeply($b, { detail => 'Invalid token.' }, 'Invalid token.');

    ($s) = api('GET', '/api-admin/users/', token => $staff);
    is($s, 200, 'staff: 200');
    ($s) = api('GET', '/api-admin/users/', token => $root);
    is($s, 200, 'superuser: 200');

    ($s, $h, $b) = api('PUT', '/api-admin/users/', token => $staff);
    is($s, 405, 'a method the resource has not: 405 (after authentication, as DRF)');
    is($h->{allow}, 'GET, POST, HEAD, OPTIONS', 'with Allow');
    is_deeply($b, { detail => 'Method "PUT" not allowed.' }, "DRF's MethodNotAllowed body");
    ($s) = api('PUT', '/api-admin/users/', token => $plain);
    is($s, 403, 'a non-staff user learns nothing about methods: 403 first');
    ($s, undef, $b) = api('GET', '/api-admin/nothing/', token => $staff);
    is($s, 404, 'an unknown admin path: 404');
};

subtest 'list, search and PageNumberPagination (page size 2)' => sub {
    my ($s, undef, $b) = api('GET', '/api-admin/users/', token => $staff);
    is($b->{count}, 5, 'count: every user');
    is($b->{previous}, undef, 'first page: no previous');
    is($b->{next}, "$base/api-admin/users/?page=2", 'next: an absolute URL from the Host header');
    is_deeply([map { $_->{username} } @{ $b->{results} }], [qw(root staff)], 'two results, in creation order');
    my ($r) = grep { $_->{username} eq 'staff' } @{ $b->{results} };
    is_deeply([sort keys %$r],
              [sort qw(id username email is_active is_staff is_superuser date_joined
                       has_token token_expired token_created token_expires)],
              'a user shows its flags and token state');
    ok(!exists $r->{password} && !exists $r->{token}, 'never its password hash or key');
    ok($r->{is_staff} && !$r->{is_superuser} && $r->{has_token}, 'flags as JSON booleans');

    ($s, undef, $b) = api('GET', '/api-admin/users/?page=2', token => $staff);
    is($b->{previous}, "$base/api-admin/users/", 'page 2: previous drops the page parameter (remove_query_param)');
    is($b->{next}, "$base/api-admin/users/?page=3", 'page 2: next');
    ($s, undef, $b) = api('GET', '/api-admin/users/?page=last', token => $staff);
    is_deeply([map { $_->{username} } @{ $b->{results} }], ['gonestaff'], "page=last: the last page");
    is($b->{next}, undef, 'the last page: no next');
    is($b->{previous}, "$base/api-admin/users/?page=2", 'previous of page 3');
    for my $bad ('99', '0', 'abc', '1.5', '') {
        ($s, undef, $b) = api('GET', "/api-admin/users/?page=$bad", token => $staff);
        is($s, 404, "page=$bad: 404");
        is_deeply($b, { detail => 'Invalid page.' }, 'Invalid page.');
    }

    ($s, undef, $b) = api('GET', '/api-admin/users/?search=STAFF', token => $staff);
    is($b->{count}, 3, 'search: case-insensitive, in usernames');
    is($b->{next}, "$base/api-admin/users/?page=2&search=STAFF", 'next keeps the search, parameters sorted as DRF does');
    ($s, undef, $b) = api('GET', '/api-admin/users/?search=example.com', token => $staff);
    is_deeply([map { $_->{username} } @{ $b->{results} }], ['staff'], 'search: in emails too');
    ($s, undef, $b) = api('GET', '/api-admin/users/?search=other+staff', token => $staff);
    is_deeply([map { $_->{username} } @{ $b->{results} }], ['otherstaff'], 'search: every term must match (SearchFilter)');
    ($s, undef, $b) = api('GET', '/api-admin/users/?search=nobody', token => $staff);
    is_deeply($b, { count => 0, next => undef, previous => undef, results => [] }, 'no match: an empty first page, not 404');

    ($s, undef, $b) = api('GET', '/api-admin/users/plain/', token => $staff);
    is($s, 200, 'GET one user');
    is($b->{username}, 'plain', 'by username');
    ($s, undef, $b) = api('GET', '/api-admin/users/nobody/', token => $staff);
    is($s, 404, 'an unknown user: 404');
    is_deeply($b, { detail => 'Not found.' }, 'Not found.');
};

my @created_keys;

subtest 'create: the token is made as post_save would, and works at the edge' => sub {
    my ($s, $h, $b) = api('POST', '/api-admin/users/', token => $staff,
                          json => { username => 'newbie', password => 'newbie-pass', email => 'n@example.com' });
    is($s, 201, '201 Created');
    like($b->{token}, qr/^[0-9a-f]{40}$/, 'the new token, shown once to its creator');
    push @created_keys, $b->{token};
    push @secrets, 'newbie-pass', $b->{token};
    ok($b->{is_active} && !$b->{is_staff} && !$b->{is_superuser}, 'an active, ordinary user');
    is($h->{'cache-control'}, 'no-store', 'not cacheable (it holds a key)');
    is(edge($b->{token}), "200 newbie\n", 'the token authenticates at the edge');
    is(AuthToken::Issuer::obtain_token('newbie', 'newbie-pass'), $b->{token},
       'a login with the password answers that same token');
    (undef, undef, my $again) = api('GET', '/api-admin/users/newbie/', token => $staff);
    ok(!exists $again->{token}, 'GET never shows the key');

    ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, json => { username => 'nopass' });
    is($s, 201, 'without a password: created');
    my ($code) = AuthToken::Issuer::obtain_direct('nopass', 'anything');
    is($code, 400, 'with an unusable password (no login)');
    push @created_keys, $b->{token};
};

subtest 'validation errors, as DRF and Django word them' => sub {
    my @cases = (
        [{}, { username => ['This field is required.'] }, 'no username'],
        [{ username => '' }, { username => ['This field may not be blank.'] }, 'blank username'],
        [{ username => '   ' }, { username => ['This field may not be blank.'] }, 'whitespace username'],
        [{ username => 'bad name!' },
         { username => ['Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.'] },
         "Django's username validator"],
        [{ username => 'x' x 151 },
         { username => ['Ensure this value has at most 150 characters (it has 151).'] }, 'max_length 150'],
        [{ username => 'newbie' }, { username => ['A user with that username already exists.'] }, 'a taken username'],
        [{ username => 'pw', password => '' }, { password => ['This field may not be blank.'] }, 'blank password'],
        [{ username => 'flag', is_staff => 'maybe' }, { is_staff => ['Must be a valid boolean.'] }, 'a flag that is not a boolean'],
        [{ username => 'em', email => 'not-an-email' }, { email => ['Enter a valid email address.'] },
         "Django's EmailValidator"],
        [{ username => '', email => 'x@' },
         { username => ['This field may not be blank.'], email => ['Enter a valid email address.'] },
         'every field that is wrong, together'],
        [{ username => 7 }, undef, 'a number as username is its str() (DRF CharField)'],
    );
    for my $c (@cases) {
        my ($body, $want, $what) = @$c;
        my ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, json => $body);
        if ($want) {
            is($s, 400, "$what: 400");
            is_deeply($b, $want, "$what: " . encode_json($want));
        } else {
            is($s, 201, "$what: 201");
        }
    }
    my ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, raw => '[1]',
                             headers => { 'Content-Type' => 'application/json' });
    is_deeply($b, { non_field_errors => ['Invalid data. Expected a dictionary, but got list.'] }, 'a JSON list: DRF\'s invalid data');
    ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, raw => '{"username":',
                          headers => { 'Content-Type' => 'application/json' });
    is($s, 400, 'broken JSON: 400');
    like($b->{detail}, qr/^JSON parse error - /, "DRF's parse error");
    ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, raw => 'username=x',
                          headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    is($s, 415, 'a form body: 415 (the API parses JSON)');
    is(redis_cmd('EXISTS', 'authtoken:username:x'), 0, 'and nothing was created');
    is(redis_cmd('EXISTS', 'authtoken:username:flag'), 0, 'no refused request created anything');
    is(redis_cmd('EXISTS', 'authtoken:username:em'), 0, 'nor the one with a bad email');
};

subtest 'what only a superuser may do' => sub {
    my ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff,
                             json => { username => 'boss', is_superuser => JSON::PP::true });
    is($s, 403, 'staff cannot create a superuser');
    ($s) = api('POST', '/api-admin/users/', token => $staff, json => { username => 'boss', is_staff => 'true' });
    is($s, 403, 'nor a staff user');
    is(redis_cmd('EXISTS', 'authtoken:username:boss'), 0, 'nothing created');
    for my $op (['PATCH', '/api-admin/users/otherstaff/', { is_active => JSON::PP::false }],
                ['DELETE', '/api-admin/users/otherstaff/'],
                ['POST', '/api-admin/users/otherstaff/token/'],
                ['DELETE', '/api-admin/users/otherstaff/token/'],
                ['PATCH', '/api-admin/users/root/', { password => 'taken-over' }]) {
        my ($m, $p, $j) = @$op;
        ($s) = api($m, $p, token => $staff, $j ? (json => $j) : ());
        is($s, 403, "staff cannot $m $p (a staff user or superuser)");
    }
    my ($code) = AuthToken::Issuer::obtain_direct('root', 'taken-over');
    is($code, 400, "the superuser's password was not changed");
    ($s, undef, $b) = api('POST', '/api-admin/users/', token => $root, json => { username => 'boss', is_superuser => 1, password => 'boss-pass' });
    push @secrets, 'boss-pass', $b->{token};
    is($s, 201, 'a superuser creates a superuser');
    ok($b->{is_superuser} && $b->{is_staff}, 'who is staff too (create_superuser)');
    ($s, undef, $b) = api('PATCH', '/api-admin/users/otherstaff/', token => $root, json => { is_active => JSON::PP::false });
    is($s, 200, 'a superuser changes a staff user');
    ok(!$b->{is_active}, 'now inactive');
    ($s, undef, $b) = api('PATCH', '/api-admin/users/plain/', token => $staff, json => { is_staff => JSON::PP::true });
    is($s, 400, 'is_staff cannot be granted through PATCH');
    is_deeply($b, { is_staff => ['This field cannot be changed here.'] }, 'and says so');
};

subtest 'activate, deactivate, set password, regenerate, revoke, delete' => sub {
    my $key = token_of('plain');
    my ($s, undef, $b) = api('PATCH', '/api-admin/users/plain/', token => $staff, json => { is_active => JSON::PP::false });
    is($s, 200, 'deactivate: 200');
    ok(!$b->{is_active}, 'shows is_active false');
    is(edge($key), qq{401 {"detail":"User inactive or deleted."}}, 'the edge refuses the token at once');
    ($s, undef, $b) = api('PATCH', '/api-admin/users/plain/', token => $staff, json => { is_active => 'yes' });
    ok($b->{is_active}, 'activate ("yes" is a boolean to DRF)');
    is(edge($key), "200 plain\n", 'the token works again');

    ($s) = api('PATCH', '/api-admin/users/plain/', token => $staff, json => { password => 'plain-new' });
    push @secrets, 'plain-new';
    is($s, 200, 'set a password');
    is(AuthToken::Issuer::obtain_token('plain', 'plain-new'), $key, 'the new password logs in; the token is kept (DRF)');
    ($s) = api('PATCH', '/api-admin/users/plain/', token => $staff, json => { password => 'plain-newer', revoke_token => JSON::PP::true });
    push @secrets, 'plain-newer';
    is(edge($key), qq{401 {"detail":"Invalid token."}}, 'with revoke_token the old key is refused at once');

    ($s, undef, $b) = api('POST', '/api-admin/users/plain/token/', token => $staff);
    is($s, 201, 'regenerate: 201');
    my $new = $b->{token};
    push @secrets, $new;
    like($new, qr/^[0-9a-f]{40}$/, '{"token": <new key>}');
    is(edge($new), "200 plain\n", 'the new key works at the edge');
    ($s, undef, $b) = api('POST', '/api-admin/users/plain/token/', token => $staff);
    push @secrets, $b->{token};
    is(edge($new), qq{401 {"detail":"Invalid token."}}, 'regenerating again kills the previous key at once');
    $new = $b->{token};
    ($s, undef, $b) = api('DELETE', '/api-admin/users/plain/token/', token => $staff);
    is($s, 204, 'revoke: 204');
    is($b, '', 'no body');
    is(edge($new), qq{401 {"detail":"Invalid token."}}, 'the edge refuses the revoked key');
    ($s) = api('DELETE', '/api-admin/users/plain/token/', token => $staff);
    is($s, 404, 'revoking a user without a token: 404');
    (undef, undef, $b) = api('GET', '/api-admin/users/plain/', token => $staff);
    ok(!$b->{has_token} && !defined $b->{token_created}, 'GET shows no token');

    my $nb = token_of('newbie');
    ($s) = api('DELETE', '/api-admin/users/newbie/', token => $staff);
    is($s, 204, 'delete: 204');
    ($s) = api('GET', '/api-admin/users/newbie/', token => $staff);
    is($s, 404, 'then GET: 404');
    is(edge($nb), qq{401 {"detail":"Invalid token."}}, "the deleted user's token is refused");
    ($s) = api('DELETE', '/api-admin/users/newbie/', token => $staff);
    is($s, 404, 'deleting again: 404');
};

subtest "a refused caller's name in the log is one quoted field" => sub {
    # Django's validators refuse a double quote in a username, but a dump
    # imported from a database written around them can hold one (only
    # control characters and whitespace at the ends are refused), and up
    # to 150 characters.
    my $dir = tempdir(CLEANUP => 1);
    my $long = 'ev"il' . ('x' x 70);
    my ($plain_key, $staff_key) = ('e' x 40, 'd' x 40);
    open my $fh, '>', "$dir/dump.json" or die "$dir/dump.json: $!";
    print $fh encode_json([
        map({ { model => 'auth.user', pk => $_->[0],
                fields => { username => $_->[1], password => '!unusable', is_active => JSON::PP::true,
                            is_staff => $_->[2] ? JSON::PP::true : JSON::PP::false,
                            is_superuser => JSON::PP::false, last_login => undef } } }
            [900, $long, 0], [901, 'st"aff', 1]),
        map({ { model => 'authtoken.token', pk => $_->[0],
                fields => { user => $_->[1], created => '2026-01-01T00:00:00Z' } } }
            [$plain_key, 900], [$staff_key, 901])]);
    close $fh;
    ctl_ok('import-django', "$dir/dump.json");
    push @secrets, $plain_key, $staff_key;

    my ($s) = api('GET', '/api-admin/users/', token => $plain_key);
    is($s, 403, 'a non-staff caller named with a double quote: 403');
    ($s) = api('POST', '/api-admin/users/', token => $staff_key,
               json => { username => 'quoted-boss', is_superuser => JSON::PP::true });
    is($s, 403, 'a staff caller named with a double quote creating a superuser: 403');

    my @lines = authtokend_log() =~ /^\S+ \[info\] (admin: .* by .*: 403 .*)$/mg;
    my $cut = substr($long, 0, 64) =~ tr/"/?/r;
    is(scalar(grep { $_ eq qq{admin: GET /api-admin/users/ by "$cut": 403 (not staff)} } @lines), 1,
       'not staff: the name with its quote replaced and cut to 64 bytes, in one quoted field');
    is(scalar(grep { $_ eq 'admin: POST /api-admin/users/ by "st?aff": 403 (creating a staff user or a superuser needs a superuser)' } @lines), 1,
       'needs a superuser: the same');
    is(scalar(grep { !/ by "[^"]*": 403 / } @lines), 0, 'no 403 line has a name that ends its field early')
        or diag explain \@lines;
};

subtest 'one audit line per change, never a secret' => sub {
    my $log = authtokend_log();
    my @audit = $log =~ /^(\S+ \[info\] audit: .*)$/mg;
    like($audit[0], qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[info\] audit: actor="staff" via=http action=create_user user="newbie" is_active=1 is_staff=0 is_superuser=0 usable_password=1 token=created$/,
         'create: when, who, what, on whom, how');
    my %want = (
        'actor="root" via=http action=create_user user="boss" is_active=1 is_staff=1 is_superuser=1 usable_password=1 token=created' => 1,
        'actor="root" via=http action=deactivate user="otherstaff"' => 1,
        'actor="staff" via=http action=deactivate user="plain"' => 1,
        'actor="staff" via=http action=activate user="plain"' => 1,
        'actor="staff" via=http action=set_password user="plain" token=kept' => 1,
        'actor="staff" via=http action=set_password user="plain" token=revoked' => 1,
        'actor="staff" via=http action=regenerate_token user="plain"' => 2,
        'actor="staff" via=http action=revoke_token user="plain"' => 1,
        'actor="staff" via=http action=delete_user user="newbie"' => 1,
    );
    for my $line (sort keys %want) {
        my $n = grep { /\] audit: \Q$line\E$/ } @audit;
        is($n, $want{$line}, "$want{$line} x $line");
    }
    is(scalar(grep { /action=(?:deactivate|activate|set_password|regenerate_token|revoke_token|delete_user|create_user)/ } @audit),
       scalar(@audit), 'every audit line names one of the changes');
    is(scalar(grep { /action=\w+ user="(?:root|otherstaff|boss|x|flag)"/ && /actor="staff"/ } @audit), 0,
       'refused requests (403, 400) leave no audit line');
    is(scalar(grep { /action=revoke_token user="plain"/ } @audit), 1,
       'a revoke that found no token leaves none');
    for my $secret (grep { defined && length } @secrets) {
        unlike($log, qr/\Q$secret\E/, 'the log holds no password or key (' . substr($secret, 0, 4) . '...)');
    }
};

subtest 'hostile input gets its 4xx, never a 500' => sub {
    my ($s, undef, $b) = api('GET', '/api-admin/users/?' . join('&', map { "a$_=1" } 1 .. 1001), token => $staff);
    is($s, 400, 'over 1000 query fields: 400');
    is_deeply($b, { detail => 'The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.' },
              "Django's TooManyFieldsSent text");
    ($s) = api('GET', '/api-admin/users/?search=' . ('%FF' x 500) . '&page=%00', token => $staff);
    is($s, 404, 'bytes that are not UTF-8 and a NUL page: Invalid page, no 500');
    ($s) = api('GET', '/api-admin/users/a%00b/', token => $staff);
    like($s, qr/^4\d\d$/, "a NUL in the name: $s");
    ($s) = api('PATCH', '/api-admin/users/plain/', token => $staff, raw => ('[' x 100) . (']' x 100),
               headers => { 'Content-Type' => 'application/json' });
    is($s, 400, 'JSON nested 100 deep: 400');
    ($s, undef, $b) = api('POST', '/api-admin/users/', token => $staff, raw => '{"username":"\u0000x"}',
                          headers => { 'Content-Type' => 'application/json' });
    is($s, 400, 'a NUL in a new username: 400');
    is_deeply($b, { username => ['Null characters are not allowed.'] }, "DRF's message");
    ($s) = api('POST', '/api-admin/users/', token => $staff, raw => 'x' x 20000,
               headers => { 'Content-Type' => 'application/json' });
    is($s, 413, 'a body over max_body_size: 413');
    ($s) = api('GET', '/api-admin/users/', token => $staff);
    is($s, 200, 'and the daemon still answers');
    unlike(authtokend_log(), qr/ 500|\[error\] admin/, 'no 500 and no admin error in the log');
};

subtest 'admin_api off' => sub {
    authtokend_start('--no-admin-api');
    my ($s, undef, $b) = api('GET', '/api-admin/users/', token => $root, direct => 1);
    is($s, 404, 'with admin_api off, /api-admin/ is not served');
    is_deeply($b, { detail => 'Not found.' }, 'Not found.');
    ($s) = AuthToken::Issuer::obtain_direct('root', 'root-pass');
    is($s, 200, 'while logins still work');
};

done_testing();
