# Every obtain_* case captured from real DRF (../shared/fixtures/
# drf-oracle-public.json), through nginx's `location = /api-token-auth/`
# proxied to authtokend: status, Content-Type, Allow and the JSON body.
# alice (password "wonderland") and bob (inactive, "builder") are made
# with authtokenctl; {alice_token} is alice's token as the CLI reports it.
use strict;
use warnings;

use Cwd qw(abs_path);
use Encode qw(encode);
use File::Basename qw(dirname);
use JSON::PP;
use Test::Nginx::Socket 'no_plan';

use AuthToken::TestRedis;
use AuthToken::Issuer;

my $fixtures = $ENV{AUTHTOKEN_FIXTURES_DIR}
    || abs_path(dirname(__FILE__) . '/..') . '/../shared/fixtures';
my $oracle = do {
    open my $fh, '<:raw', "$fixtures/drf-oracle-public.json"
        or die "cannot read the DRF fixture in $fixtures: $!";
    local $/;
    JSON::PP->new->decode(<$fh>);
};

issuer_setup();
# The captures send many wrong passwords; throttling has its own test.
authtokend_start('--throttle-user-rate', 'off', '--throttle-addr-rate', 'off');
ctl_ok({ stdin => "wonderland\n" }, 'createuser', 'alice', '--password-stdin');
ctl_ok({ stdin => "builder\n" }, 'createuser', 'bob', '--password-stdin',
       '--inactive');
my $alice = token_of('alice');
my $bob = token_of('bob');
my %placeholder = ('{alice_token}' => $alice, '{bob_token}' => $bob,
                   '{alice_token_upper}' => uc $alice,
                   '{alice_token_minus1}' => substr($alice, 0, 39));
sub fill {
    my ($s) = @_;
    $s =~ s/(\{\w+\})/exists $placeholder{$1} ? $placeholder{$1} : $1/ge;
    return $s;
}

our (@raw, @body);
my $spec = '';
my @cases = grep { $_->{name} =~ /^obtain_/ } @{ $oracle->{cases} };
die "no obtain_* cases in the fixture" unless @cases;
for my $i (0 .. $#cases) {
    my $case = $cases[$i];
    my $rq = $case->{request};
    my $rs = $case->{response};

    my $req = "$rq->{method} " . fill($rq->{path}) . " HTTP/1.1\r\n";
    for my $h (@{ $rq->{headers} }) {
        $req .= encode('latin1', "$h->[0]: " . fill($h->[1])) . "\r\n";
    }
    $req .= "Connection: close\r\n\r\n" . encode('UTF-8', fill($rq->{body}));
    $raw[$i] = $req;
    $body[$i] = encode('UTF-8', fill($rs->{body}));

    my $allow = $rs->{headers}{Allow};
    my $note = $case->{note} ? " ($case->{note})" : '';
    $spec .= "=== TEST " . ($i + 1) . ": $case->{name}$note\n"
           . "--- raw_request eval\n\$::raw[$i]\n"
           . "--- error_code: $rs->{status}\n"
           . "--- response_headers\n"
           . "Content-Type: $rs->{headers}{'Content-Type'}\n"
           . (defined $allow ? "Allow: $allow\n" : "!Allow\n")
           . "!WWW-Authenticate\n"
           . "--- response_body eval\n\$::body[$i]\n\n";
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => <<'_EOC_');
    location = /api-token-auth/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_AUTHTOKEND_PORT;
    }
_EOC_
    $block->set_value(no_error_log => "[error]\n[alert]\n");
});

Test::Base::spec_string($spec);
run_tests();
