# examples/nginx-production.conf, run as written (only addresses, paths
# and the certificate replaced): nginx -t accepts it, a token obtained
# through it works, the login URL without its trailing slash answers a 308
# that curl -L and httpie --follow repeat as a POST, and its error_log level
# keeps a token sent twice out of the log, where `info` would write it (the
# line docs/operations.md quotes), and authtokend's /metrics is not
# reachable through it. The demo config (examples/nginx-demo.conf)
# is run by t/040-recipes.t with the curl and httpie commands of the docs.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Example;

my $dir = issuer_setup();
authtokend_start();
ctl_ok({ stdin => "alice-password\n" }, 'createuser', 'alice', '--password-stdin');
my $alice = token_of('alice');
ctl_ok({ stdin => "zoe-password\n" }, 'createuser', "Zo\x{c3}\x{ab}", '--password-stdin');
my $zoe = token_of("Zo\x{c3}\x{ab}");
my ($pem, $key) = test_certificate("$dir/tls");
my $port = free_port();
my $app_port = free_port();

# Redis as the production example expects it: the edge user of the shipped
# redis/users.acl, switched on with a password (the default user stays open
# for the issuer, as in t/025).
my ($edge_rules) = repo_file('redis/users.acl') =~ /^user authtoken-edge (.*)$/m
    or die 'redis/users.acl has no authtoken-edge';
my $edge_password = 'edge-' . join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
redis_cmd('ACL', 'SETUSER', 'authtoken-edge', split(' ', $edge_rules));
redis_cmd('ACL', 'SETUSER', 'authtoken-edge', 'on', ">$edge_password");
my $redis_include = "$dir/auth-token-redis.conf";
open my $inc, '>', $redis_include or die "$redis_include: $!";
print $inc 'auth_token_redis 127.0.0.1:' . redis_port()
         . " user=authtoken-edge password=$edge_password;\n";
close $inc;

sub production_conf {
    my (%opt) = @_;
    my $site = repo_file('examples/nginx-production.conf');
    $site =~ s/^(\s*listen\s+)443\b/${1}127.0.0.1:$port/mg;
    $site =~ s{^include /etc/nginx/auth-token-redis\.conf;}{include $redis_include;}m
        or die 'no include of auth-token-redis.conf';
    $site =~ s/127\.0\.0\.1:8081/127.0.0.1:$app_port/g;
    $site =~ s{unix:/run/authtokend/authtokend\.sock}{127.0.0.1:@{[authtokend_port()]}}g;
    $site =~ s{/etc/ssl/certs/api\.example\.org\.pem}{$pem}g;
    $site =~ s{/etc/ssl/private/api\.example\.org\.key}{$key}g;
    $site =~ s{/var/log/nginx/}{logs/}g;
    $site =~ s/^(\s*error_log\s+\S+\s+)\w+;/${1}$opt{level};/m or die 'no error_log in the example'
        if $opt{level};
    my $module = $ENV{TEST_NGINX_LOAD_MODULES} or die "TEST_NGINX_LOAD_MODULES is not set\n";
    # What Debian's /etc/nginx/nginx.conf around sites-enabled/* provides.
    return <<"CONF";
load_module $module;
worker_processes 1;
error_log logs/error.log;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    server {
        listen 127.0.0.1:$app_port;
        location / {
            default_type text/plain;
            return 200 "app \$request_method \$uri user=\$http_x_auth_user id=\$http_x_auth_user_id\\n";
        }
    }

$site
}
CONF
}

my ($code, $out) = conf_nginx_test(production_conf());
is($code, 0, 'nginx -t accepts the production example') or diag($out);

conf_nginx_start(production_conf(), $port);
my $base = "https://127.0.0.1:$port";
my $token_body = qq({"token":"$alice"});

my $r = curl('-d', 'username=alice&password=alice-password', "$base/api-token-auth/");
is($r->{body}, $token_body, 'the login answers the token');

$r = curl('-d', 'username=alice&password=alice-password', "$base/api-token-auth");
is($r->{status}, 308, 'the login URL without its slash answers 308 (keeps the method)');
is($r->{headers}{location}[0], '/api-token-auth/', 'to the URL with the slash');

$r = curl('-L', '-d', 'username=alice&password=alice-password', "$base/api-token-auth");
is("$r->{status} $r->{body}", "200 $token_body",
   'curl -L re-sends the POST to the slash URL and gets the token');

SKIP: {
    skip 'httpie (Debian package httpie) is not installed', 1
        unless system('sh', '-c', 'command -v http >/dev/null') == 0;
    my $got = qx{http --ignore-stdin --verify=no --follow -f POST $base/api-token-auth username=alice password=alice-password </dev/null 2>&1};
    like($got, qr/"token":\s*"$alice"/, 'httpie --follow re-sends the POST and gets the token');
}

$r = curl('-H', "Authorization: Token $alice", '-H', 'X-Auth-User: admin', "$base/api/x");
is($r->{body}, "app GET /api/x user=alice id=1\n",
   'a token reaches the application with its identity, a forged X-Auth-User replaced');
$r = curl('-H', "Authorization: Token $zoe", "$base/api/x");
is($r->{body}, "app GET /api/x user=Zo%C3%AB id=2\n",
   'a non-ASCII name reaches the application percent-encoded, as ASCII');
$r = curl("$base/api/x");
is($r->{status}, 401, 'no token: 401');

# authtokend serves GET /metrics (on by default): the public server must
# not pass it on (docs/observability.md, Who can scrape).
is((daemon_request('GET', '/metrics'))[0], 200, 'authtokend itself serves /metrics');
for my $path ('/metrics', '/api-token-auth/../metrics', '/api-token-auth/%2e%2e/metrics',
              '/api-tokens/../metrics', '/api-tokens/%2e%2e/metrics') {
    $r = curl('--path-as-is', "$base$path");
    isnt($r->{status}, 200, "GET $path through the production example is not answered");
    unlike($r->{body}, qr/authtokend_|process_/, "and never with the daemon's metrics");
}

# The user's own tokens, routed to authtokend behind auth_token on: the
# list, then a logout, after which the key is refused at the edge.
$r = curl("$base/api-tokens/");
is($r->{status}, 401, 'GET /api-tokens/ without a token: 401 at the edge');
$r = curl('-H', "Authorization: Token $zoe", "$base/api-tokens/");
like("$r->{status} $r->{body}", qr/^200 \[\{"id":"[0-9a-f]{16}","name":"",/,
     'GET /api-tokens/ through the production example lists the user\'s token');
$r = curl('-X', 'POST', '-H', "Authorization: Token $zoe", "$base/api-token-logout/");
is($r->{status}, 204, 'POST /api-token-logout/ through the production example: 204');
$r = curl('-H', "Authorization: Token $zoe", "$base/api/x");
is($r->{status}, 401, 'and the logged-out key is refused at the edge');

# Authorization sent twice: nginx refuses the request (400) and, at info,
# logs both header lines whole.
sub duplicate_header_logged {
    my $r = curl('--http1.1', '-H', "Authorization: Token $alice",
                 '-H', "Authorization: Token $alice", "$base/api/x");
    is($r->{status}, 400, 'a duplicate Authorization header is refused with 400');
    conf_nginx_stop();
    my $log = slurp(conf_nginx_root() . '/logs/api.error.log');
    return $log;
}

my $log = duplicate_header_logged();
unlike($log, qr/$alice/, 'at the example\'s error_log level (notice) the key is not logged');

conf_nginx_start(production_conf(level => 'info'), $port);
$log = duplicate_header_logged();
like($log, qr/\[info\] .*client sent duplicate header line: "Authorization: Token $alice", previous value: "Authorization: Token $alice"/,
     'at info nginx writes the duplicate header line with the key: why the example says notice');

# docs/operations.md quotes that line: it must be the line nginx writes.
my $ops = repo_file('docs/operations.md');
my ($quoted) = $ops =~ /^(\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[info\] .*client sent duplicate header line.*)$/m;
ok(defined $quoted, 'docs/operations.md quotes the line');
if (defined $quoted) {
    my ($written) = $log =~ /^(.*client sent duplicate header line.*)$/m;
    my $shape = sub {
        my $l = shift // '';
        $l =~ s/^\S+ \S+ //;                       # time
        $l =~ s/\d+#\d+: \*\d+/PID#TID: *N/;       # process, connection
        $l =~ s/[0-9a-f]{40}/KEY/g;
        $l =~ s/127\.0\.0\.1:\d+/127.0.0.1:PORT/g;
        $l =~ s/server: \S+,/server: NAME,/;
        return $l;
    };
    is($shape->($quoted), $shape->($written), 'and the quoted line is the one nginx 1.22 writes');
}

done_testing();
