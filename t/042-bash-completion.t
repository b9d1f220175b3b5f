# contrib/bash-completion/authtokenctl against the real command line: every
# command `authtokenctl --help` lists is completed, and so is every option
# of the global usage and of each `authtokenctl COMMAND --help`. The
# completion function runs in bash with Debian's bash-completion loaded,
# as it would on a user's <Tab>.
use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $repo = abs_path(dirname(__FILE__) . '/..');
my $ctl = ($ENV{AUTHTOKEN_BUILD_DIR} || "$repo/build") . '/authtokenctl';
my $completion = "$repo/contrib/bash-completion/authtokenctl";
my $bash_completion = '/usr/share/bash-completion/bash_completion';

plan skip_all => "$bash_completion is missing (Debian package bash-completion)"
    unless -r $bash_completion;

my $help = qx{$ctl --help};
is($? >> 8, 0, 'authtokenctl --help exits 0');
my ($usage, $list) = $help =~ /\A(usage:.*?)\n\s*\ncommands:\n(.*?)\n\s*\n/s
    or BAIL_OUT("unexpected authtokenctl --help:\n$help");
my @commands = $list =~ /^  ([a-z][a-z-]*)/mg;
cmp_ok(scalar @commands, '>=', 10, 'authtokenctl --help lists the commands');
my @global = sort(uniq($usage =~ /(--[a-z][a-z0-9-]*)/g));
ok((grep { $_ eq '--redis' } @global), 'the global usage names --redis');

sub uniq { my %seen; grep { !$seen{$_}++ } @_ }

# The words bash would offer for the command line @words (the last one
# being completed).
sub complete {
    my (@words) = @_;
    my $line = join ' ', @words;
    my $quoted = join ' ', map { "'$_'" } @words;
    my $script = <<"SH";
source $bash_completion
source $completion
COMP_WORDS=($quoted)
COMP_CWORD=@{[ $#words ]}
COMP_LINE='$line'
COMP_POINT=@{[ length $line ]}
_authtokenctl authtokenctl '$words[-1]' '@{[ @words > 1 ? $words[-2] : '' ]}'
printf '%s\\n' "\${COMPREPLY[\@]}"
SH
    open my $out, '-|', 'bash', '-c', $script or die "bash: $!";
    my @reply = grep { length } map { chomp; $_ } <$out>;
    close $out;
    return sort @reply;
}

is_deeply([ complete('authtokenctl', '') ], [ sort @commands ],
          'the commands completed are exactly those of authtokenctl --help');
is_deeply([ complete('authtokenctl', 'de') ], [ sort grep { /^de/ } @commands ],
          'a prefix completes to the commands it begins');

my %offered = map { $_ => 1 } complete('authtokenctl', '-');
for my $opt (@global) {
    ok($offered{$opt}, "global option $opt is completed");
}

for my $command (@commands) {
    my $usage_line = qx{$ctl $command --help};
    is($? >> 8, 0, "authtokenctl $command --help exits 0");
    my ($line) = $usage_line =~ /^usage: authtokenctl (.*)$/m;
    my @opts = uniq(($line // '') =~ /(?<![\w-])(--?[a-z][a-z0-9-]*)/g);
    my %got = map { $_ => 1 } complete('authtokenctl', $command, '-');
    my @missing = grep { !$got{$_} } @opts;
    is_deeply(\@missing, [], "every option of $command is completed (@opts)");
}

# Global options before the command, with their values, are skipped over.
my %got = map { $_ => 1 }
    complete('authtokenctl', '--redis', 'redis://127.0.0.1:6379/0', 'token', '-');
ok($got{'--reset'}, 'the command is found after a global option and its value');

done_testing();
