# Where authtokenctl and authtokend find their Functions library when no
# scripts_dir is set: the source tree's redis/ when the program is the one
# in its build tree (make run, make check, t/), and the installed copy,
# <datadir>/authtoken/redis from CMake's install prefix, anywhere else, so
# an installed program never reads the tree it was built from.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Test::More;

use lib dirname(__FILE__) . '/lib';
use AuthToken::Issuer;

delete $ENV{AUTHTOKEN_SCRIPTS_DIR};
my $top = dirname(dirname(__FILE__)) || '.';
my $build = AuthToken::Issuer::build_dir();
open my $cache, '<', "$build/CMakeCache.txt" or plan skip_all => "no $build/CMakeCache.txt";
my %cache = map { /^([A-Z_]+):\w+=(.*)$/ ? ($1, $2) : () } <$cache>;
# GNUInstallDirs: an empty DATADIR is DATAROOTDIR.
my $datadir = $cache{CMAKE_INSTALL_DATADIR} || $cache{CMAKE_INSTALL_DATAROOTDIR} || 'share';
$datadir = "$cache{CMAKE_INSTALL_PREFIX}/$datadir" unless $datadir =~ m{^/};
my $installed = "$datadir/authtoken/redis";

issuer_setup();

my ($code, $out, $err) = ctl({ stdin => "pw-one\n" }, 'createuser', 'one', '--password-stdin');
is($code, 0, "the build tree's authtokenctl uses the source tree's scripts") or diag($err);

# The same program copied out of the build tree.
my $tmp = tempdir('authtoken-scripts-XXXXXX', TMPDIR => 1, CLEANUP => 1);
copy("$build/authtokenctl", "$tmp/authtokenctl") or die "copy: $!";
chmod 0755, "$tmp/authtokenctl";

sub run_copy {
    my ($prefix_cmd, @args) = @_;
    my $cmd = join ' ', @$prefix_cmd, "'$tmp/authtokenctl'", @args;
    my $output = `printf 'pw-two\\n' | $cmd 2>&1`;
    return ($? >> 8, $output);
}

SKIP: {
    skip "$installed exists on this machine", 2 if -e $installed;
    my ($c, $o) = run_copy([], 'createuser', 'two', '--password-stdin');
    isnt($c, 0, 'out of the build tree, with nothing installed, it finds no scripts');
    like($o, qr{\Q$installed\E}, "and names the installed path, $installed") or diag($o);
}

SKIP: {
    skip 'needs root and unshare -m to place scripts at the installed path', 1
        unless $> == 0 && system('unshare -m true 2>/dev/null') == 0;
    skip "$datadir does not exist to mount over", 1 unless -d $datadir;
    make_path("$tmp/share/authtoken/redis");
    system('cp', '-a', "$top/redis/.", "$tmp/share/authtoken/redis/") == 0 or die;
    my ($c, $o) = run_copy(['unshare', '-m', 'sh', '-c',
                            qq{'mount --bind "\$0" "\$1" && shift && exec "\$\@"'},
                            "'$tmp/share'", "'$datadir'"],
                           'createuser', 'two', '--password-stdin');
    is($c, 0, "out of the build tree it uses the scripts at $installed") or diag($o);
}

done_testing();
