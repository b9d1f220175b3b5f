package AuthToken::Login;

# Raw POST /api-token-auth/ requests for the login-path tests: many can be
# sent before any answer is read (concurrency), from a chosen loopback
# source address (127.0.0.2 is a client nginx does not trust), with a
# body given byte for byte.

use strict;
use warnings;

use IO::Socket::INET;
use URI::Escape qw(uri_escape_utf8);
use Time::HiRes qw(time);

use AuthToken::Server qw(http_read);

use Exporter 'import';
our @EXPORT = qw(login_send login_read login form_body);

sub form_body {
    my ($username, $password) = @_;
    return 'username=' . uri_escape_utf8($username)
         . '&password=' . uri_escape_utf8($password);
}

# login_send($port, $username, $password, headers => {...},
#            body => "raw form", local_addr => "127.0.0.2",
#            path => "/api-token-auth/"): the socket.
sub login_send {
    my ($port, $username, $password, %opt) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  ($opt{local_addr}
                                       ? (LocalAddr => $opt{local_addr}) : ()),
                                  Timeout => 5)
        or die "connect to $port: $!";
    binmode $s;
    my $body = $opt{body} // form_body($username, $password);
    my %h = (%{ $opt{headers} || {} });
    my $path = $opt{path} // "/api-token-auth/";
    my $req = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n"
            . "Content-Type: application/x-www-form-urlencoded\r\n"
            . 'Content-Length: ' . length($body) . "\r\n";
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    print $s "$req\r\n$body";
    return $s;
}

# { status, headers, body, elapsed } or undef on timeout.
sub login_read { http_read($_[0], $_[1] || 30) }

sub login {
    my ($port, $username, $password, %opt) = @_;
    my $start = time;
    my $res = login_read(login_send($port, $username, $password, %opt),
                         $opt{timeout});
    die "no answer from $port for $username" unless $res;
    $res->{elapsed} = time - $start;
    return $res;
}

1;
