# One auth_token_cache zone serves every location that names it: the size
# is given once (in any of them, in any order) and the others name the zone
# alone, as ssl_session_cache shared:name:size does. An entry stored through
# one location is a hit in another.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;

redis_start();

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
seed_token($alice, uid => 7, user => 'alice', active => 1);

# /first names the zone before /sized gives it its size.
nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        add_header X-Cache $auth_token_cache_status always;
        location /first/ {
            auth_token on;
            auth_token_cache zone=tokens;
            alias html/;
        }
        location /sized/ {
            auth_token on;
            auth_token_cache zone=tokens:1m valid=1m;
            alias html/;
        }
        location /own/ {
            auth_token on;
            auth_token_cache zone=other:1m;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");

sub cache_of {
    my ($path, $token) = @_;
    my $res = http_request($path, Authorization => "Token $token");
    die "no response" unless $res;
    return "$res->{status} " . ($res->{headers}{'x-cache'} // '');
}

my $t0 = time;
sleep 0.02 while time - $t0 < 3
    && cache_of('/first/x', 'feedfacefeedfacefeedfacefeedfacefeedface') =~ /BYPASS/;

is(cache_of('/first/x', $alice), '200 MISS',
   'the location that names the zone without a size stores the answer');
is(cache_of('/sized/x', $alice), '200 HIT',
   'the location that gave the size finds it: one zone');
is(cache_of('/own/x', $alice), '200 MISS', 'another zone does not have it');

done_testing();
