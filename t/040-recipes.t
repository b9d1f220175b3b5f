# The recipes of docs/recipes.md, run as written: every block marked
# "<!-- t/040-recipes.t: NAME -->" is read out of the page, only its
# addresses are replaced by this test's own (Redis, authtokend, the
# application, nginx's port, the certificate), and what the page promises
# for it is checked against a real nginx, redis-server and authtokend.
use strict;
use warnings;

use Test::More;
use JSON::PP;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Example;

my $blocks = doc_blocks('docs/recipes.md', 't/040-recipes.t');
my %checked;

my $dir = issuer_setup();
authtokend_start();
# demo first: the demo app's answer shows uid 1.
ctl_ok({ stdin => "demo-password\n" }, 'createuser', 'demo', '--password-stdin');
ctl_ok({ stdin => "alice-password\n" }, 'createuser', 'alice', '--password-stdin');
ctl_ok({ stdin => "bob-password\n" }, 'createuser', 'bob', '--password-stdin');
ctl_ok({ stdin => "admin-password\n" }, 'createuser', 'admin', '--password-stdin');
my %token = map { $_ => token_of($_) } qw(demo alice bob admin);
my ($pem, $key) = test_certificate("$dir/tls");
my $app_port = free_port();

# The recipe's nginx block with this test's addresses, plus a stand-in for
# "your application" on 127.0.0.1:8081 that says what reached it.
sub recipe_http {
    my ($name) = @_;
    my $conf = $blocks->{$name} // die "docs/recipes.md has no block $name\n";
    $checked{$name} = 1;
    my %port = (6379 => redis_port(), 8000 => authtokend_port(),
                8081 => $app_port);
    $conf =~ s/^(\s*listen\s+)(?:80|443)\b/${1}127.0.0.1:\$TEST_NGINX_SERVER_PORT/mg;
    $conf =~ s{127\.0\.0\.1:(\d+)}{
        $port{$1} //= free_port();
        "127.0.0.1:$port{$1}"
    }ge;
    $conf =~ s{/etc/ssl/certs/api\.example\.org\.pem}{$pem}g;
    $conf =~ s{/etc/ssl/private/api\.example\.org\.key}{$key}g;
    return $conf . <<"APP";
    server {
        listen 127.0.0.1:$app_port;
        location / {
            default_type text/plain;
            return 200 "app \$request_method \$uri user=\$http_x_auth_user\\n";
        }
    }
APP
}

sub run_recipe {
    my ($name) = @_;
    nginx_stop();
    nginx_start(recipe_http($name));
    return 'http://127.0.0.1:' . nginx_port();
}

sub h { my ($r, $name) = @_; join ', ', @{ $r->{headers}{$name} || [] } }

my $not_provided = '{"detail":"Authentication credentials were not provided."}';
my $r;

# --- CORS, answered by nginx --------------------------------------------
{
    my $url = run_recipe('cors') . '/api/x';
    my @pre = ('-X', 'OPTIONS', '-H', 'Access-Control-Request-Method: GET',
               '-H', 'Access-Control-Request-Headers: authorization');
    $r = curl(@pre, '-H', 'Origin: https://app.example.org', $url);
    is($r->{status}, 204, 'cors: a preflight from the allowed origin is answered 204 without a token');
    is(h($r, 'access-control-allow-origin'), 'https://app.example.org', 'cors: preflight names the origin');
    like(h($r, 'access-control-allow-headers'), qr/Authorization/, 'cors: preflight allows the Authorization header');
    like(h($r, 'access-control-allow-methods'), qr/\bGET\b.*\bOPTIONS\b/, 'cors: preflight lists the methods');

    $r = curl(@pre, '-H', 'Origin: https://evil.example', $url);
    is($r->{status}, 204, 'cors: a preflight from another origin is answered too');
    is(h($r, 'access-control-allow-origin'), '', 'cors: but without CORS headers');

    $r = curl('-H', 'Origin: https://app.example.org', $url);
    is($r->{status}, 401, 'cors: a request without a token gets 401');
    is($r->{body}, $not_provided, 'cors: with DRF\'s body');
    is(h($r, 'access-control-allow-origin'), 'https://app.example.org', 'cors: the 401 carries Access-Control-Allow-Origin');
    is(h($r, 'www-authenticate'), 'Token', 'cors: and WWW-Authenticate: Token');
    is(h($r, 'access-control-expose-headers'), 'WWW-Authenticate', 'cors: exposed to the page');

    $r = curl('-H', 'Origin: https://app.example.org',
              '-H', "Authorization: Token $token{alice}", $url);
    is($r->{status}, 200, 'cors: a valid token passes');
    is($r->{body}, "app GET /api/x user=alice\n", 'cors: with its user');
    is(h($r, 'access-control-allow-origin'), 'https://app.example.org', 'cors: and the CORS header');
}

# --- CORS, preflight answered by the application -------------------------
{
    my $url = run_recipe('cors-limit-except') . '/api/x';
    $r = curl('-X', 'OPTIONS', $url);
    is($r->{status}, 200, 'limit_except OPTIONS: OPTIONS reaches the application without a token');
    is($r->{body}, "app OPTIONS /api/x user=\n", 'limit_except OPTIONS: the application answers it');
    for my $m (qw(GET POST DELETE)) {
        $r = curl('-X', $m, $url);
        is($r->{status}, 401, "limit_except OPTIONS: $m without a token gets 401");
    }
    $r = curl('-I', $url);
    is($r->{status}, 401, 'limit_except OPTIONS: HEAD without a token gets 401');
    $r = curl('-H', "Authorization: Token $token{alice}", $url);
    is($r->{body}, "app GET /api/x user=alice\n", 'limit_except OPTIONS: GET with a token passes');
}

# --- Bearer alongside Token ----------------------------------------------
{
    my $url = run_recipe('bearer') . '/api/x';
    for my $scheme (qw(Token Bearer bearer BEARER)) {
        $r = curl('-H', "Authorization: $scheme $token{alice}", $url);
        is($r->{body}, "app GET /api/x user=alice\n", "bearer: \"$scheme <key>\" is accepted");
    }
    $r = curl($url);
    is($r->{status}, 401, 'bearer: no header: 401');
    is_deeply($r->{headers}{'www-authenticate'}, ['Token'],
              'bearer: the challenge names only the first keyword');
    $r = curl('-H', 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl', $url);
    is($r->{body}, '{"detail":"Invalid token."}', 'bearer: a JWT is an unknown key');
    $r = curl('-H', 'Authorization: Basic ZGVtbzpkZW1v', $url);
    is($r->{body}, $not_provided, 'bearer: an unlisted scheme is "not provided"');
}

# --- a whole server with public exceptions --------------------------------
{
    my $base = run_recipe('whole-server');
    $r = curl("$base/healthz");
    is("$r->{status} $r->{body}", "200 ok\n", 'whole server: /healthz is public');
    $r = curl("$base/static/app.css");
    is("$r->{status} $r->{body}", "200 app GET /static/app.css user=\n", 'whole server: /static/ is public');
    $r = curl('-d', 'username=alice&password=alice-password', "$base/api-token-auth/");
    is($r->{body}, qq({"token":"$token{alice}"}), 'whole server: the login is public');
    $r = curl('-L', '-d', 'username=alice&password=alice-password', "$base/api-token-auth");
    is($r->{body}, qq({"token":"$token{alice}"}), 'whole server: the login without its slash, with curl -L');
    for my $path ('/', '/api/x', '/anything') {
        $r = curl("$base$path");
        is("$r->{status} $r->{body}", "401 $not_provided", "whole server: $path needs a token");
    }
    $r = curl('-H', "Authorization: Token $token{bob}", "$base/api/x");
    is($r->{body}, "app GET /api/x user=bob\n", 'whole server: with a token the request passes');
}

# --- where the variables can be used -----------------------------------------
{
    my $url = run_recipe('variables') . '/api/x';
    $r = curl('-H', "Authorization: Token $token{admin}", $url);
    is($r->{body}, "app GET /api/x user=admin\n", 'variables: proxy_set_header carries the user');
    is(h($r, 'x-auth-user'), 'admin', 'variables: add_header sees the user');
    is(h($r, 'x-is-admin'), '1', 'variables: a map evaluated after the check sees it');
    is(h($r, 'x-user-at-rewrite'), '', 'variables: set in the rewrite phase sees it empty');
    $r = curl('-H', "Authorization: Token $token{alice}", $url);
    is(h($r, 'x-is-admin') . ' ' . h($r, 'x-auth-user'), '0 alice', 'variables: the map for another user');
}

# --- HTTP/2 ---------------------------------------------------------------
{
    my $url = run_recipe('http2');
    $url =~ s/^http:/https:/;
    $url .= '/api/x';
    $r = curl('--http2', '-H', "Authorization: Token $token{alice}", $url);
    is("$r->{version} $r->{status}", '2 200', 'http2: a valid token passes over HTTP/2 (TLS, ALPN)');
    is($r->{body}, "app GET /api/x user=alice\n", 'http2: with its user');
    $r = curl('--http2', $url);
    is("$r->{version} $r->{status}", '2 401', 'http2: no token: 401 over HTTP/2');
    is($r->{body}, $not_provided, 'http2: with DRF\'s body');
    is(h($r, 'www-authenticate'), 'Token', 'http2: and the challenge');
}

# Requests on one connection, one per Authorization value in turn; the
# status codes in order.
sub statuses {
    my ($url, @auth) = @_;
    my @args;
    for my $a (@auth) {
        push @args, '--next' if @args;
        push @args, '-sS', '-o', '/dev/null', '-w', '%{response_code}\n',
                    '-H', "Authorization: $a", $url;
    }
    open my $out, '-|', 'curl', @args or die "curl: $!";
    my @codes = map { chomp; $_ } <$out>;
    close $out;
    return @codes;
}

# --- limit_req -------------------------------------------------------------
{
    my $url = run_recipe('limit-req-does-not-work') . '/api/x';
    my @codes = statuses($url, ("Token $token{alice}") x 10);
    is_deeply(\@codes, [ (200) x 10 ],
              'limit_req keyed on $auth_token_user limits nothing (empty in preaccess): 10 requests at 1r/m all pass');
}
{
    my $url = run_recipe('limit-req-by-header') . '/api/x';
    my @codes = statuses($url, ("Token $token{alice}") x 40);
    is_deeply([ @codes[0 .. 20] ], [ (200) x 21 ],
              'limit_req by $http_authorization: the rate and burst pass');
    ok((grep { $_ == 429 } @codes), 'limit_req by $http_authorization: then 429');
    @codes = statuses($url, "Token $token{bob}");
    is_deeply(\@codes, [200], 'limit_req by $http_authorization: another token has its own bucket');
    # Two spellings of one key, 20 requests each: two buckets, none full.
    @codes = statuses($url, ("Token $token{demo}", "token  $token{demo}") x 20);
    is_deeply(\@codes, [ (200) x 40 ],
              'limit_req by $http_authorization: two spellings of one key are two buckets');
}
{
    my $url = run_recipe('limit-req-second-hop') . '/api/x';
    # Two spellings of one key: one user, so one bucket (21 pass at once).
    my @codes = statuses($url, ("Token $token{alice}", "token  $token{alice}") x 20);
    is_deeply([ @codes[0 .. 20] ], [ (200) x 21 ],
              'limit_req by user on a second hop: the rate and burst pass');
    ok((grep { $_ == 429 } @codes),
       'limit_req by user on a second hop: then 429, whatever spelling of the key is sent');
    $r = curl('-H', "Authorization: Token $token{bob}", '-H', "X-Auth-User-Id: 2", $url);
    is("$r->{status} $r->{body}", "200 app GET /api/x user=bob\n",
       'limit_req by user on a second hop: another user passes, even claiming a limited user\'s id');
}

# --- curl and httpie, against the demo configuration -----------------------
{
    my $conf = repo_file('examples/nginx-demo.conf');
    my $port = free_port();
    $conf =~ s/\@MODULE\@/$ENV{TEST_NGINX_LOAD_MODULES} or die "TEST_NGINX_LOAD_MODULES is not set\n"/e;
    $conf =~ s/\@REDIS_PORT\@/@{[redis_port()]}/g;
    $conf =~ s/\@DAEMON_PORT\@/@{[authtokend_port()]}/g;
    $conf =~ s/\@NGINX_PORT\@/$port/g;
    $conf =~ s/\@APP_PORT\@/$app_port/g;
    nginx_stop();
    conf_nginx_start($conf, $port);

    my $text = $blocks->{clients} // die "docs/recipes.md has no block clients\n";
    $checked{clients} = 1;
    my $have_httpie = system('sh', '-c', 'command -v http >/dev/null') == 0;
    my $json = JSON::PP->new->canonical;
    my @pending;
    my $ran = 0;
    for my $line (split /\n/, $text) {
        if ($line =~ /^(curl|http) /) {
            push @pending, [$1, $line];
        } elsif ($line =~ /^# (\{.*\})$/ && @pending) {
            my $want = $json->encode(decode_json($1 =~ s/9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b/$token{demo}/gr));
            for my $p (@pending) {
                my ($tool, $cmd) = @$p;
                SKIP: {
                    skip "httpie is not installed: $cmd", 1 if $tool eq 'http' && !$have_httpie;
                    $cmd =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
                    $cmd =~ s/9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b/$token{demo}/g;
                    # Not on a terminal, httpie would take stdin as the body.
                    $cmd =~ s/^http /http --ignore-stdin /;
                    my $got = qx{$cmd </dev/null 2>$dir/client.stderr};
                    my $decoded = eval { $json->encode(decode_json($got)) } // $got;
                    is($decoded, $want, "clients: $p->[1]")
                        or diag(slurp("$dir/client.stderr"));
                    $ran++;
                }
            }
            @pending = ();
        }
    }
    ok(!@pending, 'clients: every command is followed by its expected body');
    cmp_ok($ran, '>=', 12, 'clients: the block\'s commands ran');
    conf_nginx_stop();
}

is_deeply([ sort keys %$blocks ], [ sort keys %checked ],
          'every marked block of docs/recipes.md is run by this test');

done_testing();
