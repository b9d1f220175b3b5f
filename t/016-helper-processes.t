# With proxy_cache_path configured, nginx runs a cache manager and a cache
# loader next to the workers, and they run every module's init_process.
# They serve no request: they must open no Redis connection, and when they
# exit (every reload) nothing may run the subscription-loss path that
# empties the token cache.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use AuthToken::TestRedis;
use AuthToken::Server;

my $token = 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7';

redis_start();
seed_token($token, uid => 7, user => 'admin');

my $conf = <<'HTTP';
    proxy_cache_path PROXY_CACHE keys_zone=pages:1m;
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    auth_token_cache zone=tokens:1m valid=60s;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /api/ {
            auth_token on;
            add_header X-Cache $auth_token_cache_status always;
            alias html/;
        }
    }
HTTP
my $dir = "/tmp/authtoken-016-cache-$$";
$conf =~ s/PROXY_CACHE/$dir/;
END { local $?; system('rm', '-rf', $dir) if $dir }

nginx_start($conf);
nginx_html(hello => "hello\n");

sub cache_status {
    my $r = http_request('/api/hello', Authorization => "Token $token");
    return "$r->{status} " . ($r->{headers}{'x-cache'} // '-');
}

# Redis clients other than the one asking, by remote address.
sub nginx_clients {
    my $list = redis_cmd('CLIENT', 'LIST');
    my @lines = grep { !/cmd=client/ } split /\n/, $list;
    return scalar @lines;
}

sub wait_subscribed {
    for (1 .. 100) {
        last if cache_status() =~ /MISS|HIT/;
        sleep 0.05;
    }
}

wait_subscribed();
is(cache_status(), '200 HIT', 'a token looked up once is a cache HIT');

my @helpers = grep { /cache (manager|loader) process/ }
              `ps -o args= --ppid ${\ nginx_pid()}`;
is(scalar @helpers, 2, 'nginx runs a cache manager and a cache loader');
sleep 0.5;
is(nginx_clients(), 2,
   'Redis sees only the worker\'s two connections (lookups, subscription)');

nginx_reload();
sleep 1.5;   # the old worker and helpers are gone, the new ones are up
is(cache_status(), '200 HIT', 'after a reload the token is still a HIT');
is(nginx_clients(), 2, 'and Redis still sees two connections');
unlike(nginx_error_log(), qr/auth token cache invalidated/,
       'no process reported the revocation channel lost');

done_testing();
