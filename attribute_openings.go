package main

import "time"

// opening is a connection that a TCP SYN announced: the flows of its ends
// that are on this host, the first the sending end if opener.
type opening struct {
	fls    [2]flow
	n      int
	opener bool  // fls[0] is the end that opened it, on this host
	at     int64 // when the SYN was seen, Unix ns
}

// synQueue is how many openings may wait for the opening resolver; more
// are left to the ring's frames and the resolver's passes.
const synQueue = 1024

// syn takes a frame that opens a TCP connection, as soon as the capture
// sees it (before the ring hands its block over), and queues it for
// openings: a short-lived process may close its socket a millisecond
// later. It runs in the capture goroutine, which must never wait for
// /proc: a burst of thousands of connections would stop the capture and
// the kernel would drop frames; when the queue is full the opening is
// left to the ring's frames.
func (r *resolver) syn(f *frame) {
	if r.synq == nil {
		return
	}
	if r.dec == nil {
		r.dec = newDecoder()
	}
	p := &r.pkt
	r.dec.decode(f, p)
	if !p.ok {
		return
	}
	o := opening{at: time.Now().UnixNano()}
	if f.loopback || f.dir == dirOut {
		o.fls[o.n] = flow{p.proto, p.src, p.dst}
		o.n++
	}
	if f.loopback || f.dir == dirIn {
		o.fls[o.n] = flow{p.proto, p.dst, p.src}
		o.n++
	}
	o.opener = o.n > 0 && (f.loopback || f.dir == dirOut)
	select {
	case r.synq <- o:
	default:
	}
}

// startOpenings starts the goroutine that resolves the openings syn
// queues, until done is closed. Without lookup, or without both quick and
// book, it does nothing.
func (r *resolver) startOpenings(done <-chan struct{}) {
	if r.lookup == nil || (r.quick == nil && r.book == nil) {
		return
	}
	r.synq = make(chan opening, synQueue)
	go func() {
		var batch []opening
		for {
			select {
			case <-done:
				return
			case o := <-r.synq:
				batch = append(batch[:0], o)
			}
			// Take what else is waiting: one look at the newest
			// processes serves the whole burst.
		more:
			for len(batch) < 256 {
				select {
				case o := <-r.synq:
					batch = append(batch, o)
				default:
					break more
				}
			}
			r.openings(batch)
		}
	}()
}

// openings resolves the local ends of connections just opened: it asks the
// kernel for each connection's one socket rather than reading the whole
// table, and looks for the owners among the newest processes only. What it
// cannot find is left to the ring's frames.
func (r *resolver) openings(batch []opening) {
	var fls []flow
	var opener []bool
	var at []int64
	for _, o := range batch {
		for i := range o.n {
			fls = append(fls, o.fls[i])
			opener = append(opener, i == 0 && o.opener)
			at = append(at, o.at)
		}
	}
	if r.book != nil {
		r.openingsFromBook(fls, at)
		return
	}
	want := map[uint64]*process{}
	socks := make([]socket, len(fls))
	found := make([]bool, len(fls))
	guess := false
	for i, fl := range fls {
		socks[i], found[i] = r.lookup(fl)
		if found[i] && socks[i].inode != 0 {
			want[socks[i].inode] = nil
		} else {
			guess = guess || opener[i]
		}
	}
	if len(want) == 0 && !guess {
		return
	}
	r.quick.find(want)
	owners := make([]*process, len(fls))
	inferred := make([]bool, len(fls))
	g, canGuess := r.quick.(newcomers)
	for i, s := range socks {
		if s.inode != 0 {
			if owners[i] = want[s.inode]; owners[i] != nil || !canGuess || !opener[i] {
				continue
			}
			// Not found: the socket closed while the processes were read,
			// or its owner is no new process. Ask again.
			if again, ok := r.lookup(fls[i]); ok && again.inode != 0 {
				continue // open, and its owner not new: the passes will find it
			}
		}
		if !canGuess || !opener[i] {
			continue
		}
		// The socket closed before its owner was found: a connection of
		// a millisecond or less. If exactly one process of the socket's
		// user started since the last look, it is the owner; if the
		// socket is gone from the table too, so that its user is not
		// known either, the one process of any user that started. Only
		// for the end that opened the connection: a server's end is found
		// through its listener, and the newest process is the client.
		// Only in netuse's own namespace, and with the connection's
		// address: this keeps out the processes that start all the time
		// elsewhere, and the copies of another namespace's connections
		// that the host forwards (routed, or NAT'd: TestProcNAT's client
		// was credited a second time with the bridge's copy), which carry
		// addresses its socket never had.
		addr := fls[i].local.Addr()
		fits := func(netns uint64) bool { return r.ownAddr != nil && r.ownAddr(netns, addr) }
		if found[i] {
			owners[i] = g.soleNewcomer(s.uid, false, fits)
		} else {
			owners[i] = g.soleNewcomer(0, true, fits)
		}
		inferred[i] = owners[i] != nil
	}
	r.acc.learn(fls, owners, nil, inferred)
}

// openingsFromBook resolves the local ends of connections just opened
// from the kernel's records. A socket they do not have is older than
// netuse, or accepted: its owner is no newcomer, and the passes find it.
// The sockets are looked up first and the records caught up after, once
// for the batch: a socket in the table was recorded before it got there.
// A new connection can reuse the endpoints of one that closed a moment
// ago, so a record missed here would leave the old owner in place.
func (r *resolver) openingsFromBook(fls []flow, at []int64) {
	socks := make([]socket, len(fls))
	found := make([]bool, len(fls))
	for i, fl := range fls {
		socks[i], found[i] = r.lookup(fl)
	}
	r.book.sync()
	owners := make([]*process, len(fls))
	untils := make([]int64, len(fls))
	for i, fl := range fls {
		owners[i], untils[i] = r.fromBook(socks[i], found[i], fl, at[i])
	}
	r.acc.learn(fls, owners, untils, make([]bool, len(fls)))
}

// newcomers is an owner finder that can name the one process of a user
// that it saw start in its last look.
type newcomers interface {
	soleNewcomer(uid uint32, anyUID bool, fits func(netns uint64) bool) *process
}
