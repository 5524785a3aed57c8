// Placeholders for names (resolve.go) and containerOf (container.go), which
// are being written on branches of their own; removed when they merge.
package main

import (
	"context"
	"net/netip"
	"path"
	"time"
)

type names struct{}

func newNames(lookup func(ctx context.Context, addr string) ([]string, error), timeout time.Duration, size int) *names {
	return &names{}
}
func (n *names) name(a netip.Addr) string { return "" }
func (n *names) close()                   {}
func systemLookup(ctx context.Context, addr string) ([]string, error) {
	return nil, nil
}
func containerOf(c string) string {
	if c == "/" || c == "" {
		return ""
	}
	return path.Base(c)
}
