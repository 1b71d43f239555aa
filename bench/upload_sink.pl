#!/usr/bin/perl
# The upload sink of bench/peers: an HTTP/1.1 server on 127.0.0.1 that reads each request's whole
# body (Content-Length, 1 MiB reads) and discards it, then answers 204 with the byte count in a
# header; keep-alive. nginx can only discard a body after answering (and then stops counting),
# so it cannot tell whether a client sent the whole upload.
#   perl bench/upload_sink.pl PORTFILE LOG   writes its port to PORTFILE, one "bytes" line per request to LOG
use strict;
use warnings;
use IO::Socket::INET;
my ($portfile, $log) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 8, ReuseAddr => 1)
  or die "listen: $!";
open(my $pf, '>', "$portfile.tmp") or die; print $pf $srv->sockport, "\n"; close $pf;
rename("$portfile.tmp", $portfile) or die;
$SIG{TERM} = sub { exit 0 };
my $buf = '';
while (my $c = $srv->accept) {
  my $pending = '';
  REQ: while (1) {
    while ($pending !~ /\r\n\r\n/) {
      my $n = sysread($c, $buf, 65536);
      last REQ unless $n;
      $pending .= $buf;
    }
    my ($head, $rest) = split(/\r\n\r\n/, $pending, 2);
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    $len //= 0;
    syswrite($c, "HTTP/1.1 100 Continue\r\n\r\n") if $head =~ /^expect:\s*100-continue/mi;
    my $got = length($rest);
    while ($got < $len) {
      my $n = sysread($c, $buf, 1 << 20);
      last REQ unless $n;
      $got += $n;
    }
    $pending = '';
    open(my $l, '>>', $log) or die; print $l "$got\n"; close $l;
    syswrite($c, "HTTP/1.1 204 No Content\r\nX-Body-Bytes: $got\r\n\r\n");
  }
  close $c;
}
