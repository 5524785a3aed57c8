//go:build !linux

package main

// readSockets reads the kernel's socket table: Linux only.
func readSockets() ([]socket, error) { return nil, errNotLinux }

// newLookup finds the kernel's socket of one flow: Linux only.
func newLookup() func(flow) (socket, bool) {
	return func(flow) (socket, bool) { return socket{}, false }
}

// procfs finds socket owners: Linux only.
type procfs struct{}

func newProcfs(reg *registry, recent bool) *procfs   { return &procfs{} }
func (p *procfs) find(want map[uint64]*process) bool { return false }
