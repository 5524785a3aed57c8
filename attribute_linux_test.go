package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProc builds a /proc of its own in a temporary directory.
type fakeProc struct {
	t    *testing.T
	root string
}

// add writes a process: its stat (with start time), comm, cmdline, status
// (with uid), and fd links to the given socket inodes and to /dev/null.
func (f fakeProc) add(pid int, start uint64, comm string, uid int, cmdline []string, inodes ...uint64) {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	os.RemoveAll(dir)
	must := func(err error) {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
	// Fields 3 to 21 are placeholders; 22 is the start time.
	stat := fmt.Sprintf("%d (%s) S %s %d 0 0 0\n", pid, comm, strings.TrimSpace(strings.Repeat("1 ", 18)), start)
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	must(os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(cmdline, "\x00")+"\x00"), 0o644))
	status := fmt.Sprintf("Name:\t%s\nTgid:\t%d\nUid:\t%d\t%d\t%d\t%d\n", comm, pid, uid+1, uid, uid, uid)
	must(os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644))
	must(os.Symlink("/dev/null", filepath.Join(dir, "fd", "0")))
	for i, ino := range inodes {
		must(os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", fmt.Sprint(3+i))))
	}
}

// thread adds thread tid of process pid: /proc/<tid> answers for it, with
// the process's descriptors, though /proc does not list it.
func (f fakeProc) thread(tid, pid int) {
	dir := filepath.Join(f.root, fmt.Sprint(tid))
	os.MkdirAll(dir, 0o755)
	if err := os.Symlink(filepath.Join(f.root, fmt.Sprint(pid), "fd"), filepath.Join(dir, "fd")); err != nil {
		f.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "status"), []byte(fmt.Sprintf("Name:\tworker\nTgid:\t%d\n", pid)), 0o644)
}

// lastPid sets the pid the kernel gave out last.
func (f fakeProc) lastPid(pid int) {
	os.WriteFile(filepath.Join(f.root, "loadavg"), []byte(fmt.Sprintf("0.00 0.01 0.05 1/99 %d\n", pid)), 0o644)
}

// TestProcfsQuick checks the finder of connections just opened: it looks
// at the newest pids only, maps threads to their process, and names the
// sole newcomer of a user.
func TestProcfsQuick(t *testing.T) {
	f := fakeProc{t, t.TempDir()}
	uid := os.Getuid() // the owner of the fake /proc/<pid> directories
	f.add(100, 1000, "old", 0, []string{"old"}, 1001)
	f.add(500, 5000, "curl", 0, []string{"curl", "http://192.0.2.2/"}, 5001)
	f.thread(501, 500)
	f.lastPid(501)
	p := newProcfs(newRegistry(), true)
	p.root, p.self = f.root, -1
	p.ticks = func() uint64 { return 6100 } // 1 s after wget started
	anywhere := func(uint64) bool { return true }

	want := map[uint64]*process{5001: nil, 1001: nil}
	p.find(want)
	if c := want[5001]; c == nil || c.pid != 500 || c.name != "curl" {
		t.Errorf("inode 5001, held by pid 500 whose thread 501 is the newest id: %+v, want pid 500 curl", c)
	}
	if want[1001] != nil {
		t.Errorf("inode 1001 of an old process found by the quick finder: %+v", want[1001])
	}

	// One new process of the user, without the socket (closed already).
	f.add(600, 6000, "wget", 0, []string{"wget"})
	f.lastPid(600)
	p.find(map[uint64]*process{9999: nil})
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g == nil || g.pid != 600 || g.name != "wget" {
		t.Errorf("sole newcomer of uid %d: %+v, want pid 600 wget", uid, g)
	}
	if g := p.soleNewcomer(uint32(uid)+1, false, anywhere); g != nil {
		t.Errorf("sole newcomer of another uid: %+v, want none", g)
	}
	if g := p.soleNewcomer(uint32(uid), false, func(uint64) bool { return false }); g != nil {
		t.Errorf("sole newcomer in a namespace that does not have the address: %+v, want none", g)
	}
	p.ticks = func() uint64 { return 6000 + newcomerAge + 1 }
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g != nil {
		t.Errorf("sole newcomer that started more than %d ticks before: %+v, want none", newcomerAge, g)
	}
	p.ticks = func() uint64 { return 7100 }

	// Two new processes: no guess.
	f.add(700, 7000, "a", 0, []string{"a"})
	f.add(701, 7001, "b", 0, []string{"b"})
	f.lastPid(701)
	p.find(map[uint64]*process{9999: nil})
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g != nil {
		t.Errorf("two newcomers, and a guess: %+v", g)
	}

	// A program the exec watch heard of, gone before any look: the guess
	// when no look saw a newcomer. Not when a look saw it, nor when it
	// does not fit.
	p.find(map[uint64]*process{9999: nil}) // no newcomers now
	p.ticks = func() uint64 { return 8100 }
	p.execHist = []execEvent{{at: epoch, pid: 800, uid: uint32(uid), netns: 7, stat: []byte("800 (curl) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 8000 0 0 0\n")}}
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g == nil || g.pid != 800 || g.name != "curl" || g.netns != 7 {
		t.Errorf("sole exited program: %+v, want pid 800 curl in netns 7", g)
	}
	p.execHist = append(p.execHist, execEvent{at: epoch, pid: 801, uid: uint32(uid), stat: []byte("801 (curl) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 8001 0 0 0\n")})
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g == nil || g.pid != 801 || g.start != 8001 {
		t.Errorf("two exited programs, one of them known now: %+v, want the other, pid 801", g)
	}
	p.execHist = append(p.execHist, execEvent{at: epoch, pid: 802, uid: uint32(uid), stat: []byte("802 (curl) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 8002 0 0 0\n")},
		execEvent{at: epoch, pid: 803, uid: uint32(uid), stat: []byte("803 (curl) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 8003 0 0 0\n")})
	if g := p.soleNewcomer(uint32(uid), false, anywhere); g != nil {
		t.Errorf("two exited programs no look saw: %+v, want no guess", g)
	}
	if g := p.soleNewcomer(uint32(uid)+1, false, anywhere); g != nil {
		t.Errorf("exited programs of another user: %+v, want no guess", g)
	}
	p.execHist = p.execHist[:0]

	// Processes keep starting, each with a socket: the quick finder, which
	// never scans all of /proc, must not keep them all.
	for pid := 1000; pid < 1400; pid++ {
		f.add(pid, uint64(pid), "job", 0, []string{"job"}, uint64(pid)*10)
		f.lastPid(pid)
		p.find(map[uint64]*process{uint64(pid) * 10: nil})
	}
	if len(p.procs) > 4*recentPids+1 || len(p.byInode) > 4*recentPids+1 {
		t.Errorf("after 400 processes the quick finder keeps %d processes and %d inodes, want at most %d", len(p.procs), len(p.byInode), 4*recentPids+1)
	}
}

func TestProcfsFind(t *testing.T) {
	f := fakeProc{t, t.TempDir()}
	f.add(100, 5000, "curl", 0, []string{"curl", "-s", "http://192.0.2.1/"}, 111, 112)
	f.add(200, 6000, "my (odd) prog", 0, []string{"./odd"}, 211)
	f.add(300, 7000, "sleep", 0, []string{"sleep", "100"})
	now := epoch
	p := newProcfs(newRegistry(), false)
	p.root, p.self, p.now = f.root, -1, func() time.Time { return now }

	want := map[uint64]*process{111: nil, 211: nil, 999: nil}
	p.find(want)
	curl, odd := want[111], want[211]
	if curl == nil || curl.pid != 100 || curl.start != 5000 || curl.name != "curl" || curl.cmdline != "curl -s http://192.0.2.1/" || curl.user != "root" {
		t.Errorf("inode 111: %+v, want pid 100 start 5000 curl, user root (the effective uid 0), its command line", curl)
	}
	if odd == nil || odd.pid != 200 || odd.start != 6000 || odd.name != "my (odd) prog" {
		t.Errorf("inode 211: %+v, want pid 200 start 6000, its name with parentheses", odd)
	}
	if want[999] != nil {
		t.Errorf("inode 999 held by nobody: got %+v", want[999])
	}

	// A process that started since the last scan is found at once, without
	// waiting for a full scan.
	p.lastFull = now
	f.add(400, 8000, "wget", 0, []string{"wget"}, 411)
	want = map[uint64]*process{411: nil}
	p.find(want)
	if want[411] == nil || want[411].pid != 400 {
		t.Errorf("inode 411 of a new process: %+v, want pid 400", want[411])
	}

	// An old process's new socket waits for the next full scan.
	f.add(300, 7000, "sleep", 0, []string{"sleep", "100"}, 311)
	want = map[uint64]*process{311: nil}
	p.find(want)
	if want[311] != nil {
		t.Errorf("inode 311 found before the full scan was due: %+v", want[311])
	}
	now = now.Add(p.fullGap)
	p.find(want)
	if want[311] == nil || want[311].pid != 300 {
		t.Errorf("inode 311 after a full scan: %+v, want pid 300", want[311])
	}

	// pid 100 exits and the pid is reused by another process: a new
	// process, not the old one.
	f.add(100, 9000, "nc", 0, []string{"nc", "-l"}, 113)
	now = now.Add(p.fullGap)
	want = map[uint64]*process{113: nil}
	p.find(want)
	if nc := want[113]; nc == nil || nc == curl || nc.pid != 100 || nc.start != 9000 || nc.name != "nc" {
		t.Errorf("inode 113 of the reused pid 100: %+v, want a new process started at 9000", nc)
	}
	// The full scan forgot the exited process's sockets.
	want = map[uint64]*process{111: nil}
	p.find(want)
	if want[111] != nil {
		t.Errorf("inode 111 of the exited curl is still cached: %+v", want[111])
	}
	if curl.name != "curl" {
		t.Errorf("the exited process changed: %+v", curl)
	}
}

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		stat string
		want uint64 // 0: an error
	}{
		{"1 (systemd) S 0 1 1 0 -1 4194560 46343 2184432 106 1233 70 113 3393 1406 20 0 1 0 12 23592960 3224", 12},
		{"42 (a) b) c) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 98765},
		{"42 (x) R 1 2 3", 0},
		{"no parenthesis", 0},
		{"", 0},
	}
	for _, tt := range tests {
		got, ok := parseStartTime([]byte(tt.stat))
		if (tt.want == 0) == ok || got != tt.want {
			t.Errorf("parseStartTime(%q) = %d, %v; want %d", tt.stat, got, ok, tt.want)
		}
	}
}

func TestSocketInode(t *testing.T) {
	tests := []struct {
		link string
		want uint64 // 0: not a socket
	}{
		{"socket:[12345]", 12345},
		{"socket:[0]", 0},
		{"socket:[]", 0},
		{"socket:[12a]", 0},
		{"pipe:[12345]", 0},
		{"/dev/null", 0},
		{"socket:[18446744073709551615]", 18446744073709551615},
	}
	for _, tt := range tests {
		got, ok := socketInode([]byte(tt.link))
		if got != tt.want || ok != (tt.want != 0 || tt.link == "socket:[0]") {
			t.Errorf("socketInode(%q) = %d, %v; want %d", tt.link, got, ok, tt.want)
		}
	}
}

func TestParseConntrack(t *testing.T) {
	in := "ipv4     2 tcp      6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.10 sport=50000 dport=8080 src=172.17.0.2 dst=203.0.113.7 sport=80 dport=50000 [ASSURED] mark=0 zone=0 use=2\n" +
		"ipv4     2 udp      17 25 src=172.17.0.2 dst=198.51.100.53 sport=5353 dport=53 [UNREPLIED] src=198.51.100.53 dst=192.0.2.10 sport=53 dport=61000 mark=0 zone=0 use=2\n" +
		"ipv6     10 tcp      6 119 TIME_WAIT src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0002 sport=1 dport=2 src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=2 dport=1 [ASSURED] mark=0 zone=0 use=2\n" +
		"ipv4     2 icmp     1 29 src=192.0.2.10 dst=198.51.100.1 type=8 code=0 id=7 src=198.51.100.1 dst=192.0.2.10 type=0 code=0 id=7 mark=0 use=2\n" +
		"garbage\n"
	got := parseConntrack([]byte(in))
	want := []natEntry{
		{6, netip.MustParseAddrPort("203.0.113.7:50000"), netip.MustParseAddrPort("192.0.2.10:8080"),
			netip.MustParseAddrPort("172.17.0.2:80"), netip.MustParseAddrPort("203.0.113.7:50000")},
		{17, netip.MustParseAddrPort("172.17.0.2:5353"), netip.MustParseAddrPort("198.51.100.53:53"),
			netip.MustParseAddrPort("198.51.100.53:53"), netip.MustParseAddrPort("192.0.2.10:61000")},
		{6, netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2"),
			netip.MustParseAddrPort("[2001:db8::2]:2"), netip.MustParseAddrPort("[2001:db8::1]:1")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseConntrack:\n got %v\nwant %v", got, want)
	}
	for i, e := range got {
		if want := i < 2; e.natted() != want {
			t.Errorf("entry %d natted: %v, want %v (the IPv6 one is not NAT'd)", i, e.natted(), want)
		}
	}
	tr := natTranslations(got)
	if len(tr) != 4 {
		t.Errorf("natTranslations: %d flows, want 4, two for each NAT'd entry (the IPv6 one is not): %v", len(tr), tr)
	}
	dnat := tr[flow{6, netip.MustParseAddrPort("192.0.2.10:8080"), netip.MustParseAddrPort("203.0.113.7:50000")}]
	if dnat != (flow{6, netip.MustParseAddrPort("172.17.0.2:80"), netip.MustParseAddrPort("203.0.113.7:50000")}) {
		t.Errorf("the published port's host flow translates to %v", dnat)
	}
	client := tr[flow{6, netip.MustParseAddrPort("203.0.113.7:50000"), netip.MustParseAddrPort("172.17.0.2:80")}]
	if client != (flow{6, netip.MustParseAddrPort("203.0.113.7:50000"), netip.MustParseAddrPort("192.0.2.10:8080")}) {
		t.Errorf("the client's end seen on the bridge translates to %v", client)
	}
}

// TestInContainer: a process is in a container when its network
// namespace is another than the host's, pid 1's; not merely another than
// netuse's (before, with netuse in a namespace, every host process showed
// net:[...] in the CONTAINER column).
func TestInContainer(t *testing.T) {
	p := &procfs{hostNetns: 4026531840}
	for _, c := range []struct {
		netns uint64
		want  bool
	}{{4026531840, false}, {4026532305, true}, {0, false}} {
		if got := p.inContainer(c.netns); got != c.want {
			t.Errorf("inContainer(%d) with the host in %d = %v, want %v", c.netns, p.hostNetns, got, c.want)
		}
	}

	// pid 1's namespace, else kthreadd's (pid 2, no parent), else netuse's.
	for _, c := range []struct {
		name  string
		links map[string]string // path under the fake /proc -> link target
		stat2 string
		want  uint64
	}{
		{"init readable", map[string]string{"1/ns/net": "net:[1]", "2/ns/net": "net:[2]", "self/ns/net": "net:[3]"}, "2 (kthreadd) S 0 0 0", 1},
		{"init hidden", map[string]string{"2/ns/net": "net:[2]", "self/ns/net": "net:[3]"}, "2 (kthreadd) S 0 0 0", 2},
		{"pid 2 no kernel thread", map[string]string{"2/ns/net": "net:[2]", "self/ns/net": "net:[3]"}, "2 (sh) S 1 2 2", 3},
	} {
		root := t.TempDir()
		for path, target := range c.links {
			os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755)
			if err := os.Symlink(target, filepath.Join(root, path)); err != nil {
				t.Fatal(err)
			}
		}
		os.MkdirAll(filepath.Join(root, "2"), 0o755)
		os.WriteFile(filepath.Join(root, "2", "stat"), []byte(c.stat2), 0o644)
		if got := hostNetns(root); got != c.want {
			t.Errorf("%s: hostNetns = %d, want %d", c.name, got, c.want)
		}
	}
}
