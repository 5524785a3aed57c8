//go:build !linux

package main

// isVirtual reports whether the interface has no device below it. Only Linux
// tells, so elsewhere every interface but loopback counts as the edge.
func isVirtual(name string) bool { return false }
