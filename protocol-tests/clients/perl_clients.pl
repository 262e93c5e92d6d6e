#!/usr/bin/perl
# Real-client checks with Perl's Cache::Memcached (Debian
# libcache-memcached-perl), unmodified. The library has no cas, gets or touch.
#
#   perl perl_clients.pl HOST:PORT
#
# Prints one line per check: `PASS name` or `FAIL name: reason`. Exits 0 when
# every check ran, whatever their results. Run by scripts/clients.sh.
use strict;
use warnings;
use Cache::Memcached;

@ARGV == 1 or die "usage: perl perl_clients.pl HOST:PORT\n";
my $ADDR = $ARGV[0];
my $P    = 'perl:';
$| = 1;

sub client {
    return Cache::Memcached->new({
        servers            => [$ADDR],
        connect_timeout    => 2,
        select_timeout     => 5,
        compress_threshold => 0,    # off unless a check turns it on
    });
}

sub show {
    my ($v) = @_;
    return 'undef' unless defined $v;
    return ref($v) if ref $v;
    my $s = length($v) > 60 ? 'string(' . length($v) . ') ' . substr($v, 0, 40) . '...' : "'$v'";
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

sub eq_ {
    my ($got, $want, $what) = @_;
    my $same = (!defined $got && !defined $want)
        || (defined $got && defined $want && $got eq $want);
    die "$what: got " . show($got) . ', want ' . show($want) . "\n" unless $same;
}

# Cache::Memcached answers NOT_STORED / NOT_FOUND with a false value ('' or 0).
sub false_ {
    my ($got, $what) = @_;
    die "$what: got " . show($got) . ", want a false value\n" if $got;
}

sub check {
    my ($name, $body) = @_;
    if (eval { $body->(); 1 }) {
        print "PASS $name\n";
    } else {
        my $e = $@ || 'unknown error';
        print STDERR "$name: $e";
        $e =~ s/\s+/ /g;
        $e =~ s/ $//;
        print "FAIL $name: $e\n";
    }
}

sub blob {
    my ($n) = @_;
    my $b = join('', map { chr } 0 .. 255) . "\r\nEND\r\nVALUE x 0 1\r\n\0";
    $b .= chr(int(rand(256))) while length($b) < $n;
    return substr($b, 0, $n);
}

check('cache-memcached.binary_safe', sub {
    my $m = client();
    for my $n (1, 300, 65536, 500000) {
        my $v = blob($n);
        eq_($m->set("${P}bin$n", $v), 1, "set of $n bytes");
        eq_($m->get("${P}bin$n"), $v, "get of $n bytes");
    }
    my $k = $P . ('k' x (250 - length $P));
    eq_($m->set($k, 'long key'), 1, 'set with a 250-byte key');
    eq_($m->get($k), 'long key', 'get with a 250-byte key');
});

check('cache-memcached.storable_compress', sub {
    my $m = client();
    my $ref = { list => [1, 'two', "th\0ree"], n => 2.5 };
    eq_($m->set("${P}ref", $ref), 1, 'set of a hash ref (Storable)');
    my $got = $m->get("${P}ref");
    eq_(ref $got, 'HASH', 'get of a hash ref');
    eq_(join(',', @{ $got->{list} }), join(',', @{ $ref->{list} }), 'hash ref contents');
    $m->set_compress_threshold(1000);
    my $v = "compressible\r\n" x 5000;
    eq_($m->set("${P}z", $v), 1, 'compressed set');
    eq_($m->get("${P}z"), $v, 'compressed get');
    $m->set_compress_threshold(0);
});

check('cache-memcached.multi_get', sub {
    my $m = client();
    my %items = map { ("${P}m$_" => "value $_" x ($_ + 1)) } 0 .. 39;
    while (my ($k, $v) = each %items) {
        eq_($m->set($k, $v), 1, "set $k");
    }
    my $got = $m->get_multi(keys %items, "${P}missing");
    eq_(scalar(keys %$got), 40, 'number of keys get_multi found');
    for my $k (keys %items) {
        eq_($got->{$k}, $items{$k}, "get_multi value of $k");
    }
});

check('cache-memcached.add_replace_append_prepend_delete', sub {
    my $m = client();
    $m->delete("${P}a");
    false_($m->replace("${P}a", 'x'), 'replace of a missing key');
    eq_($m->add("${P}a", 'mid'), 1, 'add');
    false_($m->add("${P}a", 'other'), 'add of an existing key');
    eq_($m->append("${P}a", "\r\nend"), 1, 'append');
    eq_($m->prepend("${P}a", "start\0"), 1, 'prepend');
    eq_($m->get("${P}a"), "start\0mid\r\nend", 'value after append/prepend');
    eq_($m->delete("${P}a"), 1, 'delete');
    eq_($m->get("${P}a"), undef, 'get after delete');
    false_($m->delete("${P}a"), 'delete of a missing key');
});

check('cache-memcached.incr_decr', sub {
    my $m = client();
    eq_($m->set("${P}n", 10), 1, 'set');
    eq_($m->incr("${P}n", 5), 15, 'incr 5');
    eq_($m->decr("${P}n", 3), 12, 'decr 3');
    eq_($m->decr("${P}n", 100), 0, 'decr below zero');
    eq_($m->set("${P}n", '18446744073709551615'), 1, 'set 2^64-1');
    eq_($m->incr("${P}n"), 0, 'incr wraps at 2^64');
    $m->delete("${P}n-missing");
    eq_($m->incr("${P}n-missing"), undef, 'incr of a missing key');
});

check('cache-memcached.expiry_flush', sub {
    my $m = client();
    eq_($m->set("${P}e", 'short', 2), 1, 'set with ttl 2');
    eq_($m->set("${P}k", 'kept', 100), 1, 'set with ttl 100');
    eq_($m->get("${P}e"), 'short', 'get before the ttl ran out');
    select(undef, undef, undef, 3.2);
    eq_($m->get("${P}e"), undef, 'get after the ttl ran out');
    eq_($m->get("${P}k"), 'kept', 'get of the key with ttl 100');
    eq_($m->flush_all, 1, 'flush_all');
    eq_($m->get("${P}k"), undef, 'get after flush_all');
});

check('cache-memcached.stats', sub {
    my $m = client();
    $m->set("${P}s", 'x' x 100);
    my $st = $m->stats([qw(misc items slabs)]);
    my $misc = $st->{hosts}{$ADDR}{misc} or die "no misc stats for $ADDR\n";
    for my $k (qw(pid uptime version curr_items get_hits cmd_set limit_maxbytes)) {
        die "stats has no $k\n" unless exists $misc->{$k};
    }
    die "curr_items is $misc->{curr_items}\n" unless $misc->{curr_items} >= 1;
    eq_($st->{total}{curr_items}, $misc->{curr_items}, 'total curr_items');
    my $items = $st->{hosts}{$ADDR}{items} // '';
    die "stats items lists no items: " . show($items) . "\n" unless $items =~ /^STAT items:\d+:number [1-9]/m;
    my $slabs = $st->{hosts}{$ADDR}{slabs} // '';
    die "stats slabs lacks active_slabs: " . show($slabs) . "\n" unless $slabs =~ /^STAT active_slabs \d+/m;
});

exit 0;
