package AuthToken::Oracle;

# The captures from a real DRF in t/fixtures/drf-oracle-public.json,
# turned into exact requests and expected bodies for the block-format tests
# (t/010 for the hello_* view, t/101 for obtain_*).

use strict;
use warnings;

use Cwd qw(abs_path);
use Encode qw(encode);
use File::Basename qw(dirname);
use JSON::PP;

use Exporter 'import';
our @EXPORT = qw(fixtures_dir oracle_cases oracle_placeholders
                 oracle_raw_request oracle_body oracle_spec);

sub fixtures_dir {
    return $ENV{AUTHTOKEN_FIXTURES_DIR}
        || abs_path(dirname(__FILE__) . '/../..') . '/fixtures';
}

# The cases whose name matches $pattern; dies when there are none, so a
# renamed fixture cannot make a test pass by running nothing.
sub oracle_cases {
    my ($pattern) = @_;
    my $dir = fixtures_dir();
    open my $fh, '<:raw', "$dir/drf-oracle-public.json"
        or die "cannot read the DRF fixture in $dir: $!";
    my $oracle = do { local $/; JSON::PP->new->decode(<$fh>) };
    my @cases = grep { $_->{name} =~ $pattern } @{ $oracle->{cases} };
    die "no cases matching $pattern in the fixture" unless @cases;
    return @cases;
}

# A function that replaces the fixture's placeholders with real keys.
sub oracle_placeholders {
    my (%key) = @_;
    my %value = ('{alice_token}' => $key{alice}, '{bob_token}' => $key{bob},
                 '{alice_token_upper}' => uc $key{alice},
                 '{alice_token_minus1}' => substr($key{alice}, 0, 39));
    return sub {
        my ($s) = @_;
        $s =~ s/(\{\w+\})/exists $value{$1} ? $value{$1} : $1/ge;
        return $s;
    };
}

# The request as bytes: header values are latin-1 decoded in the fixture,
# bodies UTF-8.
sub oracle_raw_request {
    my ($case, $fill) = @_;
    my $rq = $case->{request};
    my $req = "$rq->{method} " . $fill->($rq->{path}) . " HTTP/1.1\r\n";
    for my $h (@{ $rq->{headers} }) {
        $req .= encode('latin1', "$h->[0]: " . $fill->($h->[1])) . "\r\n";
    }
    return $req . "Connection: close\r\n\r\n"
         . encode('UTF-8', $fill->($rq->{body}));
}

sub oracle_body {
    my ($case, $fill) = @_;
    return encode('UTF-8', $fill->($case->{response}{body}));
}

# The Test::Nginx::Socket blocks for the cases matching $pattern: each sends
# the captured request as raw bytes and expects the captured status,
# Content-Type, body, and each header of @headers as captured ("!Name"
# when the capture has none). The requests and bodies go to @main::raw
# and @main::body, which the blocks read (`--- raw_request eval`).
sub oracle_spec {
    my ($pattern, $fill, @headers) = @_;
    my @cases = oracle_cases($pattern);
    my $spec = '';
    for my $i (0 .. $#cases) {
        my $case = $cases[$i];
        my $rs = $case->{response};
        $main::raw[$i] = oracle_raw_request($case, $fill);
        $main::body[$i] = oracle_body($case, $fill);
        my $note = $case->{note} ? " ($case->{note})" : '';
        $spec .= "=== TEST " . ($i + 1) . ": $case->{name}$note\n"
               . "--- raw_request eval\n\$::raw[$i]\n"
               . "--- error_code: $rs->{status}\n"
               . "--- response_headers\n"
               . "Content-Type: $rs->{headers}{'Content-Type'}\n"
               . join('', map { defined $rs->{headers}{$_}
                                    ? "$_: $rs->{headers}{$_}\n" : "!$_\n" }
                              @headers)
               . "--- response_body eval\n\$::body[$i]\n\n";
    }
    return $spec;
}

1;
