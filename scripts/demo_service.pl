#!/usr/bin/perl
# scripts/demo_service.pl: the payment service of scripts/demo.sh.
#
#   perl scripts/demo_service.pl PORT LOGFILE
#
# Listens on 127.0.0.1:PORT, one request at a time (plenty for the demo).
# POST /charges makes a charge {"id": "ch_<n>", "amount": ...} (201); POST
# /charges/<id>/refund refunds it (200).  An Idempotency-Key seen before
# gets the first answer again, and nothing happens twice: what pg_saga
# expects of a service.  Every request goes to LOGFILE, one line each.
use strict;
use warnings;
use IO::Socket::INET;

my ($port, $logfile) = @ARGV;
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
	Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "demo_service: cannot listen on $port: $!";
my (%answers, $n);
$| = 1;
while (my $c = $listen->accept)
{
	my $line = <$c> // next;
	my ($method, $path) = $line =~ m{^(\S+) (\S+)};
	my %h;
	while (defined(my $l = <$c>))
	{
		last if $l =~ /^\r?\n$/;
		$h{ lc $1 } = $2 if $l =~ /^([^:]+):\s*(.*?)\r?\n$/;
	}
	my $body = '';
	read($c, $body, $h{'content-length'}) if $h{'content-length'};
	my $key = $h{'idempotency-key'} // '';
	my $again = exists $answers{$key};
	$answers{$key} //= do {
		my ($amount) = $body =~ /"amount":\s*"?([0-9.]+)/;
		$path =~ m{^/v1/charges$} ? [ 201, sprintf('{"id": "ch_%d", "amount": %s}', ++$n, $amount // 0) ]
		  : $path =~ m{^/v1/charges/([^/]+)/refund$} ? [ 200, qq({"refunded": "$1"}) ]
		  : [ 404, '{"error": "no such thing"}' ];
	};
	my ($status, $answer) = @{ $answers{$key} };
	open my $log, '>>', $logfile or die "demo_service: $logfile: $!";
	printf $log "%s %s  Idempotency-Key: %s  %s-> %d %s\n", $method, $path, $key,
		($again ? '(seen before) ' : ''), $status, $answer;
	close $log;
	print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: "
	  . length($answer) . "\r\nConnection: close\r\n\r\n$answer";
	close $c;
}
