package AuthToken::CacheEdge;

# The nginx the cache tests (t/023, t/030 to t/034) run: one location with
# auth_token on and the cache in front of the test's Redis, that says in
# X-Cache what the cache did ($auth_token_cache_status), started through
# AuthToken::Server; and what those tests ask it:
#
#   cache_nginx_start(cache => 'valid=1h invalid=1h',   the zone's options
#                     redis => '127.0.0.1:$TEST_NGINX_PROXY_PORT',
#                     location => '/api/', headers => ['X-User $auth_token_user'],
#                     workers => 2)
#   get($token, $path)     GET $path (default: x under the location) with
#                          "Authorization: Token $token" (none without a
#                          token); dies when no response comes within 5 s
#   seen($res)             "X-Cache status", e.g. "HIT 200"
#   wait_subscribed($limit)   until the cache is no longer bypassed (each
#                          worker has subscribed to the revocation
#                          channel): 1, or 0 after $limit seconds (5)

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use AuthToken::Server;

use Exporter 'import';
our @EXPORT = qw(cache_nginx_start get seen wait_subscribed);

my $location = '/s/';

sub cache_nginx_start {
    my (%opt) = @_;
    my $redis = $opt{redis} // '127.0.0.1:$TEST_NGINX_REDIS_PORT';
    $location = $opt{location} // '/s/';
    my $headers = join '', map { "            add_header $_ always;\n" }
        ('X-Cache $auth_token_cache_status', @{ $opt{headers} || [] });
    nginx_start(<<"HTTP", workers => $opt{workers} || 1);
    auth_token_redis $redis;
    auth_token_cache zone=tokens:1m $opt{cache};
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location $location {
            auth_token on;
$headers            alias html/;
        }
    }
HTTP
    nginx_html(x => "ok\n");
}

sub get {
    my ($token, $path) = @_;
    my $res = http_request($path || "${location}x",
                           $token ? (Authorization => "Token $token") : ());
    die "no response" unless $res;
    return $res;
}

sub seen { my $r = $_[0]; ($r->{headers}{'x-cache'} // '') . " $r->{status}" }

sub wait_subscribed {
    my ($limit) = @_;
    my $t0 = time;
    while (time - $t0 < ($limit || 5)) {
        return 1 if (get('feedface' x 5)->{headers}{'x-cache'} // '') ne 'BYPASS';
        sleep 0.02;
    }
    return 0;
}

1;
