# Schema version 3 in the split layout (redis/SCHEMA.md, "Two stores" and
# "Versioning"): `authtokenctl migrate` renames the token records of the
# user store and then of the token directory (the same function,
# authtoken_migrate_tokens), and the edge reading the directory gives the
# same verdicts before, during and after:
# - a user store and a directory of schema version 2 (hex names; made
#   here from a version-3 pair by renaming back, as a version-2 issuer
#   left them), an nginx of this version reading the directory: valid 200,
#   revoked 401;
# - a revocation while the directory is 3-partial is applied there (no
#   hex name left behind) and refused at the edge at once;
# - after migrate both are marked 3, neither holds a hex name, and a
#   directory rebuild (`directory sync` of an emptied directory) sweeps
#   and copies base64url names only.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);
use MIME::Base64 qw(decode_base64url);

use AuthToken::TestRedis;
use AuthToken::Issuer;
use AuthToken::Server;
use AuthToken::Directory;

issuer_setup();
my $dport = directory_setup();
directory_nginx_start();

my $INVALID = q{401 {"detail":"Invalid token."}};
sub dir_cmd { AuthToken::TestRedis::redis_at($dport, @_) }
sub hex_names { scalar @{ $_[0]->('KEYS', 'authtoken:token:' . ('[0-9a-f]' x 64)) } }
sub all_names { scalar @{ $_[0]->('KEYS', 'authtoken:token:*') } }
my $store = \&redis_cmd;
my $directory = \&dir_cmd;

# Back to version 2: every token record under its hex name, marked 2.
sub to_version_2 {
    my ($cmd) = @_;
    for my $k (@{ $cmd->('KEYS', 'authtoken:token:*') }) {
        my $b64 = substr($k, length 'authtoken:token:');
        next if $b64 =~ /\A[0-9a-f]{64}\z/;
        $cmd->('RENAME', $k, 'authtoken:token:' . unpack('H*', decode_base64url($b64)));
    }
    $cmd->('SET', 'authtoken:schema', '2');
}

my @names = map { "user$_" } 1 .. 40;
ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin') for @names[0, 1];
$ENV{AUTHTOKEN_DIRECTORY_URL} = "redis://127.0.0.1:$dport/0";
ctl_ok('directory', 'init');
ctl_ok({ stdin => "pw\n" }, 'createuser', $_, '--password-stdin') for @names[2 .. $#names];
my %token = map { $_ => token_of($_) } @names;
to_version_2($store);
to_version_2($directory);
# nginx upgraded onto it: a new connection reads schema 2 (a schema never
# goes back from 3 by itself).
nginx_reload();
sleep 0.5;

subtest 'a schema-2 pair (hex names): the edge of this version serves it' => sub {
    is(hex_names($store), 40, 'the user store holds 40 hex names');
    is(hex_names($directory), 40, 'the directory too');
    is(edge_once($token{user1}), '200 ok', 'a valid token: 200');
    my ($code, undef, $err) = ctl('revoke', 'user2');
    is($code, 0, 'a revocation at schema 2') or diag($err);
    is(edge_once($token{user2}), $INVALID, 'is refused at the edge');
    is(hex_names($directory), 39, 'its hex record is gone from the directory');
    is(all_names($directory), 39, 'and no new name was written');
};

subtest 'the directory 3-partial: a revocation leaves no name behind' => sub {
    dir_cmd('SET', 'authtoken:schema', '3-partial');
    my ($code, undef, $err) = ctl('revoke', 'user3');
    is($code, 0, 'a revocation while the directory is 3-partial') or diag($err);
    is(edge_once($token{user3}), $INVALID, 'is refused at the edge');
    is(all_names($directory), 38, 'under neither name');
    my $new = token_of('user4', '-r');   # a token replaced
    is(dir_cmd('EXISTS', token_key($new)), 1, 'is written under its new name');
    is(dir_cmd('EXISTS', token_key($new, 'hex')), 0, 'and not its hex one');
    is(edge_once($new), '200 ok', 'and accepted at the edge');
    is(edge_once($token{user4}), $INVALID, 'the old one refused');
    $token{user4} = $new;
};

subtest 'migrate renames both stores; verdicts stay' => sub {
    my ($code, $out, $err) = ctl('migrate', '--nginx-upgraded');
    is($code, 0, 'migrate succeeds') or diag($err);
    like($out, qr/^Renamed 38 token records to schema version 3's names in \d+ batch(?:es)?; the database is marked version 3\.$/m,
         'the user store: 38 renamed') or diag($out);
    like($out, qr/^Renamed 37 token directory records to schema version 3's names in \d+ batch(?:es)?; the database is marked version 3\.$/m,
         'the directory: 37 renamed (user4\'s new token had its new name)') or diag($out);
    for my $cmd ($store, $directory) {
        is($cmd->('GET', 'authtoken:schema'), '3', 'marked 3');
        is(hex_names($cmd), 0, 'no hex name left');
        is(all_names($cmd), 38, '38 records');
    }
    is(edge_once($token{$_}), '200 ok', "$_: 200") for qw(user1 user4 user40);
    is(edge_once($token{$_}), $INVALID, "$_: 401") for qw(user2 user3);
};

subtest 'migrate without --nginx-upgraded leaves a version-2 directory alone' => sub {
    to_version_2($directory);
    my ($code, $out, $err) = ctl('migrate');
    is($code, 2, 'it exits 2') or diag($out, $err);
    like($err, qr/the rename of token records to schema version 3's names was not started \(the token directory is marked 2\).*`authtokenctl migrate --nginx-upgraded`$/m,
         'naming the directory') or diag($err);
    is(dir_cmd('GET', 'authtoken:schema'), '2', 'the directory is still marked 2');
    is(hex_names($directory), 38, 'every record keeps its hex name');
};

subtest 'a rebuild of a version-2 directory renames what it sweeps' => sub {
    to_version_2($directory);
    my $stray = token_key('e' x 64, 'hex');   # a record no user holds
    dir_cmd('HSET', $stray, 'uid', 999, 'user', 'stray', 'active', 1);
    dir_cmd('DEL', 'authtoken:directory');    # lost: the next sync rebuilds
    my ($code, $out, $err) = ctl('directory', 'sync');
    is($code, 0, 'directory sync rebuilds it') or diag($err);
    like($out, qr/Rebuilt the token directory/, 'it says so') or diag($out);
    is(dir_cmd('GET', 'authtoken:schema'), '3', 'marked 3 at the end');
    is(hex_names($directory), 0, 'no hex name');
    is(dir_cmd('EXISTS', $stray) + dir_cmd('EXISTS', token_key('e' x 64)), 0, 'the stray record is gone');
    is(all_names($directory), 38, '38 records');
    is(edge_once($token{user1}), '200 ok', 'the edge accepts a valid token');
    is(edge_once($token{user2}), $INVALID, 'and refuses a revoked one');
};

subtest 'a rebuild of an emptied directory copies new names only' => sub {
    dir_cmd('FLUSHALL');
    my ($code, $out, $err) = ctl('directory', 'sync');
    is($code, 0, 'directory sync rebuilds it') or diag($err);
    is(dir_cmd('GET', 'authtoken:schema'), '3', 'marked 3');
    is(hex_names($directory), 0, 'no hex name');
    is(all_names($directory), 38, '38 records');
    is(edge_after_reconnect($token{user1}), '200 ok', 'the edge accepts a valid token');
    is(edge_once($token{user2}), $INVALID, 'and refuses a revoked one');
};

done_testing();
