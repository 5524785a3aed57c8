package main

import (
	"sync"
	"weak"
)

// registry holds one record per process, whichever finder found it, so
// that a process is one row: it is known by its pid and start time.
//
// It holds its records weakly: a record lives while a flow, a finder's
// cache or a row refers to it, and the registry forgets it after that,
// so that a machine that runs a million short-lived processes does not
// grow netuse's memory (it used to keep every process ever seen).
type registry struct {
	mu    sync.Mutex // guards m and swept; finders of several goroutines share the registry
	m     map[procKey]weak.Pointer[process]
	swept int // len(m) after the last sweep of records gone
}

type procKey struct {
	pid   int
	start uint64
}

func newRegistry() *registry { return &registry{m: map[procKey]weak.Pointer[process]{}} }

// get returns the record of the process (pid, start), made by read, which
// reads the rest of it, the first time.
func (g *registry) get(pid int, start uint64, read func(*process)) *process {
	k := procKey{pid, start}
	g.mu.Lock()
	p := g.m[k].Value()
	g.mu.Unlock()
	if p != nil {
		return p
	}
	p = &process{pid: pid, start: start}
	read(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	if old := g.m[k].Value(); old != nil {
		return old // another finder got there first
	}
	g.m[k] = weak.Make(p)
	if len(g.m) > 2*max(g.swept, 512) {
		for k, w := range g.m {
			if w.Value() == nil {
				delete(g.m, k)
			}
		}
		g.swept = len(g.m)
	}
	return p
}
