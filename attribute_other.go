//go:build !linux

package main

// readSockets reads the kernel's socket table: Linux only.
func readSockets() ([]socket, error) { return nil, errNotLinux }

// procfs finds socket owners: Linux only.
type procfs struct{}

func newProcfs() *procfs                             { return &procfs{} }
func (p *procfs) find(want map[uint64]*process) bool { return false }
