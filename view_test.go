package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// connRow is a conn row of process p: proto, local and remote "addr:port".
func connRow(p *process, proto uint8, local, remote string, rx, tx uint64) usage {
	return usage{name: p.name, interval: traffic{rxBytes: rx, txBytes: tx}, proc: p,
		conn: &connInfo{flow: flow{proto, netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)}}}
}

func TestFilterKeep(t *testing.T) {
	curl := &process{pid: 10, name: "curl", user: "alice"}
	sshd := &process{pid: 22, name: "sshd", user: "root"}
	none := &process{name: "(no socket)", reason: noSocket}
	rows := map[string]usage{
		"curl443":  connRow(curl, 6, "192.0.2.10:40000", "198.51.100.7:443", 1, 1),
		"curl80v6": connRow(curl, 6, "[2001:db8::10]:40001", "[2001:db8::7]:80", 1, 1),
		"sshd22":   connRow(sshd, 6, "192.0.2.10:22", "203.0.113.9:51000", 1, 1),
		"none23":   connRow(none, 6, "192.0.2.10:23", "203.0.113.66:6666", 1, 0),
		"icmp":     {name: "(not TCP/UDP)", proc: &process{name: "(not TCP/UDP)", reason: notTCPUDP}, conn: &connInfo{}},
	}
	for _, tc := range []struct {
		name string
		f    filter
		want []string
	}{
		{"none", filter{}, []string{"curl443", "curl80v6", "sshd22", "none23", "icmp"}},
		{"pid", filter{pids: []int{22}}, []string{"sshd22"}},
		{"pid 0", filter{pids: []int{0}}, []string{"none23", "icmp"}},
		{"program glob", filter{programs: []string{"cu*"}}, []string{"curl443", "curl80v6"}},
		{"program of pid 0", filter{programs: []string{"(no*"}}, []string{"none23"}},
		{"user", filter{users: []string{"root", "bob"}}, []string{"sshd22"}},
		{"port either end", filter{ports: []uint16{443, 22}}, []string{"curl443", "sshd22"}},
		{"remote v4", filter{remotes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, []string{"curl443"}},
		{"remote v6", filter{remotes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}}, []string{"curl80v6"}},
		{"all of them", filter{programs: []string{"curl"}, ports: []uint16{80}}, []string{"curl80v6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]bool{}
			for name, u := range rows {
				if tc.f.keep(u) {
					got[name] = true
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("kept %v; want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("kept %v; want %v", got, tc.want)
				}
			}
		})
	}
}

// TestGroupAddsUp groups rows by each key and checks each group's bytes
// against the rows it replaces, and that a group's totals outlive its
// processes.
func TestGroupAddsUp(t *testing.T) {
	a1 := &process{pid: 10, start: 1, name: "curl", user: "alice", cgroup: "/system.slice/docker-" + hex64 + ".scope", netns: 7}
	a2 := &process{pid: 11, start: 2, name: "curl", user: "alice", cgroup: "/user.slice/user-1000.slice/session-3.scope", netns: 7}
	b := &process{pid: 12, start: 3, name: "wget", user: "bob", netns: 8}
	first := []usage{
		connRow(a1, 6, "192.0.2.10:40000", "198.51.100.7:443", 100, 10),
		connRow(a2, 6, "192.0.2.10:40001", "198.51.100.7:443", 200, 20),
		connRow(b, 17, "192.0.2.10:5000", "198.51.100.8:53", 300, 30),
	}
	for _, tc := range []struct {
		by   []string
		want map[string]traffic // by label
	}{
		{[]string{"program"}, map[string]traffic{"curl": {rxBytes: 300, txBytes: 30}, "wget": {rxBytes: 300, txBytes: 30}}},
		{[]string{"user"}, map[string]traffic{"alice": {rxBytes: 300, txBytes: 30}, "bob": {rxBytes: 300, txBytes: 30}}},
		{[]string{"container"}, map[string]traffic{"docker:" + hex64[:12]: {rxBytes: 100, txBytes: 10}, "session-3.scope": {rxBytes: 200, txBytes: 20}, "": {rxBytes: 300, txBytes: 30}}},
		{[]string{"netns"}, map[string]traffic{"7": {rxBytes: 300, txBytes: 30}, "8": {rxBytes: 300, txBytes: 30}}},
		{[]string{"remote"}, map[string]traffic{"198.51.100.7": {rxBytes: 300, txBytes: 30}, "198.51.100.8": {rxBytes: 300, txBytes: 30}}},
		{[]string{"user", "remote"}, map[string]traffic{"alice/198.51.100.7": {rxBytes: 300, txBytes: 30}, "bob/198.51.100.8": {rxBytes: 300, txBytes: 30}}},
	} {
		v := newView(modeConn, tc.by, filter{})
		got := v.apply(1, nil, first)
		if len(got) != len(tc.want) {
			t.Errorf("--by %v: %d groups; want %d", tc.by, len(got), len(tc.want))
		}
		for _, g := range got {
			w, ok := tc.want[g.name]
			if !ok || g.interval != w || g.total != w {
				t.Errorf("--by %v: group %q has %+v, total %+v; want %+v", tc.by, g.name, g.interval, g.total, w)
			}
		}
		// The next report: a1 exited, a2 moved more. alice's group keeps
		// a1's bytes in its totals.
		if tc.by[0] != "user" {
			continue
		}
		got = v.apply(2, nil, []usage{connRow(a2, 6, "192.0.2.10:40001", "198.51.100.7:443", 5, 1)})
		if len(got) != 1 || got[0].interval != (traffic{rxBytes: 5, txBytes: 1}) || got[0].total != (traffic{rxBytes: 305, txBytes: 31}) || got[0].group.members != 1 {
			t.Errorf("--by %v, second report: %+v; want alice's 5/1 bytes, totals 305/31, one member", tc.by, got)
		}
	}
}

// hex64 is a container id.
const hex64 = "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"

// TestGroupBounded folds the groups idle longest into "(other)" past
// maxGroups, keeping their bytes in its totals.
func TestGroupBounded(t *testing.T) {
	v := newView(modeConn, []string{"remote"}, filter{})
	p := &process{pid: 1, name: "scan"}
	var want uint64
	for i := range maxGroups + 10 {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 80)
		v.apply(i+1, nil, []usage{connRow(p, 6, "192.0.2.10:40000", remote.String(), 1, 0)})
		want++
	}
	// The 4,097th group folded the 1,024 idle longest: the first ones.
	if len(v.groups) != maxGroups+10-maxGroups/4 || v.folded != maxGroups/4 || v.other == nil || v.other.u.total.rxBytes != maxGroups/4 {
		t.Fatalf("%d groups, %d folded, other %+v; want %d, %d, %d bytes", len(v.groups), v.folded, v.other, maxGroups+10-maxGroups/4, maxGroups/4, maxGroups/4)
	}
	for _, g := range v.groups {
		if g.last <= maxGroups/4 {
			t.Fatalf("group %q, last active in report %d, is kept; the %d idle longest were to go", g.u.name, g.last, maxGroups/4)
		}
	}
	var sum uint64
	for _, g := range v.groups {
		sum += g.u.total.rxBytes
	}
	if sum+v.other.u.total.rxBytes != want {
		t.Errorf("groups and (other) hold %d bytes; want %d", sum+v.other.u.total.rxBytes, want)
	}
}

// TestProcFromConns: proc with --port is made of connections, grouped back
// into processes: the rows keep their processes, with only the bytes of
// the connections kept.
func TestProcFromConns(t *testing.T) {
	curl := &process{pid: 10, start: 1, name: "curl", user: "alice"}
	v := newView(modeProc, nil, filter{ports: []uint16{443}})
	if !v.conns || !v.byProc {
		t.Fatalf("proc --port: view of connections %v, grouped by process %v; want both", v.conns, v.byProc)
	}
	got := v.apply(1, []usage{{name: "curl", proc: curl, interval: traffic{rxBytes: 1000}}}, []usage{
		connRow(curl, 6, "192.0.2.10:40000", "198.51.100.7:443", 700, 7),
		connRow(curl, 6, "192.0.2.10:40001", "198.51.100.7:80", 300, 3),
	})
	if len(got) != 1 || got[0].proc != curl || got[0].group != nil || got[0].interval != (traffic{rxBytes: 700, txBytes: 7}) {
		t.Errorf("rows %+v; want curl's row with the 443 connection's 700/7 bytes", got)
	}
}

func TestSetStates(t *testing.T) {
	a := newAccountant()
	owner := &process{pid: 5, name: "nc"}
	open := flow{6, netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.7:443")}
	gone := flow{6, netip.MustParseAddrPort("192.0.2.10:40001"), netip.MustParseAddrPort("198.51.100.7:443")}
	far := flow{6, netip.MustParseAddrPort("198.51.100.7:443"), netip.MustParseAddrPort("192.0.2.10:40001")}
	udp := flow{17, netip.MustParseAddrPort("192.0.2.10:5000"), netip.MustParseAddrPort("198.51.100.8:53")}
	a.flows[open] = &flowState{owner: owner}
	a.flows[gone] = &flowState{owner: owner, state: 1}
	a.flows[far] = &flowState{}
	a.flows[udp] = &flowState{owner: owner}
	a.setStates(map[flow]tcpState{open: 1, udp: 1})
	for _, tc := range []struct {
		fl   flow
		want string
	}{{open, "ESTABLISHED"}, {gone, "CLOSE"}, {far, ""}, {udp, ""}} {
		if got := a.flows[tc.fl].state.String(); got != tc.want {
			t.Errorf("%v: state %q; want %q", tc.fl, got, tc.want)
		}
	}
}

// TestRemoteNameInTable: with --resolve a conn row's REMOTE is the name
// and the port, escaped as every name is, and the column widens to it.
func TestRemoteNameInTable(t *testing.T) {
	var b strings.Builder
	r := newRenderer(&b, false, false, false, false)
	p := &process{pid: 10, name: "curl", user: "alice"}
	u := connRow(p, 6, "192.0.2.10:40000", "198.51.100.7:443", 100, 10)
	u.conn.remoteName = "a-rather-long-name.example\x1b[2J"
	rep := report{mode: modeConn, seq: 1, at: epoch, elapsed: time.Second, interval: time.Second, rows: []usage{u}, capture: &captured{}}
	if err := r.render(rep, options{}); err != nil {
		t.Fatal(err)
	}
	want := `a-rather-long-name.example\x1b[2J:443`
	if !strings.Contains(b.String(), want+"  ") {
		t.Errorf("table:\n%s\nwant REMOTE %q, whole", b.String(), want)
	}
}
