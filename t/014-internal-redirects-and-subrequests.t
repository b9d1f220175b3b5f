# The verdict belongs to the request, not to one location: nginx zeroes
# r->ctx on internal redirects (error_page, try_files ... @name,
# post_action), and the variables must still answer. A request redirected
# while its lookup is in flight must not be run twice. And subrequests
# skip the access phase: auth_token_verify makes an auth_request target
# that answers 204/401/503 itself.
use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use POSIX ":sys_wait_h";
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup qw(track);
use AuthToken::TestRedis;
use AuthToken::Server;

my $valid   = 'f18cf35e35f01bc02fa4789ff0137b8fbafebff7';
my $unknown = '4c4e1e0ab8f8bd6a0f0d2b1ed5a4c7e2a0f6a9d3';

redis_start();
seed_token($valid, uid => 7, user => 'admin');

# A slow HTTP backend for post_action: it logs each request it accepts,
# then answers after 1.5 s, one request at a time.
my $backend_port = free_port();
my $backend_log = "/tmp/authtoken-014-backend-$$.log";
unlink $backend_log;
my $listen = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                   LocalPort => $backend_port,
                                   ReuseAddr => 1)
    or die "backend: $!";
my $backend = fork // die "fork: $!";
if ($backend == 0) {
    while (my $c = $listen->accept) {
        my $head = '';
        while (defined(my $line = <$c>)) {
            $head .= $line;
            last if $line eq "\r\n";
        }
        my ($line) = $head =~ /^(\S+ \S+)/;
        open my $fh, '>>', $backend_log or die;
        print $fh ($line // '?'), "\n";
        close $fh;
        sleep 1.5;
        print $c "HTTP/1.0 204 No Content\r\n\r\n";
        close $c;
    }
    exit 0;
}
close $listen;
track($backend);    # killed and reaped at the end
$ENV{TEST_NGINX_BACKEND_PORT} = $backend_port;
END { local $?; unlink $backend_log if $backend_log }

nginx_start(<<'HTTP');
    auth_token_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    log_format st '$uri status=$status token=$auth_token_status '
                  'user=$auth_token_user';
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        access_log logs/st.log st;

        location /ep/ {
            auth_token on;
            error_page 401 /denied.html;
            alias html/;
        }
        location /ep-named/ {
            auth_token on;
            error_page 401 = @denied;
            alias html/;
        }
        location @denied {
            return 401 "denied: $auth_token_status\n";
        }
        location = /denied.html {
            internal;
            root html;
        }

        location /app/ {
            auth_token on;
            try_files /nonexistent @app;
        }
        location @app {
            proxy_set_header X-Auth-User $auth_token_user;
            proxy_set_header X-Auth-Status $auth_token_status;
            rewrite ^ /echo break;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
        }
        location = /echo {
            return 200 "user=$http_x_auth_user status=$http_x_auth_status\n";
        }

        location /pa-api/ {
            auth_token on;
            auth_token_timeout 5s;
            post_action /pa;
            alias html/;
        }
        location = /pa {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT/log;
        }

        location /guarded/ {
            auth_request /auth;
            auth_request_set $auth_user $auth_token_user;
            add_header X-Auth-User $auth_user always;
            alias html/;
        }
        location = /auth {
            internal;
            auth_token_verify;
        }
        location = /verify {
            auth_token_verify;
        }
    }
HTTP
nginx_html(hello => "hello\n");
nginx_html('denied.html' => "custom denied page\n");

sub access_lines {
    my ($re) = @_;
    sleep 0.1;
    open my $fh, '<', AuthToken::Server::_root() . '/logs/st.log' or die $!;
    return grep { /$re/ } <$fh>;
}

subtest 'error_page 401 to a URI keeps $auth_token_status for the log' => sub {
    my $r = http_request('/ep/hello', Authorization => "Token $unknown");
    is($r->{status}, 401, 'the unknown token gets 401');
    is($r->{body}, "custom denied page\n", 'the error_page body, not ours');
    my ($line) = access_lines(qr{^/denied\.html status=401});
    like($line // '', qr/token=invalid /, 'the access log has token=invalid');

    $r = http_request('/ep-named/hello');
    is($r->{status}, 401, 'named location: 401');
    is($r->{body}, "denied: missing\n",
       'the named location sees $auth_token_status');
};

subtest 'try_files ... @app passes the identity to the upstream' => sub {
    my $r = http_request('/app/x', Authorization => "Token $valid");
    is($r->{status}, 200, 'the valid token gets 200');
    is($r->{body}, "user=admin status=ok\n",
       'X-Auth-User and the status reach the upstream');
    $r = http_request('/app/x', Authorization => "Token $unknown");
    is($r->{status}, 401, 'an unknown token still gets 401');
};

subtest 'post_action after a client abort during a lookup runs once' => sub {
    redis_pause();
    my $s = http_send('/pa-api/hello', Authorization => "Token $valid");
    sleep 0.3;
    close $s;                    # the client leaves while Redis is stopped
    sleep 0.4;                   # post_action's request is at the backend
    redis_resume();              # and now the lookup's reply comes in
    sleep 3.5;                   # long enough for a second backend request
    open my $fh, '<', $backend_log;
    my @hits = $fh ? <$fh> : ();
    is(scalar @hits, 1, 'the backend got exactly one post_action request')
        or diag explain \@hits;
    my $r = http_request('/pa-api/hello', Authorization => "Token $valid");
    is($r->{status}, 200, 'the worker serves on');
};

subtest 'auth_request to an auth_token_verify location' => sub {
    my $r = http_request('/guarded/hello', Authorization => "Token $valid");
    is($r->{status}, 200, 'valid token: 200');
    is($r->{body}, "hello\n", 'the protected content');
    is($r->{headers}{'x-auth-user'}, 'admin',
       'auth_request_set reads $auth_token_user of the subrequest');

    $r = http_request('/guarded/hello', Authorization => "Token $unknown");
    is($r->{status}, 401, 'unknown token: 401');
    is($r->{headers}{'www-authenticate'}, 'Token',
       'auth_request passes our challenge on');
    $r = http_request('/guarded/hello');
    is($r->{status}, 401, 'no token: 401');

    redis_pause();
    $r = http_request('/guarded/hello', Authorization => "Token $valid",
                      -timeout => 5);
    redis_resume();
    is($r->{status}, 500,
       'Redis down: auth_request turns our 503 into 500, never a pass');
};

subtest 'an auth_token_verify location answers by itself' => sub {
    my $r;
    for (1 .. 50) {   # the link may be reconnecting after the pause
        $r = http_request('/verify', Authorization => "Token $valid");
        last if $r->{status} == 204;
        sleep 0.05;
    }
    is($r->{status}, 204, 'valid token: 204');
    is($r->{body}, '', 'no body');
    $r = http_request('/verify', Authorization => "Token $unknown");
    is($r->{status}, 401, 'unknown token: 401');
    is($r->{body}, '{"detail":"Invalid token."}', "DRF's body");
    is($r->{headers}{'www-authenticate'}, 'Token', 'the challenge');
    redis_pause();
    $r = http_request('/verify', Authorization => "Token $valid");
    redis_resume();
    is($r->{status}, 503, 'Redis down: 503');
    is($r->{headers}{'retry-after'}, '1', 'with Retry-After');
};

unlike(nginx_error_log(), qr/\[(alert|crit|emerg)\]|signal \d+/,
       'no alert, no crash');

done_testing();
