package main

import "sync"

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

// opening takes a packet that opens a TCP connection, as soon as the
// capture sees it (before the ring hands its block over), and queues it for
// openings: a short-lived process may close its socket a millisecond
// later. It runs in the capture goroutine, which must never wait for
// /proc: a burst of thousands of connections would stop the capture and
// the kernel would drop frames; when the queue is full the opening is
// left to the ring's frames.
func (r *resolver) opening(p *packet) {
	if r.synq == nil {
		return
	}
	o := opening{at: p.at}
	if p.loopback || p.dir == dirOut {
		o.fls[o.n] = flow{p.proto, p.src, p.dst}
		o.n++
	}
	if p.loopback || p.dir == dirIn {
		o.fls[o.n] = flow{p.proto, p.dst, p.src}
		o.n++
	}
	o.opener = o.n > 0 && (p.loopback || p.dir == dirOut)
	select {
	case r.synq <- o:
	default:
	}
}

// startOpenings starts the goroutine that resolves the openings that
// opening queues, until done is closed; running counts it. Without lookup,
// or without both quick and book, it starts nothing and says so: then
// openings need not be decoded.
func (r *resolver) startOpenings(done <-chan struct{}, running *sync.WaitGroup) bool {
	if r.lookup == nil || (r.quick == nil && r.book == nil) {
		return false
	}
	r.synq = make(chan opening, synQueue)
	running.Add(1)
	go func() {
		defer running.Done()
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
	return true
}

// openings resolves the local ends of connections just opened: it asks the
// kernel for each connection's one socket rather than reading the whole
// table, and looks for the owners among the newest processes only. What it
// cannot find is left to the ring's frames.
func (r *resolver) openings(batch []opening) {
	var ends []openEnd
	for _, o := range batch {
		for i := range o.n {
			e := openEnd{opener: i == 0 && o.opener}
			e.fl, e.at = o.fls[i], o.at
			ends = append(ends, e)
		}
	}
	for i := range ends {
		ends[i].sock, ends[i].found = r.lookup(ends[i].fl)
	}
	if r.book != nil {
		r.openingsFromBook(ends)
	} else if !r.openingsFromProc(ends) {
		return
	}
	rs := make([]resolution, len(ends))
	for i, e := range ends {
		rs[i] = e.resolution
	}
	r.acc.learn(rs)
}

// openEnd is an end of a connection just opened, on this host.
type openEnd struct {
	resolution
	opener bool   // the end that opened the connection
	sock   socket // its socket, if found
	found  bool
}

// openingsFromBook resolves the ends from the kernel's records. A socket
// they do not have is older than netuse, or accepted: its owner is no
// newcomer, and the passes find it. The sockets were looked up first and
// the records are caught up after, once for the batch: a socket in the
// table was recorded before it got there. A new connection can reuse the
// endpoints of one that closed a moment ago, so a record missed here would
// leave the old owner in place.
func (r *resolver) openingsFromBook(ends []openEnd) {
	r.book.sync()
	for i := range ends {
		e := &ends[i]
		e.owner, e.until = r.fromBook(e.sock, e.found, e.fl, e.at)
	}
}

// openingsFromProc looks for the ends' owners among the newest processes,
// and guesses those of sockets that closed before they were found (see
// guessOpener). It reports whether there was anything to look for.
func (r *resolver) openingsFromProc(ends []openEnd) bool {
	want := map[uint64]*process{}
	guess := false
	for _, e := range ends {
		if e.found && e.sock.inode != 0 {
			want[e.sock.inode] = nil
		} else {
			guess = guess || e.opener
		}
	}
	if len(want) == 0 && !guess {
		return false
	}
	denied := r.quick.find(want)
	g, canGuess := r.quick.(newcomers)
	for i := range ends {
		e := &ends[i]
		if e.sock.inode != 0 {
			e.owner = want[e.sock.inode]
			if e.owner == nil && (denied || (r.readable != nil && !r.readable(e.sock.uid))) {
				// Its owner may not be read: say so now, while the socket
				// is open. A connection that ends before the first pass
				// leaves a socket without a file (TIME_WAIT), "no owner"
				// by then (TestProcLeastPrivilege's transfers).
				e.why = notReadable
			}
			if e.owner != nil || !canGuess || !e.opener {
				continue
			}
			// Not found: the socket closed while the processes were read,
			// or its owner is no new process. Ask again.
			if again, ok := r.lookup(e.fl); ok && again.inode != 0 {
				continue // open, and its owner not new: the passes will find it
			}
		}
		if canGuess && e.opener {
			e.owner = r.guessOpener(g, e)
			e.inferred = e.owner != nil
		}
	}
	return true
}

// guessOpener names the owner of the end that opened a connection whose
// socket closed before its owner was found: a connection of a millisecond
// or less. If exactly one process of the socket's user started since the
// last look, it is the owner; if the socket is gone from the table too, so
// that its user is not known either, the one process of any user that
// started. Only for the end that opened the connection: a server's end is
// found through its listener, and the newest process is the client. Only
// in netuse's own namespace, and with the connection's address: this keeps
// out the processes that start all the time elsewhere, and the copies of
// another namespace's connections that the host forwards (routed, or
// NAT'd: TestProcNAT's client was credited a second time with the bridge's
// copy), which carry addresses its socket never had.
func (r *resolver) guessOpener(g newcomers, e *openEnd) *process {
	addr := e.fl.local.Addr()
	fits := func(netns uint64) bool { return r.ownAddr != nil && r.ownAddr(netns, addr) }
	if e.found {
		return g.soleNewcomer(e.sock.uid, false, fits)
	}
	return g.soleNewcomer(0, true, fits)
}

// newcomers is an owner finder that can name the one process of a user
// that it saw start in its last look.
type newcomers interface {
	soleNewcomer(uid uint32, anyUID bool, fits func(netns uint64) bool) *process
}
