//go:build !linux

package main

import "time"

// lockState takes no lock on this platform: runs of one --state file must
// not overlap (the README says so).
func lockState(path string, wait time.Duration) (unlock func(), err error) {
	return func() {}, nil
}

// bootID is not known on this platform: a reboot shows as counters that
// went down (delta), as a reset does.
func bootID() string { return "" }

// uptime is not known on this platform.
func uptime() (time.Duration, bool) { return 0, false }
