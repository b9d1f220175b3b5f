# The repository stands alone: no tracked file names a path outside it,
# the fixtures every reader resolves are the in-repo copies, and the unit
# test programs that read fixtures open nothing outside the repository
# (checked with strace while they run, so a path built at run time is caught
# as well as one written in the source).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

use lib dirname(__FILE__) . '/lib';
use AuthToken::Oracle qw(fixtures_dir);

my $top = abs_path(dirname(__FILE__) . '/..');

sub inside_repo { my ($p) = @_; return index(abs_path($p) // $p, "$top/") == 0 }

# Text that points out of the repository: the reference folder beside it,
# however it is spelled.
{
    my @hits;
    for my $pattern ('\.\./shared', '/shared/fixtures') {
        push @hits, `git -C '$top' grep -n -E -e '$pattern' -- . ':!t/001-self-contained.t' 2>/dev/null`;
    }
    is(join('', @hits), '', 'no tracked file names a path outside the repository');
}

{
    local $ENV{AUTHTOKEN_FIXTURES_DIR};
    delete $ENV{AUTHTOKEN_FIXTURES_DIR};
    my $dir = fixtures_dir();
    ok(inside_repo("$dir/drf-oracle-public.json"),
       "t/ reads the DRF captures from inside the repository ($dir)");
    ok(-r "$dir/django-dumpdata.json", 'the Django dumpdata fixture is in the repository');
}

SKIP: {
    my $build = $ENV{AUTHTOKEN_BUILD_DIR};
    skip 'AUTHTOKEN_BUILD_DIR is not set (run through make check)', 2
        unless $build && -d $build;
    open my $cache, '<', "$build/CMakeCache.txt" or die "no CMakeCache.txt in $build: $!";
    my ($fixtures) = map { /^AUTHTOKEN_FIXTURES_DIR:PATH=(.*)$/ ? $1 : () } <$cache>;
    ok(defined $fixtures && inside_repo("$fixtures/README.md"),
       'the unit tests are built against the in-repo fixtures');

    skip 'strace is not installed', 1 unless -x '/usr/bin/strace';
    # Every file the fixture-reading unit tests open, resolved; anything
    # that is neither the system nor the repository (nor the build tree) is
    # a read from outside.
    my @outside;
    # LeakSanitizer cannot run under ptrace (make test-asan's build): it
    # would write a fatal-error report. The leak check is test-asan's own
    # run of these programs; here only the files they open matter.
    local $ENV{ASAN_OPTIONS} = join ':', grep { length } ($ENV{ASAN_OPTIONS} // ''), 'detect_leaks=0';
    for my $prog (qw(test_obtain_request test_password_hasher test_django_import)) {
        my $trace = `strace -f -qq -e trace=open,openat,stat,newfstatat,access -e signal=none '$build/$prog' 2>&1 >/dev/null`;
        for my $line (split /\n/, $trace) {
            next unless $line =~ /^(?:\[pid\s+\d+\]\s+)?\w+\((?:AT_FDCWD, )?"([^"]+)"/;
            my $path = $1;
            next if $path =~ m{^/(?:usr|lib|lib64|etc|proc|sys|dev|tmp|run|var)/};
            my $real = abs_path($path) // $path;
            next if index($real, "$top/") == 0;
            next if index($real, abs_path($build) . '/') == 0;
            push @outside, "$prog: $path";
        }
    }
    is(join("\n", @outside), '', 'the unit tests that read fixtures open nothing outside the repository');
}

done_testing();
