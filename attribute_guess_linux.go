package main

// The guess for a connection whose socket closed before its owner was
// found: the one process that fits among those that just started
// (attribute_newcomers_linux.go notes them), read through procfs.

import (
	"os"
	"strconv"
	"time"
)

// newcomerAge is how long before a connection opens its opener may have
// started, for soleNewcomer: a curl connects within milliseconds of its
// start, and an old process is no newcomer even if the last look missed it.
const newcomerAge = 5 * ticksPerSecond

// execAge is how long an exec stays a candidate for soleNewcomer.
const execAge = time.Second

// soleExited returns, from the execs of the last execAge, the one process
// of uid (any user if anyUID) that fits and is gone without any look
// having seen it, if there is exactly one: a program that connected and
// exited between two looks.
func (p *procfs) soleExited(uid uint32, anyUID bool, fits func(netns uint64) bool) *process {
	var only *execEvent
	for i, e := range p.execHist {
		if _, seen := p.procs[e.pid]; seen || (e.uid != uid && !anyUID) || !fits(e.netns) {
			continue
		}
		if _, err := os.Stat(p.root + "/" + strconv.Itoa(e.pid)); err == nil {
			continue // alive: the look would have seen it
		}
		if only != nil {
			return nil
		}
		only = &p.execHist[i]
	}
	if only == nil {
		return nil
	}
	// Gone, so its status and namespace cannot be read: the record is
	// filled from the exec event before the registry publishes it.
	start, ok := parseStartTime(only.stat)
	if !ok {
		return nil
	}
	if old := p.procs[only.pid]; old != nil && old.start == start {
		return old
	}
	base := p.root + "/" + strconv.Itoa(only.pid)
	proc := p.reg.get(only.pid, start, func(proc *process) { p.read(proc, base, only.stat, only) })
	p.procs[only.pid] = proc
	return proc
}

// soleNewcomer returns the process of uid (of any user if anyUID) that
// the last look found for the first time, that started within newcomerAge
// and whose network namespace fits (the connection's address is one of
// that namespace's), if there was exactly one: when a connection's socket
// closed before its owner was found, that process is almost surely the
// owner.
func (p *procfs) soleNewcomer(uid uint32, anyUID bool, fits func(netns uint64) bool) *process {
	var only *newcomer
	now := p.ticks()
	for i, n := range p.newcomers {
		if (n.uid != uid && !anyUID) || now-n.start > newcomerAge || !fits(n.netns) {
			continue
		}
		if only != nil {
			return nil // two or more: no guess
		}
		only = &p.newcomers[i]
	}
	if only == nil {
		return p.soleExited(uid, anyUID, fits)
	}
	return p.process(only.pid, only.stat)
}
