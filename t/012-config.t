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
    ['auth_token with a value other than on/off',
     "auth_token yes;",
     qr/invalid value "yes" in "auth_token" directive, it must be "on" or "off"/],
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
      server { listen 127.0.0.1:1;
        location / { auth_token on; }
        location /b/ { limit_except GET { auth_token on; } }
        location /c/ { auth_token off; } }"],
    ['a unix socket address',
     "auth_token_redis unix:/run/redis/redis.sock;
      server { listen 127.0.0.1:1; location / { auth_token on; } }"],
    ['a host name resolved at start',
     "auth_token_redis localhost:6379;
      server { listen 127.0.0.1:1; location / { auth_token on; } }"],
    ['auth_token off everywhere without Redis',
     "server { listen 127.0.0.1:1; location / { auth_token off; } }"],
);

for my $case (@good) {
    my ($name, $http) = @$case;
    my ($ok, $out) = nginx_t($http);
    ok($ok, "nginx -t accepts $name") or diag($out);
}

remove_tree($root);
done_testing();
