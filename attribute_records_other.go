//go:build !linux

package main

import "errors"

// errNoBPF is the reason owners are not recorded by the kernel here.
var errNoBPF = errors.New("socket owners can be recorded in the kernel on Linux only")

// ownerRecords records socket owners in the kernel: Linux only.
type ownerRecords struct {
	book  *ownerBook
	procs interface{ process(sockOwner) *process }
}

func startOwnerRecords(reg *registry, tables socketTables) (*ownerRecords, error) {
	return nil, errNoBPF
}
func (o *ownerRecords) close() {}

// liveName reads a process's name now: Linux only.
func liveName(p *process) (string, bool) { return "", false }
