# t/520-durability.t with `appendfsync everysec` (redis/redis.conf's
# production setting): the AOF is written to the OS before each reply, so
# a killed Redis process loses no acknowledged user or token either.
use strict;
use warnings;
use FindBin;

$ENV{AUTHTOKEN_TEST_APPENDFSYNC} = 'everysec';
$ENV{AUTHTOKEN_DURABILITY_ROUNDS} ||= 10;
my $file = "$FindBin::Bin/520-durability.t";
do $file;
die $@ if $@;
