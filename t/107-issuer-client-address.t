# Which client a login comes from, for the per-address throttle: nginx's
# real_ip_header model. No forwarded-address header is believed unless one
# is configured (real_ip_header, default none), and then only from a
# trusted proxy; a trusted proxy that does not send it is warned about,
# once; IPv6 clients are counted by their /64.
use strict;
use warnings;

use Test::More;

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Login;
use AuthToken::Server;

issuer_setup();
my @throttle = ('--throttle-addr-rate', '3/min', '--throttle-user-addr-rate',
                'off', '--throttle-user-rate', 'off');

# The README's first example without its proxy_set_header: nginx passes
# the client's own X-Real-IP / X-Forwarded-For through untouched.
my $nginx_conf = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location = /api-token-auth/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
        }
        location = /xff/api-token-auth/ {
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT/api-token-auth/;
        }
    }
_EOC_
# nginx proxies to the daemon's port of the moment.
sub restart {
    authtokend_start(@_);
    nginx_stop();
    nginx_start($nginx_conf);
}
restart(@throttle);
my @forged = map {
    login(nginx_port(), "nobody$_", 'x',
          headers => { 'X-Real-IP' => "203.0.113.$_",
                       'X-Forwarded-For' => "198.51.100.$_" })->{status}
} 1 .. 4;
is("@forged", '400 400 400 429',
   'by default a client-sent X-Real-IP / X-Forwarded-For picks nothing');
unlike(authtokend_log(), qr/203\.0\.113|198\.51\.100/,
       'and is not logged as the client');

# real_ip_header X-Forwarded-For: a client-sent X-Real-IP is ignored, and
# the right-most address nginx appended is the client (127.0.0.2 is not a
# trusted proxy; the forged entries to its left are skipped).
redis_cmd('FLUSHDB');
restart(@throttle, '--real-ip-header', 'X-Forwarded-For');
my @xff = map {
    login(nginx_port(), "nobody$_", 'x', local_addr => '127.0.0.2',
          path => '/xff/api-token-auth/',
          headers => { 'X-Real-IP' => "203.0.113.$_",
                       'X-Forwarded-For' => "198.51.100.$_" })->{status}
} 1 .. 4;
is("@xff", '400 400 400 429',
   'with X-Forwarded-For configured, X-Real-IP and forged entries do not count');
like(authtokend_log(), qr/"nobody1" from 127\.0\.0\.2: 400/,
     'the client is the address nginx saw');

# real_ip_header X-Real-IP, IPv6 clients: one /64 is one client.
redis_cmd('FLUSHDB');
authtokend_start(@throttle, '--real-ip-header', 'X-Real-IP');
my $port = authtokend_port();
my @v6 = map {
    login($port, "nobody$_", 'x',
          headers => { 'X-Real-IP' => "2001:db8:1:2::$_" })->{status}
} 1 .. 4;
is("@v6", '400 400 400 429', 'addresses in one IPv6 /64 share a window');
is(login($port, 'nobody9', 'x',
         headers => { 'X-Real-IP' => '2001:db8:1:3::1' })->{status}, 400,
   'the next /64 has its own');
is(scalar(@{ redis_cmd('KEYS', 'authtoken:throttle:addr:2001:db8:1:2::/64') }),
   1, 'the key names the /64');

# A trusted proxy that does not send the configured header: a warning,
# once, and the proxy's address is used.
login($port, 'nobody1', 'x') for 1 .. 3;
my @warnings = authtokend_log() =~ /(\[warn\] .*real_ip_header.*)/g;
is(scalar(@warnings), 1, 'a missing header is warned about once');
like($warnings[0] // '', qr/from the trusted proxy 127\.0\.0\.1 has no address in the real_ip_header "X-Real-IP"/,
     'the warning says which proxy and which header');

done_testing();
