package main

import "os"

// isVirtual reports whether the interface has no device below it: the
// kernel lists veths, bridges, tunnels, dummies and loopback under
// /sys/devices/virtual/net.
func isVirtual(name string) bool {
	_, err := os.Stat("/sys/devices/virtual/net/" + name)
	return err == nil
}
