package main

import (
	"context"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"sync"

	psnet "github.com/shirou/gopsutil/v3/net"
)

// readCounters reads every interface's counters from the operating system.
func readCounters() ([]counter, error) {
	stats, err := psnet.IOCounters(true)
	if err != nil {
		return nil, fmt.Errorf("read interface counters: %w", err)
	}
	ls := linkFlags()
	cs := make([]counter, 0, len(stats))
	for _, s := range stats {
		l := ls[s.Name]
		cs = append(cs, counter{
			name:     s.Name,
			index:    l.index,
			loopback: l.loopback || s.Name == "lo",
			virtual:  isVirtual(s.Name),
			down:     l.down,
			traffic: traffic{
				rxBytes: s.BytesRecv, txBytes: s.BytesSent,
				rxPackets: s.PacketsRecv, txPackets: s.PacketsSent,
			},
			rxErrors: s.Errin, txErrors: s.Errout,
			rxDrops: s.Dropin, txDrops: s.Dropout,
		})
	}
	return cs, nil
}

// linkInfo is what readCounters takes of an interface besides its counters.
type linkInfo struct {
	index          int
	loopback, down bool
}

// links holds the interfaces' links as last listed, listed again when
// the interfaces changed (ifaceWatch), not at every read.
var links struct {
	sync.Mutex
	seen uint64
	by   map[string]linkInfo
}

// linkFlags returns every interface's index and flags by name; an
// interface it cannot list is left out (its counters still count).
func linkFlags() map[string]linkInfo {
	links.Lock()
	defer links.Unlock()
	if !watchedIfaces().changed(&links.seen) && links.by != nil {
		return links.by
	}
	by := map[string]linkInfo{}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			by[i.Name] = linkInfo{index: i.Index, loopback: i.Flags&net.FlagLoopback != 0,
				down: i.Flags&net.FlagUp == 0 || i.Flags&net.FlagRunning == 0}
		}
	} else {
		links.seen = 0 // list again next time
	}
	links.by = by
	return by
}

// delta is what a counter moved from prev to cur. A counter that went down
// was reset (interface recreated, driver reset): all of cur is new traffic.
func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// sampler turns cumulative counters into per-interval usage.
type sampler struct {
	counters func() ([]counter, error)
	last     map[string]counter // previous read, by interface name
	totals   map[string]traffic // since start, by interface name
	cur      []counter          // the latest read, kept for its flags
	// fromZero counts an interface that appears after the first read
	// from zero, as its counters do (serve: all of it is traffic since
	// serve started), instead of taking its first read for a baseline
	fromZero bool
	read     bool // the first read is done
}

func newSampler(counters func() ([]counter, error)) *sampler {
	return &sampler{counters: counters, last: map[string]counter{}, totals: map[string]traffic{}}
}

// sample reads the counters and returns the usage of every interface since
// the previous read, sorted by name. An interface seen for the first time
// gets its baseline and is left out; one that vanished is forgotten.
func (s *sampler) sample() ([]usage, error) {
	cs, err := s.counters()
	if err != nil {
		return nil, err
	}
	us := make([]usage, 0, len(cs))
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		seen[c.name] = true
		p, ok := s.last[c.name]
		s.last[c.name] = c
		switch {
		case s.fromZero && s.read && (!ok || p.index != c.index):
			// New since the first read, or deleted and made again
			// since the last (another index): from zero.
			p = counter{name: c.name, index: c.index}
		case !ok:
			continue
		}
		u := usage{
			name: c.name,
			interval: traffic{
				rxBytes:   delta(p.rxBytes, c.rxBytes),
				txBytes:   delta(p.txBytes, c.txBytes),
				rxPackets: delta(p.rxPackets, c.rxPackets),
				txPackets: delta(p.txPackets, c.txPackets),
			},
			rxErrors: delta(p.rxErrors, c.rxErrors),
			txErrors: delta(p.txErrors, c.txErrors),
			rxDrops:  delta(p.rxDrops, c.rxDrops),
			txDrops:  delta(p.txDrops, c.txDrops),
			down:     c.down,
		}
		t := s.totals[c.name]
		t.add(u.interval)
		s.totals[c.name] = t
		u.total = t
		us = append(us, u)
	}
	for name := range s.last {
		if !seen[name] {
			delete(s.last, name)
		}
	}
	s.cur = cs
	s.read = true
	slices.SortFunc(us, func(a, b usage) int { return strings.Compare(a.name, b.name) })
	return us, nil
}

// selector decides which interfaces a view reads.
type selector struct {
	globs []string // --iface; none means the mode's default rule
	edge  bool     // with no globs: only the machine's edge interfaces (total)
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// pick returns the names of the interfaces in cs that the selector takes.
//
// The edge rule keeps traffic from being counted twice on its way through
// a bridge, a veth or a tunnel: it takes every interface that is neither
// loopback nor virtual, and where that leaves none (inside a container,
// where every interface is a veth) every interface but loopback.
func (sel selector) pick(cs []counter) []string {
	var names []string
	switch {
	case len(sel.globs) > 0:
		for _, c := range cs {
			if matchAny(sel.globs, c.name) {
				names = append(names, c.name)
			}
		}
	case sel.edge:
		for _, c := range cs {
			if !c.loopback && !c.virtual {
				names = append(names, c.name)
			}
		}
		if len(names) == 0 {
			for _, c := range cs {
				if !c.loopback {
					names = append(names, c.name)
				}
			}
		}
	default:
		for _, c := range cs {
			names = append(names, c.name)
		}
	}
	slices.Sort(names)
	return names
}

// checkGlobs fails when a glob of --iface matches none of the interfaces
// named, and lists those there are.
func checkGlobs(globs, names []string) error {
	for _, g := range globs {
		if !slices.ContainsFunc(names, func(n string) bool { return matchAny([]string{g}, n) }) {
			names = slices.Sorted(slices.Values(names))
			return fmt.Errorf("--iface %q matches no interface; there are: %s", g, strings.Join(names, ", "))
		}
	}
	return nil
}

// runSampler runs the total and iface modes.
func runSampler(ctx context.Context, clk clock, m mode, o options, s *sampler, r *renderer) error {
	if _, err := s.sample(); err != nil {
		return err
	}
	if err := checkGlobs(o.globs, selector{}.pick(s.cur)); err != nil {
		return err
	}
	sel := selector{globs: o.globs, edge: m == modeTotal}
	defer r.close()
	var acc traffic // total mode: the machine's traffic since start
	start := clk.now()
	last := start
	var picked []string
	if err := r.waiting(m, start.Add(o.interval)); err != nil {
		return err
	}
	seqs, err := schedule(ctx, clk, o, func(seq int, partial bool) error {
		us, err := s.sample()
		if err != nil {
			return err
		}
		now := clk.now()
		f := report{mode: m, seq: seq, at: now, elapsed: now.Sub(last), interval: o.interval, partial: partial}
		last = now
		picked = sel.pick(s.cur)
		us = slices.DeleteFunc(us, func(u usage) bool { _, ok := slices.BinarySearch(picked, u.name); return !ok })
		if m == modeTotal {
			f.rows = []usage{sumUsage(us, &acc)}
			f.ifaces = picked
		} else {
			f.rows = us
		}
		return r.render(f, o)
	})
	if err != nil {
		return err
	}
	return r.writeSummary(m, start, clk.now(), seqs, picked, o)
}

// sumUsage adds up the interfaces' usage into one row and adds its interval
// traffic to acc, the running total since start.
func sumUsage(us []usage, acc *traffic) usage {
	sum := usage{name: "total"}
	for _, u := range us {
		sum.interval.add(u.interval)
		sum.rxErrors += u.rxErrors
		sum.txErrors += u.txErrors
		sum.rxDrops += u.rxDrops
		sum.txDrops += u.txDrops
	}
	acc.add(sum.interval)
	sum.total = *acc
	return sum
}
