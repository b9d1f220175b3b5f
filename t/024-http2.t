# The module under HTTP/2 (h2c, prior knowledge): the same verdicts and
# DRF bodies as over HTTP/1.1, many streams of one connection suspended on
# lookups at once, and a client that gives up while its streams wait for a
# stalled Redis (the stream's request is finalized from outside; the worker
# must neither crash nor resume it later).
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use AuthToken::TestRedis;
use AuthToken::Server;

my $alice = '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b';
my $bob   = '2a1f6ae4c1c96c8a0b3e2d0f1e8c7b6a59483726';
redis_start();
seed_token($alice, uid => 7, user => 'alice', active => 1);
seed_token($bob, uid => 8, user => 'bob', active => 0);

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT http2;
        location /api/ {
            auth_token on;
            auth_token_timeout 2s;
            add_header X-User $auth_token_user always;
            alias html/;
        }
    }
HTTP
nginx_html(x => "ok\n");
my $url = 'http://127.0.0.1:' . nginx_port() . '/api/x';

# curl over h2c: the body, then "<http version> <status>", and the
# response headers.
sub h2 {
    my ($opts, @urls) = @_;
    my $hdrs = AuthToken::Server::_root() . '/h2-headers';
    unlink $hdrs;
    my @cmd = ('curl', '-sS', '--http2-prior-knowledge', '-D', $hdrs,
               '-w', '%{http_version} %{response_code} \n', @$opts, @urls);
    open my $out, '-|', @cmd or die "curl: $!";
    local $/;
    my $text = <$out> // '';
    close $out;
    my $headers = -e $hdrs ? do { open my $h, '<', $hdrs; local $/; <$h> } : '';
    return ($text, $headers, $? >> 8);
}

my ($out, $headers) = h2([ '-H', "Authorization: Token $alice" ], $url);
is($out, "ok\n2 200 \n", 'a known token passes over HTTP/2');
like($headers, qr/^x-user: alice\r$/m, 'with its user');

($out, $headers) = h2([], $url);
is($out, qq({"detail":"Authentication credentials were not provided."}2 401 \n),
   'no header: 401 with DRF\'s body');
like($headers, qr/^www-authenticate: Token\r$/m, 'and WWW-Authenticate: Token');
like($headers, qr{^content-type: application/json\r$}m, 'as JSON');

($out) = h2([ '-H', "Authorization: Token $bob" ], $url);
is($out, qq({"detail":"User inactive or deleted."}2 401 \n), 'an inactive user: 401');
($out) = h2([ '-H', 'Authorization: Token a b' ], $url);
is($out, qq({"detail":"Invalid token header. Token string should not contain spaces."}2 401 \n),
   'a malformed header: 401 with DRF\'s message');

# h2load (nghttp2-client): one connection, -m streams at once; returns the
# counts of its "requests:" and "status codes:" lines.
sub h2load {
    my (@args) = @_;
    open my $out, '-|', 'h2load', '-c', 1, '-H', "Authorization: Token $alice", @args, $url
        or die "h2load: $!";
    local $/;
    my $text = <$out> // '';
    close $out;
    my %n;
    @n{qw(total started done succeeded failed errored timeout)} =
        $text =~ /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m;
    @n{qw(2xx 3xx 4xx 5xx)} = $text =~ /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m;
    diag($text) if $ENV{TEST_VERBOSE};
    return \%n;
}

# 30 streams on one connection, all suspended on lookups together.
my $n = h2load('-n', 30, '-m', 30);
is($n->{succeeded}, 30, '30 multiplexed streams on one connection all succeed');
is($n->{'2xx'}, 30, 'each with 200');

# The client gives up while its streams wait for a paused Redis.
my @workers = nginx_workers();
redis_pause();
my $t0 = time;
$n = h2load('-n', 10, '-m', 10, '--connection-active-timeout=500ms');
my $took = time - $t0;
is($n->{succeeded} // -1, 0, 'with Redis paused, no stream is answered before the client leaves');
cmp_ok($took, '<', 1.9, 'the client left before the module\'s timeout');
redis_resume();
sleep 0.3;   # the replies for the abandoned streams arrive now
$n = h2load('-n', 10, '-m', 10);
is($n->{'2xx'}, 10, 'the next streams pass');
is_deeply([ nginx_workers() ], \@workers, 'the same worker: nothing crashed');
unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal \d+/, 'no alert in the error log');

nginx_stop();
done_testing();
