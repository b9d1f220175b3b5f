# Each folder under src/ is one library, and CMake's authtoken_layer()
# refuses an include that reaches up a layer or sideways. This configures
# copies of the source tree, one clean and some with a forbidden include
# planted, and checks that only the clean one configures and that each
# refusal names the file, the include and the layers it may use.
#
# The copies reuse the build's configured nginx tree (AUTHTOKEN_BUILD_DIR's
# nginx/), so no copy runs nginx's configure.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Test::More;

my $top = abs_path(dirname(__FILE__) . '/..');
my $build = $ENV{AUTHTOKEN_BUILD_DIR} // "$top/build";
plan skip_all => "no configured nginx tree in $build/nginx (run make build)"
    unless -f "$build/nginx/objs/ngx_auto_config.h";

# A copy of what CMake reads, with the files' times kept (CMakeLists.txt
# reconfigures nginx's tree when `config` is newer than it).
sub source_copy {
    my $dir = tempdir(CLEANUP => 1);
    # Walked rather than asked of git: the tree may be a copy without .git
    # (tools/mutate's work copy, an unpacked release).
    my @files = ('CMakeLists.txt', 'config');
    find({ no_chdir => 1, wanted => sub {
        push @files, substr($File::Find::name, length($top) + 1) if -f $_;
    } }, map { "$top/$_" } grep { -d "$top/$_" } qw(src packaging));
    for my $file (@files) {
        make_path(dirname("$dir/src-tree/$file"));
        copy("$top/$file", "$dir/src-tree/$file") or die "copy $file: $!";
        utime((stat "$top/$file")[8, 9], "$dir/src-tree/$file");
    }
    make_path("$dir/build");
    symlink("$build/nginx", "$dir/build/nginx") or die "symlink: $!";
    return $dir;
}

sub configure {
    my ($dir) = @_;
    my $out = `cmake -S '$dir/src-tree' -B '$dir/build' 2>&1`;
    return ($? == 0, $out);
}

sub plant {
    my ($dir, $file, $include) = @_;
    my $path = "$dir/src-tree/$file";
    open(my $in, '<', $path) or die "$path: $!";
    my $text = do { local $/; <$in> };
    close $in;
    $text =~ s/^(#include )/#include "$include"\n$1/m or die "no include in $file";
    open(my $out, '>', $path) or die "$path: $!";
    print $out $text;
    close $out;
}

{
    my ($ok, $out) = configure(source_copy());
    ok($ok, 'the tree as committed configures') or diag($out);
}

for my $case (
    ['src/drf/json_renderer.cpp', 'issuer/token_key.h', 'sideways: drf uses the issuer domain'],
    ['src/issuer/token_key.cpp', 'issuer/store/redis_client.h', 'upwards: the domain uses the Redis store'],
    ['src/core/token_digest.cpp', 'drf/python/codecs.h', 'upwards: core (linked into nginx) uses drf/python'],
    ['src/module/ngx_http_auth_token_cache.cpp', 'issuer/token_key.h', 'sideways: the module uses the issuer'],
    ['src/issuer/tests/test_username.cpp', 'daemon/client_address.h', 'upwards: a layer\'s unit test uses a program'],
) {
    my ($file, $include, $what) = @$case;
    my $dir = source_copy();
    plant($dir, $file, $include);
    my ($ok, $out) = configure($dir);
    ok(!$ok, "refused, $what ($file includes $include)");
    # CMake wraps its messages: any run of spaces may be a line break.
    like($out, qr/\Q$file\E:\s+`#include\s+"\Q$include\E"`\s+reaches\s+outside\s+the\s+layers/,
         "the refusal names $file and the include")
        or diag($out);
}

done_testing();
