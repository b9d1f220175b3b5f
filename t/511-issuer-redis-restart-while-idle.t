# Redis restarted (with its data) while authtokend sits idle: its pooled
# connections now lead to a closed socket. The first request afterwards
# must not be the one that finds out: a connection the server has closed
# is dropped when it is leased (the peer's FIN is already there to see),
# and a fresh one is made, so the first login, health check and admin
# command after a restart succeed as if nothing happened.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use AuthToken::TestRedis;
use AuthToken::Issuer;

issuer_setup();
authtokend_start('--threads', '4',
                 '--throttle-user-rate', 'off', '--throttle-addr-rate', 'off',
                 '--throttle-user-addr-rate', 'off');
ctl_ok({ stdin => "bob-pw\n" }, 'createuser', 'bob', '--password-stdin');
my $bob = token_of('bob');

# Several pooled connections: concurrent logins leave more than one idle.
my @kids = map { my $pid = fork // die; if (!$pid) { my ($s) = obtain_direct('bob', 'bob-pw'); exit($s == 200 ? 0 : 1) } $pid } 1 .. 4;
is_deeply([map { waitpid($_, 0); $? >> 8 } @kids], [0, 0, 0, 0], 'four concurrent logins before the restart');
my ($s, $h, $b) = daemon_request('GET', '/healthz');
is($s, 200, 'healthz before the restart');

for my $round (1 .. 2) {
    redis_cmd('SAVE');   # redis-test.conf has no persistence: snapshot by hand
    redis_restart();     # SIGKILL, then the same port with dump.rdb
    sleep 0.2;           # the old connections' FINs have arrived
    ($s, $h, $b) = obtain_direct('bob', 'bob-pw');
    is("$s $b", qq{200 {"token":"$bob"}}, "restart $round: the first login after it succeeds");
    ($s, undef, $b) = daemon_request('GET', '/healthz');
    is($s, 200, "restart $round: the first health check after it succeeds") or diag($b);
    my @kids = map { my $pid = fork // die; if (!$pid) { my ($s) = obtain_direct('bob', 'bob-pw'); exit($s == 200 ? 0 : 1) } $pid } 1 .. 4;
    is_deeply([map { waitpid($_, 0); $? >> 8 } @kids], [0, 0, 0, 0],
              "restart $round: four concurrent logins right after it all succeed");
}
unlike(authtokend_log(), qr/\[error\] (?!insecure_test_hashing)/, 'no request and no heartbeat met a dead connection (no error line)');

authtokend_stop();
redis_stop();
done_testing();
