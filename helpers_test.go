package main

// The tests' shared rules, said once: when a test that cannot run here
// skips and when it fails (privSkip; shortSkip under -short), how close
// a count must come to the kernel's (near), and how a test runs this test
// binary again as a child process (childArgv, runTestChild).
// helpers_linux_test.go holds the namespace harness.

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// privSkip skips a test that cannot run on this machine (it needs root, or
// a program that is not installed, or a git checkout), except under CI (the
// environment variable CI set), where every test must run: there a skip
// would hide that none did, so the test fails instead. why says what is
// missing and, where it helps, how to get it.
func privSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, and CI is set: every test must run there", why)
	}
	t.Skip(why)
}

// shortSkip skips, under -short, a test that builds the binary, needs
// root or runs another program: -short runs in seconds, without
// privileges, whether CI is set or not. why says what it would do.
func shortSkip(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: " + why)
	}
}

// needRoot skips a privileged test outside CI and fails it inside.
func needRoot(t testing.TB) {
	t.Helper()
	shortSkip(t, "privileged")
	if os.Geteuid() != 0 {
		privSkip(t, "needs root")
	}
	needTool(t, "ip", "ip(8) from iproute2")
}

// needTool returns the path of a program that a test runs, or skips the
// test outside CI and fails it inside; what names the program and where
// it comes from.
func needTool(t testing.TB, name, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		privSkip(t, "needs "+what)
	}
	return path
}

// near checks that got, netuse's count, is from lo to hi times want, the
// kernel's count of the same bytes (0.99 and 1.01: within 1%), logs both
// either way, and reports whether it is: the one tolerance of the tests.
func near(t testing.TB, what string, got, want uint64, lo, hi float64) bool {
	t.Helper()
	ratio := float64(got) / float64(want)
	msg := fmt.Sprintf("%s: netuse counted %d, the kernel %d (%.3f%%; want %.1f%% to %.1f%%)", what, got, want, 100*ratio, 100*lo, 100*hi)
	if want == 0 || ratio < lo || ratio > hi {
		t.Error(msg)
		return false
	}
	t.Log(msg)
	return true
}

// A test runs this test binary again as a child process, to move traffic
// under a process name of its own, to run netuse in a namespace with a
// clock of the test's, or to resolve names in a namespace: childArgv is
// its command line, and TestMain runs the child (runTestChild) before any
// test, so that a child is never a Test function.
//
// A child is named by the word after "--"; testChildren (one map per
// platform) holds them.

// childArgv is the command line of this test binary run as the child
// name, with args.
func childArgv(name string, args ...string) []string {
	return append([]string{os.Args[0], "-test.run=^$", "--", name}, args...)
}

// runTestChild runs the child that os.Args names, if it names one, and
// returns its exit status and true; false if this is no child.
func runTestChild() (int, bool) {
	i := slices.Index(os.Args, "--")
	if i < 0 {
		return 0, false
	}
	args := os.Args[i+1:]
	if len(args) > 0 {
		if child, ok := testChildren[args[0]]; ok {
			return child(args[1:]), true
		}
	}
	return 0, false
}
