package main

// Tests of serve's process series, from a capture scenario's frames fed
// batch by batch (serve_test.go holds the harness).

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// feed hands frames over and waits until they are in the flow table.
func (f *feeder) feed(t *testing.T, frames []frame) {
	t.Helper()
	select {
	case f.batches <- slices.Clone(frames):
	case <-time.After(serveWait):
		t.Fatal("the capture took no frames: it does not run")
	}
	select {
	case <-f.fed:
	case <-time.After(serveWait):
		t.Fatal("the capture did not hand its frames over")
	}
}

// searchedOwners is owners that says, on searched, when a search ended.
type searchedOwners struct {
	owners
	searched chan struct{}
}

func (o searchedOwners) find(want map[uint64]*process) bool {
	denied := o.owners.find(want)
	select {
	case o.searched <- struct{}{}:
	default:
	}
	return denied
}

// trafficFamily is the name of a family of a group's or of unattributed
// traffic.
var trafficFamily = regexp.MustCompile(`^netuse_(process|unattributed)_(receive|transmit)_(bytes|packets)_total$`)

// TestServeProcesses serves the mixed capture scenario: each group's
// series are the traffic its processes moved, under the label of its key;
// traffic of no process is counted by reason; a process with no more
// traffic (an exited one) keeps its series, as its group does.
func TestServeProcesses(t *testing.T) {
	const name = "mixed"
	frames := loadScenario(t, name).readFrames(t, filepath.Join("testdata", "capture", name+".pcapng"))
	// The mixed scenario's programs, from testdata/capture/mixed.txt: the
	// two curls download (10 x 100 + 4 x 100 bytes out, 20 x 1500 + 8 x
	// 1500 in), named answers 5 queries, sshd has a handshake and an IPv6
	// session, python3 gets 2 packets.
	type group struct {
		labels string
		traffic
	}
	curl1 := traffic{rxBytes: 30000, txBytes: 1000, rxPackets: 20, txPackets: 10}
	curl2 := traffic{rxBytes: 12000, txBytes: 400, rxPackets: 8, txPackets: 4}
	curls := traffic{rxBytes: 42000, txBytes: 1400, rxPackets: 28, txPackets: 14}
	named := traffic{rxBytes: 400, txBytes: 1000, rxPackets: 5, txPackets: 5}
	sshd := traffic{rxBytes: 420, txBytes: 900, rxPackets: 4, txPackets: 3}
	python := traffic{rxBytes: 800, rxPackets: 2}
	tests := []struct {
		by     string
		groups []group
		named  string // the labels of named's group
		warned bool   // serve warns of --by pid
	}{
		{"program", []group{{`groupname="curl"`, curls}, {`groupname="named"`, named}, {`groupname="sshd"`, sshd}, {`groupname="python3"`, python}}, `groupname="named"`, false},
		{"user", []group{{`user="alice"`, curls}, {`user="bind"`, named}, {`user="root"`, sshd}, {`user="www-data"`, python}}, `user="bind"`, false},
		{"pid", []group{{`pid="4242"`, curl1}, {`pid="4243"`, curl2}, {`pid="53"`, named}, {`pid="22"`, sshd}, {`pid="8080"`, python}}, `pid="53"`, true},
		{"container,program", []group{
			{`container="session-3.scope",groupname="curl"`, curls}, {`container="named.service",groupname="named"`, named},
			{`container="ssh.service",groupname="sshd"`, sshd}, {`container="docker:4f3c2a1b0e9d",groupname="python3"`, python},
		}, `container="named.service",groupname="named"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.by, func(t *testing.T) {
			sc := loadScenario(t, name)
			src := newFeeder(sc.ifaces)
			proc := sc.procOS(src)
			searched := make(chan struct{}, 1)
			proc.owners = func(*registry, bool) owners { return searchedOwners{sc.owners, searched} }
			ifs := newFakeIfaces(ifc("lo", 1, 0, 0, 0, 0), ifc("eth0", 2, 0, 0, 0, 0))
			a, stdout, stderr := serveApp(ifs, proc)
			s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0", "--owners", "proc", "--by", tt.by)

			want := map[string]float64{}
			for _, g := range tt.groups {
				four(want, "netuse_process", g.labels, g.traffic)
			}
			// Every reason has its series from the start, at zero until
			// its first byte.
			zeros := map[string]float64{}
			for r := attributed + 1; r < numReasons; r++ {
				for _, dir := range []string{"receive", "transmit"} {
					k := `netuse_unattributed_` + dir + `_bytes_total{reason="` + reasonKey[r] + `"}`
					want[k], zeros[k] = 0, 0
				}
			}
			for _, u := range []struct {
				reason string
				rx, tx float64
			}{{"no_owner", 120, 1000}, {"not_for_host", 1000, 0}, {"not_tcp_udp", 252, 0}, {"no_socket", 240, 0}} {
				want[`netuse_unattributed_receive_bytes_total{reason="`+u.reason+`"}`] = u.rx
				want[`netuse_unattributed_transmit_bytes_total{reason="`+u.reason+`"}`] = u.tx
			}
			traffics := func(m map[string]float64) map[string]float64 {
				out := map[string]float64{}
				for k, v := range m {
					if trafficFamily.MatchString(k[:strings.Index(k, "{")]) {
						out[k] = v
					}
				}
				return out
			}

			// Before any frame: the capture serves, and no group yet.
			before := scrapeSeries(t, s.addr, "netuse_")
			if v, ok := before[`netuse_process_metrics_enabled{reason=""}`]; !ok || v != 1 {
				t.Errorf(`netuse_process_metrics_enabled{reason=""} = %v (present %v); want 1`, v, ok)
			}
			if g := traffics(before); !maps.Equal(g, zeros) {
				t.Errorf("before any frame: %v; want no group, and every reason of no process at zero", g)
			}

			src.feed(t, frames)
			select {
			case <-searched: // the resolver searched for the sockets' owners
			case <-time.After(serveWait):
				t.Fatal("the resolver never searched for owners")
			}
			got := waitSeries(t, s.addr, want, traffics)
			all := scrapeSeries(t, s.addr, "netuse_capture_")
			if all[`netuse_capture_received_packets_total{device="eth0"}`] != 73 || all[`netuse_capture_received_packets_total{device="lo"}`] != 0 {
				t.Errorf("capture's frames: %v; want 73 on eth0 (49 in, 24 out), 0 on lo", all)
			}

			// The curls, sshd and python3 exit: only named moves, its 5
			// queries again. Every other series keeps its value.
			var namedFrames []frame
			for i, p := range sc.packets {
				if p.src.Port() == 53 || p.dst.Port() == 53 {
					namedFrames = append(namedFrames, frames[i])
				}
			}
			if len(namedFrames) != 10 {
				t.Fatalf("%d frames of named in the scenario; want 10", len(namedFrames))
			}
			src.feed(t, namedFrames)
			next := maps.Clone(got)
			four(next, "netuse_process", tt.named, traffic{rxBytes: 800, txBytes: 2000, rxPackets: 10, txPackets: 10})
			waitSeries(t, s.addr, next, traffics)
			all = scrapeSeries(t, s.addr, "netuse_capture_")
			if all[`netuse_capture_received_packets_total{device="eth0"}`] != 83 {
				t.Errorf("capture's frames on eth0: %v; want 83 (73, then named's 10)", all[`netuse_capture_received_packets_total{device="eth0"}`])
			}

			if err := s.stop(); err != nil {
				t.Errorf("serve ended with %v; want nil", err)
			}
			lines := stderr.lines()
			wantLines := 1
			if tt.warned {
				wantLines = 2
				if n := strings.Count(stderr.String(), "netuse: warning: serve --by pid: one series per process"); n != 1 {
					t.Errorf("stderr = %q; want one warning of --by pid", stderr)
				}
			}
			if len(lines) != wantLines {
				t.Errorf("stderr = %q; want %d lines", stderr, wantLines)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
		})
	}
}

// waitSeries scrapes until the series that part picks out of the scrape
// are want, or serveWait passed: a report carries a flow not yet settled
// to the next one, and so a scrape may come too early. No series may go
// down meanwhile, and one more scrape must find the same: nothing carried
// is counted twice.
func waitSeries(t *testing.T, addr string, want map[string]float64, part func(map[string]float64) map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(serveWait)
	var prev map[string]float64
	for {
		got := part(scrapeSeries(t, addr, "netuse_"))
		for k, v := range prev {
			if g, ok := got[k]; !ok || g < v {
				t.Errorf("%s went from %v to %v (present %v); a counter never goes down, nor away", k, v, g, ok)
			}
		}
		prev = got
		if seriesDiff(want, got) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, the series are not the traffic the capture moved:\n%s", serveWait, seriesDiff(want, got))
		}
		time.Sleep(5 * time.Millisecond) // a poll: each scrape is a report, which nudges the resolver
	}
	if d := seriesDiff(want, part(scrapeSeries(t, addr, "netuse_"))); d != "" {
		t.Errorf("the scrape after the one that had the traffic the capture moved differs:\n%s", d)
	}
	return prev
}
