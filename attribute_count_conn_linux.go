package main

import "time"

// What --source kernel knows of a socket beyond its cookie: its endpoints
// and state, and the owner of one the kernel's records do not have (born
// before netuse, or accepted: no process-context hook sees accept), from
// the socket tables of netuse's namespace, read at most once a report;
// and conn's rows, one a socket.

// cookieTables finds netuse's namespace's TCP and UDP sockets by cookie.
// A read walks the kernel's whole socket hash (shared by every
// namespace): it is made only in a report that needs it, conn's every
// report (as the capture's conn reads the tables for the states), proc's
// and serve's only when a socket has no owner yet.
type cookieTables struct {
	diag     *sockDiag
	find     owners // the holders of inodes in /proc; nil: none searched
	socks    []socket
	byCookie map[uint64]int // an index of socks
	index    *sockIndex     // of socks, built when asked for
	fresh    bool           // socks were read in this report
	tries    map[uint64]uint8
	// other namespaces' tables to read too in this report (a container's
	// sockets without a record, conn's every guest), by their inode,
	// until read; otherRead, those this report read
	others    map[uint64]*sockDiag
	otherRead map[uint64]bool
}

// ownerTries is how many reports look for a socket's owner before it is
// "(no owner)" for good (until it closes and its closer is recorded): a
// socket made by a process of another namespace is in no table netuse
// reads, and each look is a read of the whole table.
const ownerTries = 3

func newCookieTables(find owners) (*cookieTables, error) {
	d, err := openSockDiag()
	if err != nil {
		return nil, err
	}
	return &cookieTables{diag: d, find: find, byCookie: map[uint64]int{}, tries: map[uint64]uint8{},
		others: map[uint64]*sockDiag{}, otherRead: map[uint64]bool{}}, nil
}

func (t *cookieTables) close() { t.diag.close() }

// newReport marks the last report's read stale.
func (t *cookieTables) newReport() {
	t.fresh, t.index = false, nil
	clear(t.others)
	clear(t.otherRead)
}

// read reads the tables, if this report has not.
// Another namespace's sockets are marked with its inode (netns), so that
// owners does not match them with a listener of netuse's namespace.
func (t *cookieTables) read() error {
	var err error
	if !t.fresh {
		t.socks, err = t.diag.dumpAll(t.socks[:0])
		clear(t.byCookie)
		for i, s := range t.socks {
			t.socks[i].netns = 0
			t.byCookie[s.cookie] = i
		}
		t.fresh = true
	}
	for ino, d := range t.others {
		delete(t.others, ino)
		if t.otherRead[ino] {
			continue // conn's report read it, and findOwners asked again
		}
		t.otherRead[ino] = true
		n := len(t.socks)
		t.socks, _ = d.dumpAll(t.socks)
		for i := n; i < len(t.socks); i++ {
			t.socks[i].netns = ino
			t.byCookie[t.socks[i].cookie] = i
		}
		t.index = nil
	}
	return err
}

// get returns the open socket with cookie c, as this report read it.
func (t *cookieTables) get(c uint64) (socket, bool) {
	if i, ok := t.byCookie[c]; ok && t.fresh {
		return t.socks[i], true
	}
	return socket{}, false
}

// owners finds the owners of the open sockets with these cookies, which
// have no record: an accepted connection's, its listener's recorded owner;
// else the process holding the socket's inode, or its listener's, in
// /proc. A cookie not found is counted in tries.
func (t *cookieTables) owners(cookies []uint64, book *ownerBook, procOf func(sockOwner) *process) map[uint64]*process {
	found := map[uint64]*process{}
	if t.read() != nil && len(t.socks) == 0 {
		return found
	}
	want := map[uint64]*process{} // inode -> its holder
	inodes := map[uint64][]uint64{}
	for _, c := range cookies {
		s, ok := t.get(c)
		if !ok {
			if len(t.tries) >= countEntries {
				clear(t.tries)
			}
			t.tries[c]++
			continue
		}
		var try []uint64
		if s.inode != 0 {
			try = append(try, s.inode)
		}
		if s.proto == 6 && s.remote.Port() != 0 && s.netns == 0 {
			if t.index == nil {
				t.index = newSockIndex(t.socks, nil)
			}
			if l, ok := t.index.listener(flow{s.proto, s.local, s.remote}); ok {
				if o, ok := book.openOwner(l.cookie, l.inode); ok {
					found[c] = procOf(o)
					continue
				}
				if l.inode != 0 {
					try = append(try, l.inode)
				}
			}
		}
		for _, ino := range try {
			want[ino] = nil
		}
		inodes[c] = try
	}
	if len(want) > 0 && t.find != nil {
		t.find.find(want)
	}
	for c, try := range inodes {
		for _, ino := range try {
			if p := want[ino]; p != nil {
				found[c] = p
				break
			}
		}
		if found[c] == nil {
			t.tries[c]++
		}
	}
	return found
}

// alsoRead has this report's read of the tables take in those of the
// namespace with this cookie too, if it is another than netuse's and one
// looked into (guests).
func (k *kernelSource) alsoRead(netns uint64) {
	if netns == k.own {
		return
	}
	if diag, ino := k.guests.tablesOf(netns); diag != nil {
		k.tables.others[ino] = diag
	}
}

// givenUp reports whether the owner of the socket with cookie c was
// looked for ownerTries times.
func (t *cookieTables) givenUp(c uint64) bool { return t.tries[c] >= ownerTries }

// findOwners looks for the owners of this report's sockets that have
// neither a record nor an owner found before, in one read of the tables.
func (k *kernelSource) findOwners() {
	var missing []uint64
	var seen map[uint64]bool // of the unknown only, not a map of every socket a report
	for _, d := range k.reported {
		if _, ok := k.known(d.Cookie); ok || seen[d.Cookie] {
			continue
		}
		if d.kind.kernels() {
			// The kernel's own (ND, MLD): "(no socket)", with what no
			// socket moved; a guest namespace's count from the host's
			// side (reportKernel).
			k.keep(d.Cookie, k.nobody[noSocket])
			continue
		}
		if !d.kind.inTables() {
			// No table has it: a read of them (each the kernel's whole
			// socket hash) would not find it.
			k.keep(d.Cookie, k.nobody[noOwner])
			continue
		}
		if seen == nil {
			seen = map[uint64]bool{}
		}
		seen[d.Cookie] = true
		missing = append(missing, d.Cookie)
		k.alsoRead(d.netns)
	}
	if len(missing) == 0 {
		return
	}
	found := k.tables.owners(missing, k.book, k.procOf)
	for _, c := range missing {
		if p := found[c]; p != nil {
			k.keep(c, p)
			delete(k.tables.tries, c)
		} else if k.tables.givenUp(c) {
			k.keep(c, k.nobody[noOwner])
			delete(k.tables.tries, c)
		}
	}
}

// kernelConns makes conn's rows from the kernel's counts: one a
// connection end, its endpoints and TCP state as the tables say (an
// unconnected UDP socket's remote end is the zero address, as ss(8) shows
// it: the kernel counts a socket, not each peer it sent to), a closed
// one's as it had them when it closed. A connection's first and last
// times are the reports that first and last saw it move bytes. Sockets of
// one process with the same endpoints (SO_REUSEPORT's, a port reused, or
// none known: the kernel's own) make one row, as one flow of the capture
// does, so that a row's total is what that row was credited over the run.
type kernelConns struct {
	socks  map[uint64]*kernelConn // by cookie: the sockets seen that have not closed
	totals map[connKey]*connTotal // each row's, while a socket of it is open
	rows   []usage                // this report's
	at     map[connKey]int        // this report's row of each
}

type kernelConn struct {
	info connInfo
	key  connKey // the row it was last credited to; p nil: none yet
}

// connKey is a row of conn: its process (or reason) and endpoints.
type connKey struct {
	p  *process
	fl flow
}

// connTotal is a row's total since the start, and its open sockets: it
// goes with the last of them. A reason's row of no endpoints (what no
// socket moved, the kernel's own sockets) stays.
type connTotal struct {
	t     traffic
	socks int
}

func newKernelConns() *kernelConns {
	return &kernelConns{socks: map[uint64]*kernelConn{}, totals: map[connKey]*connTotal{}, at: map[connKey]int{}}
}

// add credits t, what d's socket moved on one interface, to its row.
func (c *kernelConns) add(d countDelta, p *process, t traffic, tables *cookieTables, book *ownerBook, now int64) {
	kc := c.socks[d.Cookie]
	if kc == nil {
		if len(c.socks) >= countEntries {
			// sockets whose close went unrecorded
			clear(c.socks)
			for k, ct := range c.totals {
				if ct.socks > 0 {
					delete(c.totals, k)
				}
			}
		}
		kc = &kernelConn{info: connInfo{first: now}}
		c.socks[d.Cookie] = kc
	}
	if s, ok := tables.get(d.Cookie); ok {
		kc.info.flow = flow{s.proto, s.local, s.remote}
		if s.proto == 6 {
			kc.info.state = s.state
		}
	} else {
		// Not in the tables read: closed, if its closer's record or its
		// last read says so (a namespace whose tables could not be read
		// keeps its state as last seen). Its endpoints as a report saw
		// them, else as the record has them (a socket in TIME_WAIT before
		// its file closed has given its port back: the record's local
		// port is 0).
		g, gone := book.goneOwner(d.Cookie)
		if gone && g.at.local.IsValid() && !kc.info.local.IsValid() {
			kc.info.flow = g.at
		}
		if kc.info.proto == 6 && (gone || d.closed) {
			kc.info.state = tcpClosed
		}
	}
	if t == (traffic{}) {
		return // a closed socket's last read, with nothing since the one before
	}
	kc.info.last = now
	if key := (connKey{p, kc.info.flow}); kc.key != key {
		if kc.key.p != nil {
			c.unref(kc.key)
		}
		c.totalOf(key).socks++
		kc.key = key
	}
	c.credit(kc.key, t, kc.info)
}

func (c *kernelConns) totalOf(key connKey) *connTotal {
	ct := c.totals[key]
	if ct == nil {
		ct = &connTotal{}
		c.totals[key] = ct
	}
	return ct
}

// unref lets key's total go with its last open socket.
func (c *kernelConns) unref(key connKey) {
	if ct := c.totals[key]; ct != nil {
		if ct.socks--; ct.socks <= 0 && (key.p.pid != 0 || key.fl != flow{}) {
			delete(c.totals, key)
		}
	}
}

// credit adds t to key's row, which shows info (the last socket's, when
// several make it).
func (c *kernelConns) credit(key connKey, t traffic, info connInfo) {
	ct := c.totalOf(key)
	ct.t.add(t)
	total := ct.t
	if i, ok := c.at[key]; ok {
		r := &c.rows[i]
		r.interval.add(t)
		r.total = total
		info.first = min(info.first, r.conn.first)
		*r.conn = info
		return
	}
	c.at[key] = len(c.rows)
	c.rows = append(c.rows, usage{name: key.p.name, interval: t, total: total, proc: key.p, conn: &info})
}

// report appends this report's rows to conns, with what no socket moved
// in the row of "(no socket)", and forgets the sockets that closed.
func (c *kernelConns) report(conns []usage, deltas []countDelta, nobody *process, residual traffic) []usage {
	if residual != (traffic{}) {
		c.credit(connKey{p: nobody}, residual, connInfo{})
	}
	conns = append(conns, c.rows...)
	for _, d := range deltas {
		if kc := c.socks[d.Cookie]; d.closed && kc != nil {
			if kc.key.p != nil {
				c.unref(kc.key)
			}
			delete(c.socks, d.Cookie)
		}
	}
	c.rows = c.rows[:0]
	clear(c.at)
	return conns
}

// wallNow is the time of a conn row's first and last, Unix ns.
func wallNow() int64 { return time.Now().UnixNano() }

// known returns the owner of the socket with this cookie: one found
// before, else from the kernel's records (the open socket's creator, the
// closed one's closer), else "(no owner)" if findOwners gave up on it;
// false if none of these knows it.
func (k *kernelSource) known(cookie uint64) (*process, bool) {
	p, ok := k.owners[cookie]
	if ok && p.pid != 0 {
		return p, true
	}
	if o, found := k.book.openOwner(cookie, 0); found {
		return k.keep(cookie, k.procOf(o)), true
	}
	if g, found := k.book.goneOwner(cookie); found {
		return k.keep(cookie, k.procOf(g.sockOwner)), true
	}
	return p, ok
}

// keep remembers p as the owner of the open socket with this cookie.
func (k *kernelSource) keep(cookie uint64, p *process) *process {
	// As many as the counting map holds: a smaller bound (the book's)
	// would be cleared at every report by more live sockets than it, all
	// looked for again in the tables and /proc.
	if len(k.owners) >= countEntries {
		clear(k.owners) // sockets whose close went unrecorded: look again
	}
	k.owners[cookie] = p
	return p
}
