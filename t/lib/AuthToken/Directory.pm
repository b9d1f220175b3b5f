package AuthToken::Directory;

# The token directory (docs/operations.md, "Two stores") for one .t file:
# a second real redis-server of the file's own, beside AuthToken::TestRedis's
# server (which is the user store), on a free loopback port exported as
# $TEST_NGINX_DIRECTORY_PORT; an nginx whose auth_token_redis reads it; the
# edge's verdict on a token as "STATUS body"; and the user store's outbox
# count. No persistence (redis-test.conf): directory_kill then
# directory_start is a restart empty. What a file pins (the cache, extra
# locations, the expected verdicts) stays in the file.
#
# The directory is stopped at the end of the file (also when it was left
# SIGSTOPped), by the process that started it only, keeping the file's exit
# status ($?, which t/002 checks).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep time);

use AuthToken::Cleanup qw(track untrack);
use AuthToken::Process;
use AuthToken::Server;
use AuthToken::TestRedis qw(redis_cmd redis_server_start);

use Exporter 'import';
our @EXPORT = qw(directory_setup directory_start directory_kill directory_port
                 directory_dir directory_pid directory_nginx_start
                 directory_renewing_nginx_start edge_once
                 edge_after_reconnect outbox_seq pending
                 fork_with_directory_stopped);

my $repo = abs_path(dirname(__FILE__) . '/../../..');
my $owner = $$;
my ($port, $dir, $pid);

sub directory_port { $port }
sub directory_dir { $dir }
sub directory_pid { $pid }

# Picks the port, makes the data directory (t/servroot-directory-PID) and,
# unless nostart, starts the directory. Returns its port.
sub directory_setup {
    my (%opt) = @_;
    $port = $ENV{TEST_NGINX_DIRECTORY_PORT} = free_port();
    $dir = ($ENV{TEST_NGINX_SERVROOT} || "$repo/t/servroot") . "-directory-$$";
    remove_tree($dir);
    make_path($dir);
    directory_start() unless $opt{nostart};
    return $port;
}

# Starts it (again, empty) on the same port; returns once it answers.
sub directory_start {
    $pid = redis_server_start($port, $dir, what => 'directory redis-server');
}

# SIGKILL and reap: the directory is gone, with whatever it held.
sub directory_kill {
    kill 'KILL', $pid;
    waitpid $pid, 0;
    undef $pid;
}

# nginx reading the directory: $http (directives at http{} level, after
# auth_token_redis) and $locations (more location blocks) come from the
# file; /s/ is `auth_token on` in front of html/x ("ok\n").
sub directory_nginx_start {
    my (%opt) = @_;
    my $http = $opt{http} // '';
    my $locations = $opt{locations} // '';
    nginx_start(<<"HTTP");
    auth_token_redis 127.0.0.1:\$TEST_NGINX_DIRECTORY_PORT;
$http
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /s/ {
            auth_token on;
            alias html/;
        }
$locations
    }
HTTP
    nginx_html(x => "ok\n");
}

# directory_nginx_start() with /r/ too: a verdict cached for 1 s, and every
# use noted (auth_token_last_used, flushed each second), which renews a
# token made with token_auto_refresh in the directory (authtoken_touch).
sub directory_renewing_nginx_start {
    directory_nginx_start(http => 'auth_token_last_used_interval 1s;', locations => <<'NGINX');
        location /r/ {
            auth_token on;
            auth_token_cache zone=tokens:1m valid=1s;
            auth_token_last_used on;
            alias html/;
        }
NGINX
}

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

# One request for html/x under $where ('/s/' unless given) with
# "Authorization: Token $token": "200 ok", or the status and the body.
sub edge_once {
    my ($token, $where) = @_;
    my $res = $http->get('http://127.0.0.1:' . nginx_port() . ($where // '/s/') . 'x',
                         { headers => { Authorization => "Token $token" } });
    return "$res->{status} " . ($res->{status} == 200 ? 'ok' : $res->{content});
}

# The verdict once the edge reaches the directory: a 503 (nginx
# reconnecting to a restarted directory) is retried for up to 5 s; any
# other answer is the verdict.
sub edge_after_reconnect {
    my ($token) = @_;
    my $deadline = time + 5;
    my $v;
    do { $v = edge_once($token); sleep 0.05 if $v =~ /^503/ }
        while ($v =~ /^503/ && time < $deadline);
    return $v;
}

# The user store's outbox: the last entry's number, and how many entries
# the directory has not acknowledged.
sub outbox_seq { redis_cmd('GET', 'authtoken:outbox-seq') // 0 }
sub pending { outbox_seq() - (redis_cmd('GET', 'authtoken:outbox-acked') // 0) }

# A change made with the directory SIGSTOPped: $child runs in a forked
# process (it ends with POSIX::_exit, or exit 0 when it returns); once the
# user store has the change (the outbox number moved, waited for up to
# 5 s), $then (if any) runs while the child waits on the directory; then
# the child is reaped. Returns (the child's exit code, whether the change
# was seen recorded before $then). The directory stays stopped: SIGCONT is
# the caller's, after its checks.
sub fork_with_directory_stopped {
    my ($then, $child) = @_;
    my $before = outbox_seq();
    kill 'STOP', $pid;
    my $kid = fork // die "fork: $!";
    if (!$kid) {
        $child->();
        POSIX::_exit(0);
    }
    track($kid);
    my $recorded = 0;
    if ($then) {
        my $deadline = time + 5;
        sleep 0.005 until outbox_seq() > $before || time > $deadline;
        $recorded = outbox_seq() > $before;
        $then->();
    }
    waitpid $kid, 0;
    untrack($kid);
    return ($? >> 8, $recorded);
}

END {
    local $?;    # the exit status of the test, not of waitpid
    return unless $$ == $owner;
    if ($pid) {
        kill 'CONT', $pid;
        directory_kill();
    }
    remove_tree($dir) if $dir;
}

1;
