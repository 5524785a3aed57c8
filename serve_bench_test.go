package main

// Benchmark of netuse serve's scrape: what one GET of /metrics costs, as
// Prometheus makes it, on a machine with 100 interfaces and 1,000 groups
// of processes.
//
//	go test -run '^$' -bench 'BenchmarkServeScrape' -count 5 .   # see BENCHMARKS.md
//
// The exporter is serve's, with a pipeline made as conn_bench_test.go
// makes one, without privileges: an accountant that knows the owners of
// 1,000 TCP connections (one per process, each process its own program
// name), fed one interval's frames through the sniffer before each
// scrape, and a frame source and resolver that do nothing. A scrape then
// runs what a real one runs: the interfaces' counters (fake, 100 of
// them), pipeline.report (the accountant's report and, for each row, the
// process's name read again as liveName does), view.apply into the
// groups, and collect, then client_golang's gathering and encoding,
// through the handler runServe builds, over HTTP on loopback.

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	scrapeIfaces = 100   // interfaces, each with its counters
	scrapeGroups = 1_000 // processes, each its own program: one group each
	scrapeUsers  = 10    // users the processes belong to, for --by user,program
)

// Accept headers as Prometheus sends them. Prometheus 3's default
// scrape_protocols ask for OpenMetrics first; text is the classic format.
const (
	acceptText        = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)

// scrapeSource is a frame source that captures nothing and reports the
// benchmark's interfaces: the sniffer is fed by the benchmark itself.
type scrapeSource struct{ st captureStats }

func (*scrapeSource) run(*sniffer) error    { return nil }
func (*scrapeSource) stop()                 {}
func (*scrapeSource) rescan()               {}
func (s *scrapeSource) stats() captureStats { return s.st }

// The benchmark's interfaces, processes and connections: process i is
// program prog%04d of user user(i mod 10), with one connection from
// 192.0.2.1:10000+i to 10.1.x.y:443, on interface i mod 100.
func scrapeIfaceName(i int) string { return fmt.Sprintf("veth%03d", i) }
func scrapeProgram(i int) string   { return fmt.Sprintf("prog%04d", i) }
func scrapeUser(i int) string      { return fmt.Sprintf("user%d", i%scrapeUsers) }
func scrapeIfindex(i int) int      { return i%scrapeIfaces + 1 }
func scrapeLocal(i int) netip.AddrPort {
	return netip.AddrPortFrom(benchLocal.Addr(), uint16(10_000+i))
}
func scrapeRemote(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 443)
}

// scrapeBench is an exporter with its pipeline, the frames of one
// interval, and the HTTP server of its handler.
type scrapeBench struct {
	e      *exporter
	reg    prometheus.Gatherer
	sn     *sniffer
	frames []frame
	start  time.Time
	seq    int
	srv    *httptest.Server
}

// newScrapeBench builds the exporter of by, settles the owners of its
// 1,000 connections as the resolver would, and takes a first report, so
// that every group exists before the timer starts.
//
// With readNames, each row's name is read again from /proc/PID/stat by
// liveName, as the real pipeline does. The benchmark's processes do not
// exist, so it reads the benchmark's own stat file, with a start that
// does not match: the cost of a live process's read, and the names stay.
// Without, no name is read: what a scrape would cost if names were not
// read again at every report.
func newScrapeBench(b *testing.B, by []string, readNames bool) *scrapeBench {
	b.Helper()
	sb := &scrapeBench{start: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	st := captureStats{names: map[int]string{}}
	for i := range scrapeIfaces {
		st.ifaces = append(st.ifaces, scrapeIfaceName(i))
		st.names[i+1] = scrapeIfaceName(i)
	}
	acc := newAccountant()
	sb.sn = newSniffer(acc.add, nil)
	self := os.Getpid()
	pipe := &pipeline{
		src: &scrapeSource{st: st}, acc: acc, res: &resolver{acc: acc, kick: make(chan struct{}, 1)}, source: "bpf",
		liveName: func(*process) (string, bool) {
			if readNames {
				liveName(&process{pid: self, start: ^uint64(0)})
			}
			return "", false
		},
	}
	var counts uint64
	counters := func() ([]counter, error) {
		counts++
		cs := make([]counter, scrapeIfaces)
		for i := range cs {
			n := counts * uint64(1000+i)
			cs[i] = counter{name: scrapeIfaceName(i), index: i + 1, virtual: true,
				traffic: traffic{rxBytes: n * 1500, txBytes: n * 600, rxPackets: n, txPackets: n}}
		}
		return cs, nil
	}
	// As startExporter makes it, with the pipeline above in place of
	// newPipeline's.
	sb.e = newExporter(counters, nil, by)
	sb.e.pipe, sb.e.view = pipe, newView(modeServe, by, filter{})
	if _, err := sb.e.sampler.sample(); err != nil {
		b.Fatal(err)
	}

	procs := make([]*process, scrapeGroups)
	for i := range procs {
		procs[i] = &process{pid: 30_000 + i, start: 2_000_000 + uint64(i), started: sb.start.Add(-time.Hour),
			name: scrapeProgram(i), user: scrapeUser(i), cmdline: scrapeProgram(i), netns: 4026531840,
			cgroup: "/system.slice/" + scrapeProgram(i) + ".service"}
	}
	for i := range scrapeGroups {
		l, r := scrapeLocal(i), scrapeRemote(i)
		in := ethFrame(b, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: r.Addr().AsSlice(), DstIP: l.Addr().AsSlice()},
			&layers.TCP{SrcPort: layers.TCPPort(r.Port()), DstPort: layers.TCPPort(l.Port()), ACK: true}, gopacket.Payload(make([]byte, 140)))
		out := ethFrame(b, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: l.Addr().AsSlice(), DstIP: r.Addr().AsSlice()},
			&layers.TCP{SrcPort: layers.TCPPort(l.Port()), DstPort: layers.TCPPort(r.Port()), ACK: true, PSH: true}, gopacket.Payload(make([]byte, 140)))
		sb.frames = append(sb.frames,
			frame{ifindex: scrapeIfindex(i), dir: dirIn, length: 200, data: in[:min(len(in), snapLen)]},
			frame{ifindex: scrapeIfindex(i), dir: dirOut, length: 1514, data: out[:min(len(out), snapLen)]})
	}
	sb.interval()
	now := sb.start.Add(time.Second)
	pending := acc.takePending(now)
	if len(pending) != 2*scrapeGroups {
		b.Fatalf("%d flow ends pending, want %d", len(pending), 2*scrapeGroups)
	}
	rs := make([]resolution, len(pending))
	for i, fl := range pending {
		rs[i].fl = fl
		if fl.local.Addr() == benchLocal.Addr() {
			rs[i].owner = procs[int(fl.local.Port())-10_000]
			rs[i].state = 1 // ESTABLISHED
		} else {
			rs[i].why = noSocket
		}
	}
	for range maxTries { // the far ends are tried maxTries times
		acc.settle(now, rs)
	}
	acc.takePending(now.Add(time.Hour)) // no retries left

	// The handler of runServe.
	mux := http.NewServeMux()
	var h http.Handler
	h, sb.reg = metricsHandler(sb.e, log.New(io.Discard, "", 0))
	mux.Handle("/metrics", h)
	sb.srv = httptest.NewServer(mux)
	b.Cleanup(sb.srv.Close)

	// The first scrape makes the groups; every one must be there, each
	// once, in either format.
	sb.interval()
	for _, accept := range []string{acceptText, acceptOpenMetrics} {
		body, _ := sb.get(b, accept, false)
		sb.interval()
		n := 0
		for line := range strings.Lines(string(body)) {
			if strings.HasPrefix(line, "netuse_process_receive_bytes_total{") {
				n++
			}
		}
		if n != scrapeGroups {
			b.Fatalf("Accept %q: %d series of netuse_process_receive_bytes_total, want %d", accept, n, scrapeGroups)
		}
	}
	return sb
}

// interval sends one interval's frames through the sniffer: a packet in
// and one out on every connection, spread over the interval.
func (sb *scrapeBench) interval() {
	sb.seq++
	sniffSecond(sb.sn, sb.frames, sb.start.Add(time.Duration(sb.seq)*time.Second))
}

// get is one scrape: GET /metrics with accept, and with gzip, as
// Prometheus asks for it, or without (identity). It returns the body as
// sent, compressed or not, and its length.
func (sb *scrapeBench) get(b *testing.B, accept string, gzip bool) ([]byte, int) {
	req, err := http.NewRequest("GET", sb.srv.URL+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	} else {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil {
		b.Fatal(err)
	}
	return body, len(body)
}

// scrapeClient reads bodies as the server sends them: the transport does
// not ask for, or undo, gzip itself.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// BenchmarkServeScrape measures one scrape of netuse serve with 100
// interfaces and 1,000 groups: a GET of /metrics over HTTP on loopback,
// as Prometheus makes it (Accept-Encoding: gzip), in the classic text
// format and in OpenMetrics, with --by program (the default) and --by
// user,program. Before each scrape, outside the timer, one interval's
// frames go through the sniffer, so that every group has moved bytes: the
// scrape's report has 1,000 rows. Metrics: ms/op, the scrape; report-ms,
// the exporter's report alone (refresh: counters, pipeline.report,
// view.apply), and gather-ms, the registry's Gather alone (the report,
// collect, client_golang's checks and sorting), each timed outside the
// scrape's timer after an interval of its own; body-KiB, the gzip body.
// The case names_not_read is program/text without liveName's reads of
// /proc (see newScrapeBench): what they cost.
func BenchmarkServeScrape(b *testing.B) {
	cases := []struct {
		name      string
		by        []string
		accept    string
		readNames bool
	}{
		{"program/text", []string{"program"}, acceptText, true},
		{"program/openmetrics", []string{"program"}, acceptOpenMetrics, true},
		{"user,program/text", []string{"user", "program"}, acceptText, true},
		{"user,program/openmetrics", []string{"user", "program"}, acceptOpenMetrics, true},
		{"program/text/names_not_read", []string{"program"}, acceptText, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			sb := newScrapeBench(b, tc.by, tc.readNames)
			var report, gather time.Duration
			size := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				sb.interval()
				b.StartTimer()
				_, size = sb.get(b, tc.accept, true)
				b.StopTimer()
				sb.interval()
				t0 := time.Now()
				if err := sb.e.refresh(); err != nil {
					b.Fatal(err)
				}
				report += time.Since(t0)
				sb.interval()
				t0 = time.Now()
				if _, err := sb.reg.Gather(); err != nil {
					b.Fatal(err)
				}
				gather += time.Since(t0)
				b.StartTimer()
			}
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 / float64(b.N) }
			b.ReportMetric(ms(b.Elapsed()), "ms/op")
			b.ReportMetric(ms(report), "report-ms")
			b.ReportMetric(ms(gather), "gather-ms")
			b.ReportMetric(float64(size)/1024, "body-KiB")
		})
	}
}
