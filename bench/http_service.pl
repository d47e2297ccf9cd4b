#!/usr/bin/perl
# bench/http_service.pl: the payment service of bench/http.sh.
#
#   perl bench/http_service.pl PORT
#
# One process, one event loop (IO::Select), keep-alive: fast enough that
# the service is not what the benchmark measures.  POST /v1/charges answers
# 201 {"id": "ch_<n>"}, and a repeated Idempotency-Key its first answer
# (kept in memory), as pg_saga expects of a service.  On SIGTERM it prints
# how many requests it served and exits.
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;

my $port = shift or die "usage: http_service.pl PORT\n";
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
	Proto => 'tcp', Listen => 256, ReuseAddr => 1) or die "http_service: cannot listen on $port: $!";
$listen->blocking(0);
my $sel = IO::Select->new($listen);
my (%buf, %answers);
my ($n, $served) = (0, 0);
$SIG{TERM} = sub { print "served $served\n"; exit 0; };

sub answer
{
	my ($key) = @_;
	return $answers{$key} //= [ 201, sprintf('{"id": "ch_%d"}', ++$n) ] if $key ne '';
	return [ 201, sprintf('{"id": "ch_%d"}', ++$n) ];
}

while (1)
{
	foreach my $s ($sel->can_read)
	{
		if ($s == $listen)
		{
			while (my $c = $listen->accept)
			{
				$c->blocking(0);
				$sel->add($c);
				$buf{$c} = '';
			}
			next;
		}
		my $got = sysread($s, my $chunk, 65536);
		if (!$got)
		{
			$sel->remove($s);
			delete $buf{$s};
			close $s;
			next;
		}
		$buf{$s} .= $chunk;
		# every complete request in the buffer
		while ($buf{$s} =~ /\r\n\r\n/)
		{
			my $head_end = $+[0];
			my $head = substr($buf{$s}, 0, $head_end);
			my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
			$len //= 0;
			last if length($buf{$s}) < $head_end + $len;
			my ($key) = $head =~ /^idempotency-key:\s*(\S+)/mi;
			my $close = $head =~ /^connection:\s*close/mi;
			substr($buf{$s}, 0, $head_end + $len) = '';
			my ($status, $body) = @{ answer($key // '') };
			$served++;
			my $out = "HTTP/1.1 $status Created\r\nContent-Type: application/json\r\nContent-Length: "
			  . length($body) . "\r\n\r\n$body";
			syswrite($s, $out);
			if ($close)
			{
				$sel->remove($s);
				delete $buf{$s};
				close $s;
				last;
			}
		}
	}
}
