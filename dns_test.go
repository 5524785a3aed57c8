package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// patience is how long a test waits for a sign before it fails; it is a
// bound on a hang, not a measure: nothing here should take a millisecond.
const patience = 10 * time.Second

// testNames returns a resolver with a stored hook whose answers the
// returned channel carries, and the clock given, started; close runs at
// cleanup.
func testNames(t *testing.T, lookup func(context.Context, string) ([]string, error), timeout time.Duration, size int, clock *fakeClock) (*names, <-chan storedName) {
	t.Helper()
	n := makeNames(lookup, timeout, size)
	if clock != nil {
		n.now = clock.now
	}
	ch := make(chan storedName, 100)
	n.stored = func(a netip.Addr, name string) { ch <- storedName{a, name} }
	n.start()
	t.Cleanup(n.close)
	return n, ch
}

// storedName is one answer a worker stored.
type storedName struct {
	addr netip.Addr
	name string
}

// waitStored waits for the worker to store the answer for a, skipping the
// answers for other addresses, and returns the name stored.
func waitStored(t *testing.T, ch <-chan storedName, a netip.Addr) string {
	t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case s := <-ch:
			if s.addr == a {
				return s.name
			}
		case <-deadline:
			t.Fatalf("no answer stored for %v after %v", a, patience)
			return ""
		}
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counts returns the sizes of n's cache, LRU list and inflight set.
func (n *names) counts() (cache, lru, inflight int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.cache), n.lru.Len(), len(n.inflight)
}

// isInflight reports whether a is queued or being looked up.
func (n *names) isInflight(a netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.inflight[a]
	return ok
}

// nthAddr returns a distinct IPv4 address for each i < 2^24, in 10.0.0.0/8.
func nthAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestNamesAnswer(t *testing.T) {
	errNo := errors.New("no such host")
	tests := []struct {
		name   string
		addr   string   // asked for
		asked  string   // what lookup is given
		answer []string // what lookup says
		err    error
		want   string
	}{
		{"trailing dot removed", "192.0.2.7", "192.0.2.7", []string{"peer.test."}, nil, "peer.test"},
		{"only one dot removed", "192.0.2.8", "192.0.2.8", []string{"odd.test.."}, nil, "odd.test."},
		{"relative name kept", "192.0.2.9", "192.0.2.9", []string{"peer"}, nil, "peer"},
		{"first answer", "2001:db8::7", "2001:db8::7", []string{"one.test.", "two.test."}, nil, "one.test"},
		{"control characters kept", "192.0.2.10", "192.0.2.10", []string{"evil\x1b[2J\n.test."}, nil, "evil\x1b[2J\n.test"},
		{"no answer", "192.0.2.11", "192.0.2.11", nil, nil, ""},
		{"error", "192.0.2.12", "192.0.2.12", nil, errNo, ""},
		{"answer beside an error", "192.0.2.13", "192.0.2.13", []string{"valid.test."}, errNo, "valid.test"},
		{"just a dot", "192.0.2.14", "192.0.2.14", []string{"."}, nil, ""},
		{"overlong", "192.0.2.15", "192.0.2.15", []string{strings.Repeat("a", maxNameLen+1) + "."}, nil, ""},
		{"longest", "192.0.2.16", "192.0.2.16", []string{strings.Repeat("a", maxNameLen) + "."}, nil, strings.Repeat("a", maxNameLen)},
		{"mapped is IPv4", "::ffff:192.0.2.17", "192.0.2.17", []string{"mapped.test."}, nil, "mapped.test"},
		{"zone dropped", "fe80::1%eth0", "fe80::1", []string{"link.test."}, nil, "link.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string // guarded by: only the one lookup writes, before stored
			lookup := func(ctx context.Context, addr string) ([]string, error) {
				asked = append(asked, addr)
				return tt.answer, tt.err
			}
			n, ch := testNames(t, lookup, time.Minute, 16, nil)
			a := netip.MustParseAddr(tt.addr)
			if got := n.name(a); got != "" {
				t.Fatalf("name(%v) before any lookup = %q, want \"\"", a, got)
			}
			if got := waitStored(t, ch, a.Unmap().WithZone("")); got != tt.want {
				t.Errorf("stored %q, want %q", got, tt.want)
			}
			if got := n.name(a); got != tt.want {
				t.Errorf("name(%v) = %q, want %q", a, got, tt.want)
			}
			if len(asked) != 1 || asked[0] != tt.asked {
				t.Errorf("lookup asked %q, want [%q]", asked, tt.asked)
			}
		})
	}
}

func TestNamesInvalidAddr(t *testing.T) {
	var calls atomic.Int32
	n, _ := testNames(t, func(context.Context, string) ([]string, error) {
		calls.Add(1)
		return []string{"x."}, nil
	}, time.Minute, 16, nil)
	if got := n.name(netip.Addr{}); got != "" {
		t.Errorf("name(zero Addr) = %q, want \"\"", got)
	}
	if _, _, inflight := n.counts(); inflight != 0 {
		t.Errorf("the zero Addr was queued")
	}
}

// TestNamesDedup asks for one address 1000 times, from several goroutines,
// while its lookup is in flight: one lookup.
func TestNamesDedup(t *testing.T) {
	var calls atomic.Int32
	started := make(chan struct{})
	release := make(chan struct{})
	lookup := func(ctx context.Context, addr string) ([]string, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return []string{"peer.test."}, nil
	}
	n, ch := testNames(t, lookup, time.Minute, 16, nil)
	a := netip.MustParseAddr("192.0.2.7")
	n.name(a)
	<-started
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				if got := n.name(a); got != "" {
					t.Errorf("name while in flight = %q, want \"\"", got)
				}
			}
		})
	}
	wg.Wait()
	if _, _, inflight := n.counts(); inflight != 1 {
		t.Errorf("%d addresses in flight, want 1", inflight)
	}
	close(release)
	waitStored(t, ch, a)
	for range 1000 {
		if got := n.name(a); got != "peer.test" {
			t.Fatalf("name = %q, want peer.test", got)
		}
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("%d lookups of one address, want 1", c)
	}
}

// TestNamesNeverAnswers asks a resolver that never answers about 10,000
// addresses: every name returns "", at most nameQueue+nameWorkers asks
// are held, no goroutine is added but the workers, and close cancels the
// lookups and returns.
func TestNamesNeverAnswers(t *testing.T) {
	before := runtime.NumGoroutine()
	var running, returned atomic.Int32
	inLookup := make(chan struct{}, nameWorkers)
	lookup := func(ctx context.Context, addr string) ([]string, error) {
		running.Add(1)
		select {
		case inLookup <- struct{}{}:
		default: // more lookups than workers: counted, and the test fails
		}
		<-ctx.Done()
		returned.Add(1)
		return nil, ctx.Err()
	}
	// The timeout is long enough that no lookup ends before close.
	n := newNames(lookup, time.Hour, 100)
	closed := false
	t.Cleanup(func() {
		if !closed {
			n.close()
		}
	})
	for i := range 10000 {
		if got := n.name(nthAddr(i)); got != "" {
			t.Fatalf("name(%v) = %q, want \"\"", nthAddr(i), got)
		}
		if i%1000 == 0 {
			if g := runtime.NumGoroutine(); g > before+nameWorkers {
				t.Fatalf("%d goroutines after %d asks, want at most %d+%d workers", g, i+1, before, nameWorkers)
			}
		}
	}
	for range nameWorkers {
		<-inLookup // every worker is stuck in a lookup
	}
	// The workers may have taken their addresses after the last ask: top
	// the queue up.
	for i := range 2 * nameQueue {
		n.name(nthAddr(10000 + i))
	}
	cache, lru, inflight := n.counts()
	if cache != 0 || lru != 0 {
		t.Errorf("%d entries cached (%d listed), want 0: nothing was answered", cache, lru)
	}
	if inflight != nameQueue+nameWorkers {
		t.Errorf("%d asks in flight, want %d queued + %d in lookup", inflight, nameQueue, nameWorkers)
	}
	if q := len(n.queue); q != nameQueue {
		t.Errorf("%d asks queued, want %d (full)", q, nameQueue)
	}
	if g := runtime.NumGoroutine(); g > before+nameWorkers {
		t.Errorf("%d goroutines, want at most %d+%d workers", g, before, nameWorkers)
	}
	// An address asked for again while queued is not queued twice, and
	// one dropped is asked for again once there is room: none here.
	n.name(nthAddr(0))
	n.name(nthAddr(10000 + 2*nameQueue - 1))
	if _, _, again := n.counts(); again != inflight {
		t.Errorf("%d asks in flight after asking again, want %d", again, inflight)
	}

	n.close()
	closed = true
	if r, ret := running.Load(), returned.Load(); r != nameWorkers || ret != r {
		t.Errorf("%d lookups started, %d returned at close; want %d, all returned", r, ret, nameWorkers)
	}
	if cache, _, _ := n.counts(); cache != 0 {
		t.Errorf("%d entries cached after close, want 0: a cancelled lookup says nothing", cache)
	}
	// After close, name asks nothing.
	n.name(netip.MustParseAddr("192.0.2.99"))
	if n.isInflight(netip.MustParseAddr("192.0.2.99")) {
		t.Errorf("name after close queued a lookup")
	}
	n.close() // a second close is harmless
}

// TestNamesTimeout: a lookup that ends at its deadline counts as a failure.
func TestNamesTimeout(t *testing.T) {
	clock := newFakeClock()
	lookup := func(ctx context.Context, addr string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n, ch := testNames(t, lookup, time.Millisecond, 16, clock)
	a := netip.MustParseAddr("192.0.2.7")
	n.name(a)
	if got := waitStored(t, ch, a); got != "" {
		t.Errorf("stored %q after a timeout, want \"\"", got)
	}
	n.mu.Lock()
	e := n.cache[a].Value.(*nameEntry)
	expires := e.expires
	n.mu.Unlock()
	if want := clock.now().Add(failTTL); !expires.Equal(want) {
		t.Errorf("a timeout expires at %v, want %v (failTTL)", expires, want)
	}
}

// TestNamesTTL walks an address through a failure, its expiry, an answer
// and the answer's expiry, on a clock that moves only when told.
func TestNamesTTL(t *testing.T) {
	clock := newFakeClock()
	var calls atomic.Int32
	lookup := func(ctx context.Context, addr string) ([]string, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("server misbehaving")
		}
		return []string{"peer.test."}, nil
	}
	n, ch := testNames(t, lookup, time.Minute, 16, clock)
	a := netip.MustParseAddr("192.0.2.7")

	n.name(a)
	if got := waitStored(t, ch, a); got != "" {
		t.Fatalf("stored %q after a failure, want \"\"", got)
	}
	// name queues under the lock it returns with, so once it returns the
	// set in flight says whether it asked.
	asks := func(step string, want bool, wantName string) {
		t.Helper()
		if got := n.name(a); got != wantName {
			t.Errorf("%s: name = %q, want %q", step, got, wantName)
		}
		if got := n.isInflight(a); got != want {
			t.Errorf("%s: asked again: %v, want %v", step, got, want)
		}
	}
	asks("just failed", false, "")
	clock.advance(failTTL)
	asks("failure at its expiry", false, "")
	clock.advance(time.Nanosecond)
	asks("failure expired", true, "")
	if got := waitStored(t, ch, a); got != "peer.test" {
		t.Fatalf("stored %q, want peer.test", got)
	}
	asks("answered", false, "peer.test")
	clock.advance(nameTTL)
	asks("answer at its expiry", false, "peer.test")
	clock.advance(time.Nanosecond)
	asks("answer expired, asked again, old name shown meanwhile", true, "peer.test")
	waitStored(t, ch, a)
	if c := calls.Load(); c != 3 {
		t.Errorf("%d lookups, want 3", c)
	}
}

// TestNamesCacheBound asks for 10*size addresses, one after the other: the
// cache never holds more than size, and keeps those asked for last.
func TestNamesCacheBound(t *testing.T) {
	const size = 8
	lookup := func(ctx context.Context, addr string) ([]string, error) {
		return []string{"h" + addr + ".test."}, nil
	}
	n, ch := testNames(t, lookup, time.Minute, size, nil)
	keep := netip.MustParseAddr("192.0.2.1") // asked for before every other: never the oldest
	n.name(keep)
	waitStored(t, ch, keep)
	for i := range 10 * size {
		if got := n.name(keep); got != "h192.0.2.1.test" {
			t.Fatalf("after %d addresses: name(%v) = %q, want it kept", i, keep, got)
		}
		a := nthAddr(i)
		n.name(a)
		waitStored(t, ch, a)
		cache, lru, _ := n.counts()
		if cache > size || lru != cache {
			t.Fatalf("after %d addresses: %d entries, %d listed; want at most %d, all listed", i+1, cache, lru, size)
		}
	}
	n.close() // so that name asks nothing: an answer now would evict
	for i := range 10 * size {
		a := nthAddr(i)
		want := ""
		if i >= 9*size+1 { // the last size-1, beside keep
			want = fmt.Sprintf("h%v.test", a)
		}
		if got := n.name(a); got != want {
			t.Errorf("name(%v) = %q, want %q", a, got, want)
		}
	}
}

// BenchmarkNamesHit asks for cached names, the renderer's every frame.
func BenchmarkNamesHit(b *testing.B) {
	n := makeNames(func(context.Context, string) ([]string, error) { return nil, nil }, time.Second, 1024)
	defer n.close()
	addrs := make([]netip.Addr, 1024)
	expires := time.Now().Add(time.Hour)
	for i := range addrs {
		addrs[i] = nthAddr(i)
		n.store(addrs[i], fmt.Sprintf("host%d.example.test", i), expires)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if n.name(addrs[i%len(addrs)]) == "" {
			b.Fatal("miss")
		}
		i++
	}
}

// TestNamesWarnNoServer: a lookup that fails because no DNS server
// answers (timeout, refused) is said once, however many addresses fail;
// an address that has no name (NXDOMAIN) is an answer and says nothing.
func TestNamesWarnNoServer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		warns int
	}{
		{"timeout", &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, 1},
		{"refused", &net.DNSError{Err: "read udp: connection refused", Name: "x", Server: "127.0.0.53:53"}, 1},
		{"no name", &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var said []string
			n := makeNames(func(context.Context, string) ([]string, error) { return nil, tc.err }, time.Second, 16)
			n.warn = func(s string) { mu.Lock(); said = append(said, s); mu.Unlock() }
			ch := make(chan storedName, 100)
			n.stored = func(a netip.Addr, name string) { ch <- storedName{a, name} }
			n.start()
			defer n.close()
			for i := range 5 {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
				n.name(a)
				waitStored(t, ch, a)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(said) != tc.warns || (tc.warns > 0 && !strings.Contains(said[0], "no DNS server answered")) {
				t.Errorf("said %q; want %d warning(s) that no DNS server answered", said, tc.warns)
			}
		})
	}
}
