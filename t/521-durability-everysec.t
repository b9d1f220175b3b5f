# t/520-durability.t with `appendfsync everysec` (redis/redis.conf's
# production setting). Redis writes the AOF to the OS before replying,
# except while a background fsync is still running: then it may postpone
# the write for up to 2 s and reply anyway (aof.c, flushAppendOnlyFile), so
# a killed process can lose what it acknowledged in its last ~2 s (this
# test saw it happen). What everysec guarantees, and what this checks: a
# write acknowledged 2.5 s before Redis is killed survives.
use strict;
use warnings;
use FindBin;

$ENV{AUTHTOKEN_TEST_APPENDFSYNC} = 'everysec';
$ENV{AUTHTOKEN_DURABILITY_ROUNDS} ||= 3;
$ENV{AUTHTOKEN_DURABILITY_SETTLE} ||= 2.5;
my $file = "$FindBin::Bin/520-durability.t";
do $file;
die $@ if $@;
