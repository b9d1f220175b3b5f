# Configuration is checked when nginx reads it: "nginx -t" refuses mistakes
# with a message that names the directive.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Test::More;

my $repo = abs_path(dirname(__FILE__) . '/..');
my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my @modules = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
my $root = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-config-$$";

sub nginx_t {
    my ($http) = @_;
    remove_tree($root);
    make_path("$root/conf", "$root/logs");
    open my $fh, '>', "$root/conf/nginx.conf" or die $!;
    print $fh join('', map { "load_module $_;\n" } @modules), <<"CONF";
error_log logs/error.log;
pid logs/nginx.pid;
events {}
http {
$http
}
CONF
    close $fh;
    my $out = `$nginx -t -p $root/ -c conf/nginx.conf 2>&1`;
    return ($? == 0, $out);
}

my @bad = (
    ['auth_token on without a Redis address',
     "server { listen 127.0.0.1:1; location / { auth_token on; } }",
     qr/"auth_token" is enabled in \S+nginx\.conf:\d+, but no "auth_token_redis" is set/],
    ['an address nginx cannot parse',
     "auth_token_redis 127.0.0.1:notaport;",
     qr/invalid port in "127\.0\.0\.1:notaport" of the "auth_token_redis" directive/],
    ['an unknown parameter',
     "auth_token_redis 127.0.0.1:6379 timeout=5;",
     qr/invalid parameter "timeout=5" in "auth_token_redis"/],
    ['a db that is not a number',
     "auth_token_redis 127.0.0.1:6379 db=two;",
     qr/invalid db "db=two" in "auth_token_redis"/],
    ['a db above INT_MAX (it used to become db 0)',
     "auth_token_redis 127.0.0.1:6379 db=4294967296;",
     qr/invalid db "db=4294967296" in "auth_token_redis"/],
    ['a db just above INT_MAX',
     "auth_token_redis 127.0.0.1:6379 db=2147483648;",
     qr/invalid db "db=2147483648" in "auth_token_redis"/],
    ['auth_token_verify with an argument',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; location /a { auth_token_verify on; } }",
     qr/invalid number of arguments in "auth_token_verify" directive/],
    ['auth_token_verify at server level',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; auth_token_verify; }",
     qr/"auth_token_verify" directive is not allowed here/],
    ['auth_token_verify without a Redis address',
     "server { listen 127.0.0.1:1; location /a { auth_token_verify; } }",
     qr/"auth_token" is enabled in \S+nginx\.conf:\d+, but no "auth_token_redis" is set/],
    ['an empty password',
     "auth_token_redis 127.0.0.1:6379 password=;",
     qr/empty password in "auth_token_redis"/],
    ['an empty ACL user',
     "auth_token_redis 127.0.0.1:6379 user= password=x;",
     qr/empty user in "auth_token_redis"/],
    ['an ACL user without its password',
     "auth_token_redis 127.0.0.1:6379 user=authtoken-edge;",
     qr/"user=" needs "password=" in "auth_token_redis"/],
    ['two Redis addresses',
     "auth_token_redis 127.0.0.1:6379; auth_token_redis 127.0.0.1:6380;",
     qr/"auth_token_redis" directive is duplicate/],
    ['a keyword that is not an auth scheme',
     "auth_token_keyword Token: ;",
     qr/invalid keyword "Token:" in "auth_token_keyword"/],
    ['auth_token_redis outside the http block',
     "server { listen 127.0.0.1:1; auth_token_redis 127.0.0.1:6379; }",
     qr/"auth_token_redis" directive is not allowed here/],
    ['a timeout that is not a time',
     "auth_token_timeout soon;",
     qr/"auth_token_timeout" directive invalid value/],
    ['auth_token_timeout 0 (every lookup would time out)',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; location / { auth_token on; auth_token_timeout 0; } }",
     qr/"auth_token_timeout" directive must be more than 0/],
    ['auth_token_connect_timeout 0',
     "auth_token_redis 127.0.0.1:6379; auth_token_connect_timeout 0ms;",
     qr/"auth_token_connect_timeout" directive must be more than 0/],
    # A cache zone's size errors name the directive and where the zone got
    # its size (nginx's own messages name neither).
    ['a cache zone given two sizes',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens:1m; }
        location /b { auth_token on; auth_token_cache zone=tokens:2m; } }",
     qr/zone "tokens" of "auth_token_cache" is 2097152 bytes here but 1048576 in \S+nginx\.conf:\d+; give its size in one place only/],
    ['a cache zone never given a size',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens; } }",
     qr/zone "tokens" of "auth_token_cache" in \S+nginx\.conf:\d+ has no size; give it one in one of its "auth_token_cache" directives \(zone=tokens:10m\)/],
    ['a cache zone declared for another use',
     "auth_token_redis 127.0.0.1:6379;
      limit_req_zone \$binary_remote_addr zone=tokens:1m rate=1r/s;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens:1m; } }",
     qr/zone "tokens" of "auth_token_cache" is already declared for a different use/],
    ['a cache zone too small',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens:8k; } }",
     qr/zone "zone=tokens:8k" is too small in "auth_token_cache", the least is 32768 bytes in \S+nginx\.conf:\d+/],
    ['a cache zone size that is not a size',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens:lots; } }",
     qr/invalid zone size "zone=tokens:lots" in "auth_token_cache"/],
    ['a cache zone without a name',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=:1m; } }",
     qr/invalid zone name "zone=:1m" in "auth_token_cache"/],
    ['auth_token with a value other than on/off',
     "auth_token yes;",
     qr/invalid value "yes" in "auth_token" directive, it must be "on" or "off"/],
    ['auth_token_last_used in a location without a cache zone',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; location /api/ { auth_token on; auth_token_last_used on; } }",
     qr{"auth_token_last_used" in location "/api/" needs an "auth_token_cache zone=\.\.\." there}],
    ['auth_token_last_used_interval 0',
     "auth_token_last_used_interval 0;",
     qr/"auth_token_last_used_interval"/],
    ['auth_token_last_used_interval in a server',
     "server { listen 127.0.0.1:1; auth_token_last_used_interval 5s; }",
     qr/"auth_token_last_used_interval" directive is not allowed here/],
    ['auth_token_redis_primary with a bad db',
     "auth_token_redis_primary 127.0.0.1:6379 db=two;",
     qr/invalid db "db=two" in "auth_token_redis_primary"/],
    ['auth_token_redis_primary twice',
     "auth_token_redis_primary 127.0.0.1:6379; auth_token_redis_primary 127.0.0.1:6380;",
     qr/"auth_token_redis_primary" directive is duplicate/],
    ['auth_token_max_lag 0 (off is spelled off)',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; location / { auth_token on; auth_token_max_lag 0; } }",
     qr/"auth_token_max_lag 0" is too short: .* use at least 3s, or off/],
    ['auth_token_max_lag below the heartbeat\'s resolution',
     "auth_token_max_lag 2500ms;",
     qr/"auth_token_max_lag 2500ms" is too short/],
    ['auth_token_max_lag that is not a time',
     "auth_token_max_lag soon;",
     qr/invalid value "soon" in "auth_token_max_lag", expected a time such as 5s, or off/],
    ['auth_token_max_lag twice in one block',
     "auth_token_max_lag 5s; auth_token_max_lag off;",
     qr/"auth_token_max_lag" directive is duplicate/],
    ['auth_token_max_lag with two values',
     "auth_token_max_lag 5s 10s;",
     qr/invalid number of arguments in "auth_token_max_lag" directive/],
);

for my $case (@bad) {
    my ($name, $http, $message) = @$case;
    my ($ok, $out) = nginx_t($http);
    ok(!$ok, "nginx -t refuses $name");
    like($out, $message, '... and says why');
}

my @good = (
    ['a full configuration',
     "auth_token_redis 127.0.0.1:6379 password=s3cret db=2;
      auth_token_connect_timeout 250ms;
      auth_token_keyword Token Bearer;
      auth_token_timeout 300ms;
      auth_token_max_lag 5s;
      server { listen 127.0.0.1:1; auth_token_max_lag 1m;
        location / { auth_token on; }
        location /b/ { limit_except GET { auth_token on; } }
        location /c/ { auth_token off; }
        location /d/ { auth_token on; auth_token_max_lag off; } }"],
    ['a unix socket address',
     "auth_token_redis unix:/run/redis/redis.sock;
      server { listen 127.0.0.1:1; location / { auth_token on; } }"],
    ['a host name resolved at start',
     "auth_token_redis localhost:6379;
      server { listen 127.0.0.1:1; location / { auth_token on; } }"],
    ['a cache zone sized in one location and named in others',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens; }
        location /b { auth_token on; auth_token_cache zone=tokens:1m; }
        location /c { auth_token on; auth_token_cache zone=tokens valid=1m; } }"],
    ['a cache zone given the same size twice',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /a { auth_token on; auth_token_cache zone=tokens:1m; }
        location /b { auth_token on; auth_token_cache zone=tokens:1m; } }"],
    ['auth_token off everywhere without Redis',
     "server { listen 127.0.0.1:1; location / { auth_token off; } }"],
);

for my $case (@good) {
    my ($name, $http) = @$case;
    my ($ok, $out) = nginx_t($http);
    ok($ok, "nginx -t accepts $name") or diag($out);
}

# Warnings: the configuration is accepted, and "nginx -t" says what is wrong.
my @warned = (
    ['auth_token on in an internal location (an auth_request target)',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location /api/ { auth_request /auth; }
        location = /auth { auth_token on; internal; return 204; } }",
     qr/\[warn\] \d+#\d+: "auth_token" in \S+nginx\.conf:\d+ is in the internal location "\/auth"; a subrequest \(auth_request\) skips the access phase and never runs it, use "auth_token_verify" there/],
    ['auth_token in a server with underscores_in_headers on',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; server_name api.example;
        underscores_in_headers on;
        location / { auth_token on; } }",
     qr/\[warn\] \d+#\d+: "auth_token" is used in server "api\.example" \(\S+nginx\.conf:\d+\) with "underscores_in_headers on": a client can send identity headers spelt with "_"/],
    ['auth_token at http level and a server with underscores_in_headers on',
     "auth_token_redis 127.0.0.1:6379; auth_token on;
      server { listen 127.0.0.1:1; server_name other.example;
        underscores_in_headers on; }",
     qr/\[warn\] \d+#\d+: "auth_token" is used in server "other\.example"/],
    ['auth_token_verify in a server with underscores_in_headers on',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; server_name v.example;
        underscores_in_headers on;
        location = /auth { internal; auth_token_verify; } }",
     qr/\[warn\] \d+#\d+: "auth_token" is used in server "v\.example"/],
);
for my $case (@warned) {
    my ($name, $http, $message) = @$case;
    my ($ok, $out) = nginx_t($http);
    ok($ok, "nginx -t accepts $name") or diag($out);
    like($out, $message, '... with a warning that says why');
}

my @quiet = (
    ['auth_token_verify in an internal location',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1;
        location = /auth { internal; auth_token_verify; } }"],
    ['auth_token inherited into an internal error page location',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; auth_token on; error_page 401 /401.html;
        location = /401.html { internal; } }"],
    ['underscores_in_headers on in a server without auth_token',
     "auth_token_redis 127.0.0.1:6379;
      server { listen 127.0.0.1:1; underscores_in_headers on; }
      server { listen 127.0.0.1:2; location / { auth_token on; } }"],
);
for my $case (@quiet) {
    my ($name, $http) = @$case;
    my ($ok, $out) = nginx_t($http);
    ok($ok, "nginx -t accepts $name") or diag($out);
    unlike($out, qr/\[warn\]/, '... without a warning');
}

remove_tree($root);
done_testing();
