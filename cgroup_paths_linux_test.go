package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// testCgroup makes a cgroup below the root of the cgroup2 hierarchy,
// parent/child (names relative to the root), and returns the root, the
// directory's path in this mount namespace, and the cgroup's path as
// /proc/<pid>/cgroup writes it. Both directories go at cleanup, once
// their processes are gone.
func testCgroup(t *testing.T, child string) (root *os.File, dir, path string) {
	t.Helper()
	needRoot(t)
	root, err := openCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	parent := fmt.Sprintf("netuse-test-%d", os.Getpid())
	base := "/proc/self/fd/" + strconv.Itoa(int(root.Fd()))
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if p, ok := cgroup2Root(mi); ok {
		base = p // a path that other processes can use too
	}
	dir = filepath.Join(base, parent, child)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A cgroup goes once its processes are: the test's exited.
		os.Remove(dir)
		os.Remove(filepath.Join(base, parent))
	})
	return root, dir, "/" + parent + "/" + child
}

func TestCgroupPaths(t *testing.T) {
	root, dir, path := testCgroup(t, "svc.service")
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	c := newCgroupPaths(root)
	if got := c.path(st.Ino); got != path {
		t.Errorf("path(%d) = %q; want %q", st.Ino, got, path)
	}
	walked := c.walked
	if got := c.path(1 << 62); got != "" || c.walked != walked {
		t.Errorf("an unknown id: %q, walked again %v; want \"\" and no walk within walkGap", got, c.walked != walked)
	}
	if got := c.path(st.Ino); got != path {
		t.Errorf("path(%d) after a miss = %q; want %q", st.Ino, got, path)
	}
	c.close()
	c.byID = map[uint64]string{}
	c.walked = c.walked.Add(-2 * walkGap)
	if got := c.path(st.Ino); got != "" {
		t.Errorf("path after close = %q; want \"\"", got)
	}
}

// TestProcShortLivedCgroup runs one-shot UDP clients that exit at once,
// each in a cgroup named as Docker names a container's: their rows must
// carry the cgroup, from the kernel's records when the process was gone
// before netuse could read /proc, and --by container their container.
func TestProcShortLivedCgroup(t *testing.T) {
	const id = "5e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
	_, dir, path := testCgroup(t, "docker-"+id+".scope")
	n := newTestNet(t)
	server := startHelper(t, n.b, "udp-answer", "192.0.2.2:7040", "4000")
	server.expect(t, "listening")
	p := startProc(t, n.a, "--iface", "veth-a")
	// Each client moves itself into the cgroup, then enters namespace a
	// (ip netns exec execs: the pid stays the client's).
	loop := exec.Command("sh", append([]string{"-c", `for i in $(seq 30); do sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$0" "$@" & echo $!; wait $! || exit 1; done`,
		dir, n.a}, childArgv("traffic", "udp-query", "192.0.2.2:7040", "1000", "4000")...)...)
	var stderr strings.Builder
	loop.Stderr = &stderr
	out, err := loop.Output()
	if err != nil {
		t.Fatalf("client loop: %v: %s", err, stderr.String())
	}
	pids := pidsOf(out)
	p.finish(t)
	rows := map[int]bool{}
	for _, r := range p.procs {
		if !pids[r.Pid] {
			continue
		}
		rows[r.Pid] = true
		if r.Cgroup != path || r.Container != "docker:"+id[:12] {
			t.Errorf("pid %d: cgroup %q, container %q; want %q, %q", r.Pid, r.Cgroup, r.Container, path, "docker:"+id[:12])
		}
	}
	if len(rows) != len(pids) {
		t.Errorf("%d of %d clients have rows", len(rows), len(pids))
	}
}
