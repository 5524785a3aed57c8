package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestNetnsNames names a namespace the test makes with ip netns add, by
// the inode number a process inside it sees as its own; a namespace with
// no name (the host's) has none.
func TestNetnsNames(t *testing.T) {
	n := newTestNet(t)
	out, err := exec.Command("ip", "netns", "exec", n.a, "readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	ino, ok := netnsOf("/proc/self/ns/net")
	if !ok {
		t.Fatal("no namespace of our own")
	}
	var their uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "net:[%d]", &their); err != nil {
		t.Fatalf("readlink said %q: %v", out, err)
	}
	names := newNetnsNames("/run/netns")
	if got := names.name(their); got != n.a {
		t.Errorf("name of %d: %q; want %q", their, got, n.a)
	}
	if got := names.name(ino); got != "" {
		t.Errorf("the test's own namespace %d is named %q; want none", ino, got)
	}
}
