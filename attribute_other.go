//go:build !linux

package main

import "net/netip"

// nsTables reads the kernel's socket tables: Linux only.
type nsTables struct{}

func newNSTables(func(string)) *nsTables                       { return &nsTables{} }
func (t *nsTables) read() ([]socket, error)                    { return nil, errNotLinux }
func (t *nsTables) isLocal(netns uint64, addr netip.Addr) bool { return true }
func (t *nsTables) isOurs(addr netip.Addr) bool                { return true }
func (t *nsTables) ownAddr(netns uint64, addr netip.Addr) bool { return false }
func (t *nsTables) netnsByCookie(cookie uint64) uint64         { return 0 }
func (t *nsTables) rescan() bool                               { return false }
func (t *nsTables) find(flow) (socket, bool)                   { return socket{}, false }
func (t *nsTables) close()                                     {}

// newLookup finds the kernel's socket of one flow: Linux only.
func newLookup() socketLookup { return noLookup{} }

type noLookup struct{}

func (noLookup) lookup(flow) (socket, bool) { return socket{}, false }
func (noLookup) close()                     {}

// procfs finds socket owners: Linux only.
type procfs struct{}

func newProcfs(reg *registry, recent bool) *procfs   { return &procfs{} }
func newFinder(reg *registry, recent bool) owners    { return newProcfs(reg, recent) }
func (p *procfs) find(want map[uint64]*process) bool { return false }
func (p *procfs) close()                             {}

// readConntrack reads the NAT translations: Linux only.
func readConntrack() ([]natEntry, error) { return nil, errNotLinux }

// readableUsers tells whose processes netuse may read: Linux only.
func readableUsers() func(uid uint32) bool { return nil }

// netnsNames names network namespaces: Linux only.
type netnsNames struct{}

func newNetnsNames(string) *netnsNames { return &netnsNames{} }
func (*netnsNames) name(uint64) string { return "" }
