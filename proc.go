package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Proc mode wired up. A packet's way, each step in the next file:
//
//	proc.go                       newPipeline starts the capture goroutine
//	sniff_linux.go                reads frames from the kernel's rings
//	sniff.go, sniff_decode.go     the sniffer decodes them into packet records
//	attribute_flows.go            the accountant adds each to its flow
//	attribute.go ...              the resolver finds each new flow's owner
//	attribute_flows.go            report moves flows' bytes to their owners
//	proc.go                       report fills the capture record
//	render.go                     writes the rows (its way out: render.go's top)
//
// procOS holds every access to the operating system that proc mode makes,
// so that a test replaces it whole and runs the same wiring from a capture
// file, without privileges (TestCaptureGolden).
type procOS struct {
	capture   func(globs []string) (frameSource, error)                                                                          // opens the capture on the interfaces globs pick
	records   func(reg *registry, tables socketTables) (*ownerRecords, error)                                                    // starts the kernel's owner records
	tables    func(warn func(string)) socketTables                                                                               // a new reader of the kernel's socket tables; warn says what it may not read
	lookup    func() socketLookup                                                                                                // a new finder of the kernel's socket of one flow
	owners    func(reg *registry, recent bool) owners                                                                            // a new finder of socket owners in /proc
	conntrack func() ([]natEntry, error)                                                                                         // the NAT translations of netuse's namespace
	readable  func() func(uid uint32) bool                                                                                       // whose processes netuse may read; nil: everyone's
	liveName  func(*process) (string, bool)                                                                                      // the name a process has now
	resolve   func(ctx context.Context, addr string) ([]string, error)                                                           // --resolve: the names of an address
	nsName    func(netns uint64) string                                                                                          // the name ip netns gives a namespace, "" if none; nil: none named
	kernel    func(globs []string, rec *ownerRecords, find owners, conns, packets bool, warn func(string)) (kernelCounts, error) // --source kernel: starts the counting programs (packets: and the packet senders'); warn says what it may not read
}

// kernelCounts is --source kernel's source of bytes: it captures nothing
// (a frameSource whose run waits for stop) and makes the rows each report
// from the kernel's counts (attribute_count_source_linux.go).
type kernelCounts interface {
	frameSource
	reportKernel(rows, conns []usage, totals flowTotals, final bool) ([]usage, []usage, flowTotals, error)
}

// hostProc is the procOS of the machine netuse runs on.
func hostProc() procOS {
	return procOS{
		capture:   openCapture,
		records:   startOwnerRecords,
		tables:    func(warn func(string)) socketTables { return newNSTables(warn) },
		lookup:    newLookup,
		owners:    newFinder,
		conntrack: readConntrack,
		readable:  readableUsers,
		liveName:  liveName,
		resolve:   systemLookup,
		nsName:    newNetnsNames("/run/netns").name,
		kernel:    startKernelSource,
	}
}

// runProc runs the proc or conn mode: capture, attribute, report every
// interval, the rows as the view (view.go) shows them.
func (a *app) runProc(ctx context.Context, m mode, o options, r *renderer) error {
	v := newView(m, o.by, o.filter)
	o.mode, o.conns, o.states = m, v.conns, m == modeConn
	w := newWarner(a.stderr)
	p, err := newPipeline(o, a.proc, w)
	if err != nil {
		return err
	}
	defer p.close()
	if o.resolve {
		names := makeNames(a.proc.resolve, resolveTimeout, resolveCache)
		names.warn = w.say
		names.start()
		defer names.close()
		v.resolved = names.name
	}
	defer r.close()
	start := a.clock.now()
	last := start
	if err := r.waiting(m, start.Add(o.interval)); err != nil {
		return err
	}
	matched := false // a row passed the filter
	flags := o.filter.String()
	seqs, err := schedule(ctx, a.clock, o, func(seq int, partial bool) error {
		// An interrupted interval is the last one, as is the count's.
		procs, conns, cap, err := p.report(partial || (o.count > 0 && seq == o.count))
		if err != nil {
			return err
		}
		now := a.clock.now()
		rep := report{mode: m, seq: seq, at: now, elapsed: now.Sub(last), interval: o.interval,
			rows: v.apply(seq, procs, conns), by: o.by, capture: &cap, partial: partial, filter: flags}
		matched = matched || len(rep.rows) > 0
		last = now
		return r.render(rep, o)
	})
	if err != nil {
		return err
	}
	if !matched && seqs > 0 && flags != "" {
		// NDJSON has no room for it: a pipeline would only see no rows.
		fmt.Fprintf(a.stderr, "netuse: no row matched %s in %d intervals; netuse %s without them shows what there is\n", o.filter, seqs, m)
	}
	return r.writeSummary(m, start, a.clock.now(), seqs, nil, o)
}

// The bounds of --resolve's names: a lookup that takes longer is given
// up on, and the cache holds at most resolveCache names.
const (
	resolveTimeout = 2 * time.Second
	resolveCache   = 4096
)

// pipeline is proc mode's stages joined: the capture and its sniffer, the
// accountant, the resolver and its openings, the kernel's owner records.
// newPipeline starts every goroutine it needs; close stops each, waits for
// it, and closes every file descriptor they used.
type pipeline struct {
	src      frameSource
	acc      *accountant
	res      *resolver
	rec      *ownerRecords // nil: owners are searched for in /proc only
	kern     kernelCounts  // --source kernel; nil: the capture counts
	source   string        // where owners come from: "bpf" or "proc"
	liveName func(*process) (string, bool)
	nsName   func(netns uint64) string
	reports  uint64   // reports made; process.liveRead is one of them
	closers  []func() // in the order to call them, after the goroutines ended

	done       chan struct{}  // closed by close: the resolver's goroutines end
	running    sync.WaitGroup // the resolver's loop and openings goroutines
	captureErr chan error     // the capture goroutine's error, when it ends
}

// newPipeline opens the capture and starts proc mode's goroutines.
func newPipeline(o options, sys procOS, w *warner) (*pipeline, error) {
	p := &pipeline{acc: newAccountant(), source: "proc", liveName: sys.liveName, nsName: sys.nsName, done: make(chan struct{}), captureErr: make(chan error, 1)}
	started := false
	defer func() {
		if !started {
			p.closeAll()
		}
	}()
	p.acc.max, p.acc.conns = o.maxFlows, o.conns
	reg := newRegistry()
	tables := sys.tables(w.say)
	p.closers = append(p.closers, tables.close)
	// The kernel's owner records start before the capture: frames queue in
	// the ring from the moment it opens, and a socket born before the
	// programs are attached has no record.
	var bpfErr error
	if o.owners != "proc" {
		if p.rec, bpfErr = sys.records(reg, tables); bpfErr == nil {
			p.closers = append(p.closers, p.rec.close)
			p.source = "bpf"
		} else if o.owners == "bpf" && errors.Is(bpfErr, errNoCgroup2) {
			return nil, fmt.Errorf("%s --owners bpf: %w; mount it (mount -t cgroup2 none /sys/fs/cgroup), or use --owners proc", o.mode, bpfErr)
		} else if o.owners == "bpf" {
			return nil, fmt.Errorf("%s --owners bpf: %w; run netuse as root or give it CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (see the README), or use --owners proc", o.mode, bpfErr)
		}
	}
	var err error
	switch o.source {
	case "kernel":
		if p.rec == nil && bpfErr == nil {
			return nil, fmt.Errorf("%s --source kernel: needs the kernel's owner records, which --owners proc turns off", o.mode)
		}
		if p.rec == nil {
			return nil, fmt.Errorf("%s --source kernel: needs the kernel's owner records: %w", o.mode, bpfErr)
		}
		if err := p.startKernel(o, sys, reg, w); err != nil {
			return nil, fmt.Errorf("%s --source kernel: %w", o.mode, err)
		}
	case "auto":
		// The kernel where it can count, else the capture, said once.
		if p.rec == nil {
			w.say(fmt.Sprintf("--source auto: counting from the capture: the kernel's counts need its owner records (%v)", cmp.Or[error](bpfErr, errOwnersOff)))
		} else if err := p.startKernel(o, sys, reg, w); err != nil {
			w.say(fmt.Sprintf("--source auto: counting from the capture: %v", err))
		}
	}
	if p.kern != nil {
		p.src = p.kern
	} else {
		p.src, err = sys.capture(o.globs)
	}
	if errors.Is(err, errNoCapRaw) {
		exe, _ := os.Executable()
		return nil, fmt.Errorf("%s: %w: run it with sudo, or grant it once with: sudo setcap %s+ep %s", o.mode, err, setcapCaps, exe)
	}
	if err != nil {
		return nil, err
	}
	if bpfErr != nil {
		w.say(fmt.Sprintf("%v; searching /proc for owners instead: processes that live a few milliseconds may go uncredited (--owners proc says this is meant)", bpfErr))
	}
	p.res = p.newResolver(sys, reg, tables, w)
	p.res.states = o.states
	p.start()
	started = true
	return p, nil
}

// errOwnersOff: --owners proc asked for no owner records.
var errOwnersOff = errors.New("--owners proc turns them off")

// startKernel starts the kernel's counts as p's source of bytes.
func (p *pipeline) startKernel(o options, sys procOS, reg *registry, w *warner) error {
	find := sys.owners(reg, false)
	k, err := sys.kernel(o.globs, p.rec, find, o.mode == modeConn, o.packetSenders, w.say)
	if err != nil {
		find.close()
		return err
	}
	p.kern = k
	p.closers = append(p.closers, find.close)
	return nil
}

// newResolver makes the resolver of p's accountant, from the kernel's
// records if there are any, else from /proc alone.
func (p *pipeline) newResolver(sys procOS, reg *registry, tables socketTables, w *warner) *resolver {
	look := sys.lookup()
	full := sys.owners(reg, false)
	p.closers = append(p.closers, look.close, full.close)
	res := &resolver{
		acc:       p.acc,
		sockets:   tables.read,
		find:      tables.find,
		rescan:    tables.rescan,
		isLocal:   tables.isLocal,
		conntrack: sys.conntrack,
		isOurs:    tables.isOurs,
		lookup:    look.lookup,
		ownAddr:   tables.ownAddr,
		owners:    full,
		minGap:    time.Millisecond, // passCostShare bounds it on large socket tables
		kick:      make(chan struct{}, 1),
		readable:  sys.readable(),
		warn:      func(err error) { w.say(err.Error()) },
	}
	if p.rec != nil {
		res.book, res.ofRecord = p.rec.book, p.rec.procs.process
	} else {
		// The quick finder (and its watch of every exec) serves only
		// where the kernel's records do not.
		res.quick = sys.owners(reg, true)
		p.closers = append(p.closers, res.quick.close)
	}
	return res
}

// start starts the capture goroutine, and the resolver's loop and
// openings goroutines.
func (p *pipeline) start() {
	openings := p.res.startOpenings(p.done, &p.running)
	var open func(*packet)
	if openings {
		open = p.res.opening
	}
	s := newSniffer(p.acc.add, open)
	go func() { p.captureErr <- p.src.run(s) }()
	p.running.Add(1)
	go func() {
		defer p.running.Done()
		p.res.loop(p.done)
	}()
}

// report returns the rows of the interval that ends now and the capture
// record. The final report has no later one to carry unsettled flows to:
// it resolves them first, if need be after the pass that is running. The
// others never wait for a pass, which may be reading all of /proc.
func (p *pipeline) report(final bool) (rows, conns []usage, c captured, err error) {
	select {
	case err := <-p.captureErr:
		return nil, nil, captured{}, err
	default:
	}
	if final {
		p.res.finalPass()
	} else {
		defer p.res.nudge() // for the flows this report carries
	}
	if p.res.states {
		p.res.refreshStates()
	}
	rows, conns, flows := p.acc.report(final)
	if p.kern != nil {
		if rows, conns, flows, err = p.kern.reportKernel(rows, conns, flows, final); err != nil {
			return nil, nil, captured{}, err
		}
	}
	p.liveNames(rows, final)
	var lost uint64
	if p.rec != nil {
		_, _, lost = p.rec.book.stats()
	}
	c = newCaptured(flows, p.src.stats(), p.source, lost)
	// The share credited to processes, of every row, before a view
	// filters or groups them.
	for _, u := range rows {
		if u.proc.pid != 0 {
			c.attributed += u.interval.rxBytes + u.interval.txBytes
		}
	}
	p.src.rescan() // interfaces that match from the next interval on
	return rows, conns, c, nil
}

// liveNames gives each row the name its process has now: exec and prctl
// rename a process, and the name recorded was its first. A read of
// /proc/PID/stat takes ~13 µs, 13 ms a report of 1,000 processes: a
// report reads at most liveNameBudget names, those read longest ago
// first, and every name on a final report. Up to liveNameBudget
// processes, each is read every report.
func (p *pipeline) liveNames(rows []usage, final bool) {
	p.reports++
	read := make([]*process, 0, len(rows))
	for _, u := range rows {
		if u.proc != nil && u.proc.pid > 0 {
			read = append(read, u.proc)
		}
	}
	if !final && len(read) > liveNameBudget {
		slices.SortFunc(read, func(a, b *process) int { return cmp.Compare(a.liveRead, b.liveRead) })
		read = read[:liveNameBudget]
	}
	for _, pr := range read {
		pr.liveRead = p.reports
		if name, ok := p.liveName(pr); ok {
			pr.live = name
		}
	}
	for i, u := range rows {
		if u.proc != nil && u.proc.pid > 0 && u.proc.live != "" {
			rows[i].name = u.proc.live
		}
		if p.nsName != nil && u.proc != nil && u.proc.foreign && u.proc.nsName == "" {
			u.proc.nsName = p.nsName(u.proc.netns) // cached: a miss reads /run/netns at most every netnsNamesGap
		}
	}
}

// liveNameBudget is how many processes' names a report reads again.
const liveNameBudget = 64

// close stops the capture and waits for its goroutine, then ends the
// resolver's goroutines and waits for them, then closes what they used:
// nothing is written or read after close returns.
func (p *pipeline) close() {
	p.src.stop()
	p.closeAll()
}

// closeAll ends the resolver's goroutines, waits for them, and calls the
// closers; the capture is stopped already or was never started.
func (p *pipeline) closeAll() {
	close(p.done)
	p.running.Wait()
	for _, c := range p.closers {
		c()
	}
}

// setcapCaps are the capabilities proc needs, as setcap(8) names them:
// capturing, the kernel's owner records, and /proc for sockets older than
// netuse (see the README's "Privileges").
const setcapCaps = "cap_net_raw,cap_net_admin,cap_bpf,cap_perfmon,cap_dac_read_search,cap_sys_ptrace"

// errNoCgroup2: the owner programs have no cgroup2 hierarchy to attach
// to, which no capability mends.
var errNoCgroup2 = errors.New("no cgroup2 hierarchy is mounted")

// warner writes each distinct warning once, to stderr.
type warner struct {
	mu   sync.Mutex // guards said, and writes to w
	w    io.Writer
	said map[string]bool
}

func newWarner(w io.Writer) *warner { return &warner{w: w, said: map[string]bool{}} }

func (w *warner) say(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.said[msg] {
		w.said[msg] = true
		fmt.Fprintf(w.w, "netuse: warning: %s\n", msg)
	}
}

// captured is proc mode's capture record of an interval, for render.
type captured struct {
	traffic                    // every byte of the rows: they add up to it
	ifaces   []string          // the interfaces captured on
	drops    uint64            // frames the kernel dropped for want of room in the ring
	dropsBy  map[string]uint64 // drops by interface; nil if none
	inferred uint64            // bytes credited to an inferred owner (flowState.inferred)
	// attributed counts the bytes of the rows of a process (not pid 0),
	// all of them, whatever a view shows
	attributed uint64
	flows      int    // flow ends in the table after the report
	evicted    uint64 // flow ends dropped early to keep the table under --max-flows
	// owners says where socket owners come from: "bpf", recorded by the
	// kernel as sockets are born, or "proc", searched for in /proc.
	owners string
	// ownersLost counts the kernel's owner records lost since netuse
	// started (a full ring) or dropped to keep the book bounded.
	ownersLost uint64
	// byIface holds the frames of each interface, by name, as the
	// interface's counters count them; each of ifaces has an entry.
	byIface map[string]traffic
}

// newCaptured is the one place a capture record is filled: from what the
// accountant counted, what the capture says of itself, and where owners
// came from.
func newCaptured(f flowTotals, st captureStats, owners string, ownersLost uint64) captured {
	c := captured{traffic: f.traffic, ifaces: slices.Sorted(slices.Values(st.ifaces)), drops: st.drops, dropsBy: st.dropsBy, inferred: f.inferred, flows: f.flows,
		evicted: f.evicted, owners: owners, ownersLost: ownersLost}
	// Interfaces that moved nothing have a zero entry. An index without a
	// name (an interface closed meanwhile) is named "#index".
	c.byIface = make(map[string]traffic, len(f.byIndex))
	for _, name := range st.ifaces {
		c.byIface[name] = traffic{}
	}
	for idx, t := range f.byIndex {
		name, ok := st.names[idx]
		if !ok {
			name = "#" + strconv.Itoa(idx)
		}
		c.byIface[name] = t
	}
	return c
}
