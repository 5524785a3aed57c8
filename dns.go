package main

// Reverse DNS for netuse conn --resolve: the renderer asks for the name of
// a remote address on every frame, and must never wait for the network, so
// the answer comes from a cache that a few workers fill in the background.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

const (
	nameWorkers = 4  // lookups asked at once
	nameQueue   = 64 // asks waiting for a worker; more are dropped, to be asked again later

	nameTTL = 10 * time.Minute // how long an answer is kept
	// failTTL is how long a failure (timeout, no name, no resolver) is
	// kept, so that a dead resolver is asked about an address once a
	// minute rather than once a frame.
	failTTL = time.Minute

	// maxNameLen is the longest name kept: a domain name has at most 255
	// bytes on the wire, so at most 253 in text without the final dot
	// (RFC 1035 3.1). A lookup that says more is broken; its answer counts
	// as no name, so that an entry's memory is bounded.
	maxNameLen = 253
)

// names resolves addresses to host names in the background, off the capture and report path.
//
// An address is in at most one of three places: the cache (answered, or
// failed, until its entry expires), the queue (asked, waiting for a
// worker) or a worker (being looked up); the last two are the inflight
// set. The cache holds at most size entries and forgets the least recently
// asked for; the inflight set holds at most nameQueue+nameWorkers.
type names struct {
	lookup  func(ctx context.Context, addr string) ([]string, error)
	timeout time.Duration    // bound on one lookup
	size    int              // most entries cached
	now     func() time.Time // the clock of expiry; tests replace it
	// stored, if not nil, is called by a worker after it has stored the
	// answer for a (name "" for a failure); tests wait on it.
	stored func(a netip.Addr, name string)
	// warn, if not nil, is told once that no DNS server answered: every
	// address is then shown as it is, which looks like a name never known.
	warn   func(string)
	warned sync.Once

	queue  chan netip.Addr
	ctx    context.Context // done at close: ends the workers and their lookups
	cancel context.CancelFunc
	wg     sync.WaitGroup // the workers

	mu       sync.Mutex // guards cache, lru, inflight and closed
	cache    map[netip.Addr]*list.Element
	lru      list.List // of *nameEntry, most recently asked for first
	inflight map[netip.Addr]struct{}
	closed   bool
}

// nameEntry is the cached answer for one address.
type nameEntry struct {
	addr    netip.Addr
	name    string    // "" if the address has none or the lookup failed
	expires time.Time // when to ask again
}

// newNames starts a resolver of at most `size` cached entries that asks lookup, each ask bounded by timeout.
//
// lookup must return once its context is done: close waits for it. A
// timeout of zero or less fails every lookup.
func newNames(lookup func(ctx context.Context, addr string) ([]string, error), timeout time.Duration, size int) *names {
	n := makeNames(lookup, timeout, size)
	n.start()
	return n
}

// makeNames returns a resolver whose workers are not started yet, so that
// a test may set its hooks first.
func makeNames(lookup func(ctx context.Context, addr string) ([]string, error), timeout time.Duration, size int) *names {
	ctx, cancel := context.WithCancel(context.Background())
	return &names{
		lookup:   lookup,
		timeout:  timeout,
		size:     max(size, 1),
		now:      time.Now,
		queue:    make(chan netip.Addr, nameQueue),
		ctx:      ctx,
		cancel:   cancel,
		cache:    map[netip.Addr]*list.Element{},
		inflight: map[netip.Addr]struct{}{},
	}
}

// start starts the workers.
func (n *names) start() {
	for range nameWorkers {
		n.wg.Add(1)
		go n.work()
	}
}

// name returns the name of a if known ("" if not known yet, or if a has none); if a was never asked for
// (or its entry expired) it queues a lookup. It never blocks: a full queue drops the ask, to be asked again later.
//
// An expired entry's name is still returned while it is asked again. An
// IPv4-mapped IPv6 address is the IPv4 address, and zones are dropped: the
// name of fe80::1%eth0 is that of fe80::1.
func (n *names) name(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap().WithZone("")
	n.mu.Lock()
	defer n.mu.Unlock()
	if el, ok := n.cache[a]; ok {
		n.lru.MoveToFront(el)
		e := el.Value.(*nameEntry)
		if n.now().After(e.expires) {
			n.ask(a)
		}
		return e.name
	}
	n.ask(a)
	return ""
}

// ask queues a lookup of a unless it is in flight already, the queue is
// full, or n is closed. n.mu is held.
func (n *names) ask(a netip.Addr) {
	if n.closed {
		return
	}
	if _, ok := n.inflight[a]; ok {
		return
	}
	select {
	case n.queue <- a:
		n.inflight[a] = struct{}{}
	default:
	}
}

// close stops the workers and waits for them; name after close returns what is cached, asks nothing.
func (n *names) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
}

// work looks up the addresses of the queue until n is closed.
func (n *names) work() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case a := <-n.queue:
			if n.ctx.Err() != nil {
				return // select chose at random: closed wins
			}
			n.resolve(a)
		}
	}
}

// resolve looks up one address and stores the answer.
func (n *names) resolve(a netip.Addr) {
	ctx, cancel := context.WithTimeout(n.ctx, n.timeout)
	got, err := n.lookup(ctx, a.String())
	cancel()
	var dnsErr *net.DNSError
	if n.warn != nil && n.ctx.Err() == nil && len(got) == 0 && errors.As(err, &dnsErr) && !dnsErr.IsNotFound {
		// A timeout, a refused or failing server: not "this address has
		// no name", which is an answer.
		n.warned.Do(func() {
			n.warn(fmt.Sprintf("--resolve: no DNS server answered (%v); remote addresses are shown as numbers while none does", oneLine(err)))
		})
	}
	// The first answer, even beside an error: Go's resolver drops the
	// records whose names are not valid and returns the others with an
	// error.
	name := ""
	if len(got) > 0 {
		name = strings.TrimSuffix(got[0], ".")
	}
	if len(name) > maxNameLen {
		name = ""
	}
	name = strings.Clone(name) // not a slice of the whole answer
	ttl := nameTTL
	if name == "" {
		ttl = failTTL
	}

	n.mu.Lock()
	delete(n.inflight, a)
	if n.closed {
		// The lookup may have failed only because close cancelled
		// it: that says nothing about the address.
		n.mu.Unlock()
		return
	}
	n.store(a, name, n.now().Add(ttl))
	n.mu.Unlock()
	if n.stored != nil {
		n.stored(a, name)
	}
}

// store caches the answer for a, forgetting the least recently asked for
// entry if the cache is full. n.mu is held.
func (n *names) store(a netip.Addr, name string, expires time.Time) {
	if el, ok := n.cache[a]; ok {
		e := el.Value.(*nameEntry)
		e.name, e.expires = name, expires
		return
	}
	if len(n.cache) >= n.size {
		old := n.lru.Back()
		n.lru.Remove(old)
		delete(n.cache, old.Value.(*nameEntry).addr)
	}
	n.cache[a] = n.lru.PushFront(&nameEntry{addr: a, name: name, expires: expires})
}

// goResolver is Go's own DNS client: it reads /etc/resolv.conf itself, so
// it sees the file mounted in netuse's mount namespace (ip netns exec
// mounts /etc/netns/NS/resolv.conf there), where the C library's resolver
// might ask a daemon outside it (nscd, systemd-resolved).
var goResolver = &net.Resolver{PreferGo: true}

// systemLookup is the machine's resolver, Go's own (net.Resolver{PreferGo: true}) so that it reads /etc/resolv.conf as mounted in netuse's mount namespace: LookupAddr.
func systemLookup(ctx context.Context, addr string) ([]string, error) {
	return goResolver.LookupAddr(ctx, addr)
}
