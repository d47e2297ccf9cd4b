# SagaHttp.pm: a small idempotent HTTP service for the tests of HTTP targets.
#
#   my $svc = SagaHttp->new($dir);            # state under $dir
#   $svc->start;                              # 127.0.0.1, a free port
#   $svc->start(tls => { cert => ..., key => ... });
#   $svc->url;                                # http(s)://127.0.0.1:PORT
#   $svc->rules({ match => '^POST /charges', status => 503, times => 2, retry_after => 1 }, ...);
#   $svc->requests;                           # every request received, in order
#   $svc->effects;                            # what the service did, in order
#   $svc->stop;  $svc->start;                 # down for a while, same port
#
# It behaves as the service of SPEC "HTTP targets" should: every request
# carries an Idempotency-Key "<coordinator>:<saga key>:<step>:<operation>";
# the first request of a key acts and its answer is kept, a repeat gets the
# same answer without acting again (a repeat that arrives while the first
# still runs waits for it); a compensation whose action it never saw
# answers success and leaves a tombstone, so that action, if it comes
# later, does not act.  An action makes an object {"id": "<kind>_<n>",
# "path", "body"} and answers it (201); a compensation or confirm answers
# {"undone"/"confirmed": <the action's object or null>}.
#
# Rules (tried in order, the first whose regex matches "METHOD PATH" and
# has times left, each use counted) script faults:
#   status => N                answer N without acting (503, 429, 408, 4xx, 302)
#   retry_after => S           with a Retry-After header
#   location => URL            with a Location header (for a 3xx)
#   echo => 1                  with the request's headers in the answer's body
#   delay => S                 act after sleeping S seconds, then answer
#   drop => 1                  act, then close the connection without answering
#   big => N                   act, then answer a JSON string of N bytes
#   times => N                 how many requests it applies to (default: all)
#
# Every request is recorded (requests.jsonl: method, path, key, headers,
# body), every effect too (effects.jsonl: act/undo/confirm, key, path,
# body); the state lives in files under $dir, shared by the forked
# handlers under a lock.  Connection: close on every answer.
package SagaHttp;

use strict;
use warnings;

use Fcntl qw(:flock);
use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(usleep);

my $json = JSON::PP->new->canonical->allow_nonref;

sub new
{
	my ($class, $dir) = @_;
	make_path("$dir/keys");
	my $self = bless { dir => $dir, port => 0, pid => undef }, $class;
	$self->rules();
	return $self;
}

sub url
{
	my ($self) = @_;
	return ($self->{tls} ? 'https' : 'http') . "://127.0.0.1:$self->{port}";
}

sub port { return $_[0]->{port}; }

# Starts the service (again, on the same port if it ran before).
sub start
{
	my ($self, %opts) = @_;
	$self->{tls} = $opts{tls} if exists $opts{tls};
	my $listen;
	for (1 .. 100)
	{
		$listen = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1', LocalPort => $self->{port},
			Proto => 'tcp', Listen => 64, ReuseAddr => 1);
		last if $listen;
		usleep(100_000);
	}
	die "SagaHttp: cannot listen on port $self->{port}: $!" unless $listen;
	$self->{port} = $listen->sockport;
	my $pid = fork;
	die "SagaHttp: fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setpgid(0, 0);
		$self->serve($listen);
		POSIX::_exit(0);
	}
	close $listen;
	$self->{pid} = $pid;
	return $self;
}

# Stops the service: it accepts nothing more; requests in progress finish.
sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
	$self->{pid} = undef;
}

sub DESTROY
{
	my ($self) = @_;
	local $?;
	if ($self->{pid})
	{
		# the handlers of a stopped service are in its process group
		kill 'KILL', -$self->{pid};
		kill 'KILL', $self->{pid};
		waitpid($self->{pid}, 0);
	}
}

sub rules
{
	my ($self, @rules) = @_;
	$_->{left} = $_->{times} // -1 for @rules;
	$self->with_lock(sub { write_file("$self->{dir}/rules.json", $json->encode(\@rules)); });
}

sub read_jsonl
{
	my ($file) = @_;
	open my $fh, '<', $file or return [];
	my @rows = map { $json->decode($_) } grep { /\S/ } <$fh>;
	close $fh;
	return \@rows;
}

sub requests { my ($self) = @_; return read_jsonl("$self->{dir}/requests.jsonl"); }
sub effects { my ($self) = @_; return read_jsonl("$self->{dir}/effects.jsonl"); }

# --- inside the service ----------------------------------------------------

sub write_file
{
	my ($file, $text) = @_;
	open my $fh, '>', "$file.tmp" or die "SagaHttp: $file: $!";
	print $fh $text;
	close $fh;
	rename "$file.tmp", $file or die "SagaHttp: rename $file: $!";
}

sub append_line
{
	my ($file, $row) = @_;
	open my $fh, '>>', $file or die "SagaHttp: $file: $!";
	flock($fh, LOCK_EX);
	print $fh $json->encode($row), "\n";
	close $fh;
}

sub with_lock
{
	my ($self, $code, $name) = @_;
	$name //= 'state';
	open my $lock, '>>', "$self->{dir}/$name.lock" or die "SagaHttp: lock: $!";
	flock($lock, LOCK_EX);
	my @r = $code->();
	close $lock;
	return wantarray ? @r : $r[0];
}

sub serve
{
	my ($self, $listen) = @_;
	$SIG{CHLD} = 'IGNORE';
	while (1)
	{
		my $client = $listen->accept or next;
		my $pid = fork;
		if (defined $pid && $pid == 0)
		{
			close $listen;
			eval { $self->handle($client); };
			POSIX::_exit(0);
		}
		close $client;
	}
}

sub read_request
{
	my ($c) = @_;
	my $line = <$c>;
	return undef unless defined $line;
	my ($method, $path) = $line =~ m{^(\S+) (\S+) HTTP/1\.[01]\r?\n$} or return undef;
	my %headers;
	while (defined(my $h = <$c>))
	{
		last if $h =~ /^\r?\n$/;
		my ($name, $value) = $h =~ /^([^:]+):\s*(.*?)\r?\n$/ or next;
		$headers{lc $name} = $value;
	}
	my $body = '';
	my $len = $headers{'content-length'} // 0;
	while (length($body) < $len)
	{
		my $n = read($c, $body, $len - length($body), length($body));
		last unless $n;
	}
	return { method => $method, path => $path, headers => \%headers, body => $body };
}

sub respond
{
	my ($c, $status, $body, %headers) = @_;
	$body //= '';
	my $out = "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nConnection: close\r\n"
	  . "Content-Length: " . length($body) . "\r\n";
	$out .= "$_: $headers{$_}\r\n" for sort keys %headers;
	print $c "$out\r\n$body";
}

# The first rule for this request with uses left, counted.
sub take_rule
{
	my ($self, $req) = @_;
	return $self->with_lock(sub {
		my $rules = $json->decode(slurp("$self->{dir}/rules.json"));
		my $chosen;
		for my $r (@$rules)
		{
			next unless "$req->{method} $req->{path}" =~ /$r->{match}/;
			next if $r->{left} == 0;
			$r->{left}-- if $r->{left} > 0;
			$chosen = {%$r};
			last;
		}
		write_file("$self->{dir}/rules.json", $json->encode($rules));
		return $chosen;
	});
}

sub slurp
{
	my ($file) = @_;
	open my $fh, '<', $file or return undef;
	local $/;
	my $t = <$fh>;
	close $fh;
	return $t;
}

sub key_file
{
	my ($self, $key) = @_;
	(my $safe = $key) =~ s/[^A-Za-z0-9_.-]/_/g;
	return "$self->{dir}/keys/$safe";
}

sub handle
{
	my ($self, $c) = @_;
	if ($self->{tls})
	{
		require IO::Socket::SSL;
		IO::Socket::SSL->start_SSL($c, SSL_server => 1,
			SSL_cert_file => $self->{tls}{cert}, SSL_key_file => $self->{tls}{key})
		  or return;
	}
	my $req = read_request($c) or return;
	my $key = $req->{headers}{'idempotency-key'} // '';
	my $body = eval { length $req->{body} ? $json->decode($req->{body}) : undef };
	$req->{t} = Time::HiRes::time();
	append_line("$self->{dir}/requests.jsonl",
		{ method => $req->{method}, path => $req->{path}, key => $key, t => $req->{t},
		  headers => $req->{headers}, body => $req->{body} });
	my $rule = $self->take_rule($req);
	if ($rule && $rule->{status})
	{
		my %h;
		$h{'Retry-After'} = $rule->{retry_after} if defined $rule->{retry_after};
		$h{'Location'} = $rule->{location} if defined $rule->{location};
		respond($c, $rule->{status}, $json->encode({ error => "scripted $rule->{status}",
			$rule->{echo} ? (headers => $req->{headers}) : () }), %h);
		return;
	}
	sleep($rule->{delay}) if $rule && $rule->{delay};
	# one lock per step of a saga: its action and compensation never interleave
	(my $step_key = $key) =~ s/:(action|compensation|confirm)$//;
	my ($status, $answer) =
	  $self->with_lock(sub { $self->act($req, $key, $body) }, 'key-' . ($step_key =~ s/\W/_/gr));
	return if $rule && $rule->{drop};
	# an answer of that many bytes (a JSON string), after acting
	$answer = $json->encode('x' x $rule->{big}) if $rule && $rule->{big};
	respond($c, $status, $answer);
}

# Acts once per key (under the key's lock); a repeat answers as the first.
sub act
{
	my ($self, $req, $key, $body) = @_;
	return (400, '{"error": "no Idempotency-Key"}') unless $key =~ /^(.+):(action|compensation|confirm)$/;
	my ($prefix, $op) = ($1, $2);
	my $kept = slurp($self->key_file($key));
	return @{ $json->decode($kept) } if defined $kept;
	my $action_file = $self->key_file("$prefix:action");
	my ($status, $answer);
	if ($op eq 'action')
	{
		if (-e $self->key_file("$prefix:compensation"))
		{
			# its compensation came first: the action never acts
			($status, $answer) = (409, $json->encode({ error => 'compensated before it arrived' }));
		}
		else
		{
			my ($kind) = $req->{path} =~ m{^/([a-z]+)};
			my $n = $self->with_lock(sub {
				my $n = (slurp("$self->{dir}/counter") // 0) + 1;
				write_file("$self->{dir}/counter", $n);
				return $n;
			});
			my $object = { id => ($kind // 'obj') . "_$n", path => $req->{path}, body => $body };
			# received at t0, acted at t1 (after a rule's delay): the request's span
			append_line("$self->{dir}/effects.jsonl",
				{ effect => 'act', key => $key, path => $req->{path}, body => $body, id => $object->{id},
				  t0 => $req->{t}, t1 => Time::HiRes::time() });
			($status, $answer) = (201, $json->encode($object));
		}
	}
	else
	{
		my $action = slurp($action_file);
		my $object = defined $action ? $json->decode($json->decode($action)->[1]) : undef;
		$object = undef if ref $object ne 'HASH' || !$object->{id};
		append_line("$self->{dir}/effects.jsonl",
			{ effect => $op eq 'compensation' ? 'undo' : 'confirm', key => $key, path => $req->{path},
			  body => $body, id => $object ? $object->{id} : undef });
		($status, $answer) = (200, $json->encode({ ($op eq 'compensation' ? 'undone' : 'confirmed') => $object }));
	}
	write_file($self->key_file($key), $json->encode([ $status, $answer ]));
	return ($status, $answer);
}

1;
