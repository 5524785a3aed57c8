package main

// Benchmarks of netuse conn's report: what one interval's report of 10,000
// connections costs from the accountant to the rendered frame, and what a
// flood of new connections does to the flow table and the heap.
//
//	go test -run '^$' -bench 'Conn' -benchtime 1x -count 5 .   # a report takes seconds: see BENCHMARKS.md
//
// The connections are those of a server: 10,000 TCP connections between
// 192.0.2.1:443 and 10,000 clients elsewhere, each its own address, held
// by 100 worker processes of 100 connections each. That is what "10,000
// live connections" usually means on one machine (a web server, a proxy),
// and it is what the accountant has most of: a connection with one end
// here is two flow ends in its table (20,000), the near one a socket of a
// worker, the far one settled as no socket of this machine, and one conn
// row (10,000). Both ends on this host (loopback) would make two rows of
// one connection, which is a test's setup more than a server's.

import (
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	benchConns   = 10_000 // live connections, each with one end here
	benchWorkers = 100    // processes that hold them, benchConns/benchWorkers each
	benchIfindex = 2      // eth0's index
)

// connBench is a server's connections, an accountant that knows their
// owners, and the frames of one interval: a request in and a response out
// on every connection.
type connBench struct {
	acc     *accountant
	sn      *sniffer
	frames  []frame
	workers []*process
	stats   captureStats
	start   time.Time // the first interval's start
}

// benchRemote is client i's end: distinct addresses in 10.0.0.0/16.
func benchRemote(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(32768+i%28000))
}

var benchLocal = netip.MustParseAddrPort("192.0.2.1:443")

// newConnBench builds the connections and has the accountant settle their
// owners as the resolver would: each near end found with its worker, each
// far end tried maxTries times and found to be no socket here. Then one
// interval's packets go through and are reported, so that every flow has
// been reported once.
func newConnBench(b *testing.B) *connBench {
	b.Helper()
	cb := &connBench{
		acc:   newAccountant(),
		stats: captureStats{ifaces: []string{"eth0"}, names: map[int]string{benchIfindex: "eth0"}},
		start: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
	}
	cb.acc.conns = true
	cb.sn = newSniffer(cb.acc.add, nil)
	for w := range benchWorkers {
		cb.workers = append(cb.workers, &process{pid: 20_000 + w, start: 1_000_000 + uint64(w),
			started: cb.start.Add(-time.Hour), name: "nginx", user: "www-data",
			cmdline: "nginx: worker process", netns: 4026531840,
			cgroup: "/system.slice/nginx.service"})
	}
	local := benchLocal.Addr().AsSlice()
	for i := range benchConns {
		r := benchRemote(i)
		in := ethFrame(b, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: r.Addr().AsSlice(), DstIP: local},
			&layers.TCP{SrcPort: layers.TCPPort(r.Port()), DstPort: 443, ACK: true, PSH: true}, gopacket.Payload(make([]byte, 140)))
		out := ethFrame(b, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: local, DstIP: r.Addr().AsSlice()},
			&layers.TCP{SrcPort: 443, DstPort: layers.TCPPort(r.Port()), ACK: true}, gopacket.Payload(make([]byte, 140)))
		cb.frames = append(cb.frames,
			frame{ifindex: benchIfindex, dir: dirIn, length: 400, data: in[:min(len(in), snapLen)]},
			frame{ifindex: benchIfindex, dir: dirOut, length: 1514, data: out[:min(len(out), snapLen)]})
	}
	cb.interval(0)
	now := cb.start.Add(time.Second)
	pending := cb.acc.takePending(now)
	if len(pending) != 2*benchConns {
		b.Fatalf("%d flow ends pending, want %d", len(pending), 2*benchConns)
	}
	rs := make([]resolution, len(pending))
	states := map[flow]tcpState{}
	for i, fl := range pending {
		rs[i].fl = fl
		if fl.local == benchLocal {
			a := fl.remote.Addr().As4()
			rs[i].owner = cb.workers[(int(a[2])<<8|int(a[3]))%benchWorkers] // client i's is worker i%benchWorkers
			rs[i].state = 1                                                 // ESTABLISHED
			states[fl] = 1
		} else {
			rs[i].why = noSocket
		}
	}
	for range maxTries { // the far ends are tried maxTries times
		cb.acc.settle(now, rs)
	}
	cb.acc.takePending(now.Add(time.Hour)) // no retries left
	cb.acc.setStates(states)
	if _, conns, _ := cb.acc.report(false); len(conns) != benchConns {
		b.Fatalf("the first report has %d connection rows, want %d", len(conns), benchConns)
	}
	return cb
}

// interval sends interval seq's frames through the sniffer, a ring
// block's worth at a time, as the capture goroutine does.
func (cb *connBench) interval(seq int) {
	sniffSecond(cb.sn, cb.frames, cb.start.Add(time.Duration(seq)*time.Second))
}

// sniffSecond sends frames through sn, spread over the second from start,
// a ring block's worth at a time, as the capture goroutine does.
func sniffSecond(sn *sniffer, frames []frame, start time.Time) {
	at := start.UnixNano()
	for i := range frames {
		f := &frames[i]
		f.at = at + int64(i)*(int64(time.Second)/int64(len(frames)))
		sn.frame(f)
		if len(sn.block) == blockFrames {
			sn.endBlock()
		}
	}
	sn.endBlock()
}

// stages is the time one report spent in each stage.
type stages struct{ account, view, render time.Duration }

// report is what netuse conn does at the end of interval seq: the
// accountant's report, the capture record (pipeline.report), the view,
// and the frame. It returns the frame drawn, and adds each stage's time to
// st.
func (cb *connBench) report(seq int, v *view, r *renderer, o options, st *stages) (report, error) {
	t0 := time.Now()
	procs, conns, totals := cb.acc.report(false)
	c := newCaptured(totals, cb.stats, "bpf", 0)
	for _, u := range procs {
		if u.proc.pid != 0 {
			c.attributed += u.interval.rxBytes + u.interval.txBytes
		}
	}
	t1 := time.Now()
	rows := v.apply(seq, procs, conns)
	t2 := time.Now()
	at := cb.start.Add(time.Duration(seq) * time.Second)
	f := report{mode: modeConn, seq: seq, at: at, elapsed: time.Second, interval: time.Second,
		rows: rows, by: o.by, capture: &c}
	err := r.render(f, o)
	t3 := time.Now()
	st.account += t1.Sub(t0)
	st.view += t2.Sub(t1)
	st.render += t3.Sub(t2)
	return f, err
}

// drawOnly draws f as r.render does, without noting its rows in the
// ledger, and returns the time it took: the frame alone.
func drawOnly(r *renderer, f report, o options) time.Duration {
	start := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
	r.draw(f, o)
	r.flush()
	return time.Since(start)
}

// BenchmarkConnReport measures one report of netuse conn with 10,000 live
// connections, every one of which moved bytes in the interval; the
// interval's packets are sent outside the timer. Sub-benchmarks: table
// (not live, to io.Discard), json (NDJSON), live (a table on a terminal
// of 200 by 50, which shows the first rows), by_remote (--by remote, a
// table), filtered (--pid of one worker: 1% of the rows). Metrics:
// rows/op, the rows drawn; out-MiB/op, the bytes written; account-ms/op,
// view-ms/op and render-ms/op, the time of each stage (the accountant's
// report and the capture record; the view; the frame, with the
// renderer's ledger); draw-ms/op, outside the timer, the same frame drawn
// by a renderer without noting it in its ledger; heap-MiB, the live heap after the last report
// and a GC, with the benchmark's own frames let go: the flow table, the
// processes, the last report's rows, the view's groups and the renderer's
// ledger and buffer.
func BenchmarkConnReport(b *testing.B) {
	cases := []struct {
		name string
		json bool
		live bool // a live table on a terminal of 200 by 50
		by   []string
		f    filter
		want int // rows drawn
	}{
		{name: "table", want: benchConns},
		{name: "json", json: true, want: benchConns},
		{name: "live", live: true, want: benchConns},
		{name: "by_remote", by: []string{"remote"}, want: benchConns},
		{name: "filtered", f: filter{pids: []int{20_000}}, want: benchConns / benchWorkers},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cb := newConnBench(b)
			o := options{interval: time.Second, by: tc.by, filter: tc.f, conns: true, states: true}
			v := newView(modeConn, tc.by, tc.f)
			out := &countWriter{}
			r := newRenderer(out, tc.json, tc.live, false, false)
			if tc.live {
				r.tty, r.termSize = true, func() (int, int, bool) { return 200, 50, true }
			}
			// One report before the timer: the renderer's columns and
			// ledger, and the view's groups, as after the first interval.
			seq := 1
			cb.interval(seq)
			if _, err := cb.report(seq, v, r, o, &stages{}); err != nil {
				b.Fatal(err)
			}
			var f report
			var st stages
			// A second renderer draws each frame again, outside the
			// timer, without its ledger: how much of render is the frame.
			r2 := newRenderer(io.Discard, tc.json, tc.live, false, false)
			r2.tty, r2.termSize = r.tty, r.termSize
			var drawn time.Duration
			out.n = 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				seq++
				cb.interval(seq)
				b.StartTimer()
				var err error
				if f, err = cb.report(seq, v, r, o, &st); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				drawn += drawOnly(r2, f, o)
				b.StartTimer()
			}
			b.StopTimer()
			if len(f.rows) < tc.want {
				b.Fatalf("the last report drew %d rows, want %d", len(f.rows), tc.want)
			}
			b.ReportMetric(float64(len(f.rows)), "rows/op")
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(st.account), "account-ms/op")
			b.ReportMetric(ms(st.view), "view-ms/op")
			b.ReportMetric(ms(st.render), "render-ms/op")
			b.ReportMetric(ms(drawn), "draw-ms/op")
			b.ReportMetric(float64(out.n)/float64(b.N)/(1<<20), "out-MiB/op")
			cb.frames, cb.sn, r2 = nil, nil, nil // the benchmark's own, not netuse's
			b.ReportMetric(liveHeapMiB(), "heap-MiB")
			runtime.KeepAlive(cb)
			runtime.KeepAlive(v)
			runtime.KeepAlive(r)
		})
	}
}

// countWriter counts what is written to it, and keeps none of it.
type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)

// liveHeapMiB returns the heap in use after a GC, in MiB.
func liveHeapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// floodFrames is the frames of one BenchmarkConnFlood op: ten reports'
// worth, each 100,000 new flows, as in BenchmarkFlood.
const floodFrames = 1_000_000

// BenchmarkConnFlood sends a flood of new connections (one frame each,
// random ports, as a scan makes) through an accountant at the default
// --max-flows, with a report and the view every 100,000 frames as a busy
// interval would have: conn (connection rows, conn's view) against proc
// (process rows only). One op is floodFrames frames into a new
// accountant, so that one command runs it beside BenchmarkConnReport. The
// flow table must stay within --max-flows after every packet block and
// report, and a flood past it must evict.
//
// The frame is not drawn: with more rows than the ledger's maxLedger,
// rendering a flood's report takes seconds (BenchmarkConnReport shows
// why), which would hide what this measures, the table and its memory.
//
// Metrics: ns/frame, the reports included; report-ms, the mean time of a
// report and the view; rows, the view's rows in the last report; flows,
// the table after it; evicted, flow ends evicted in the op; heap-MiB, the
// live heap after the op (the accountant, its last report's rows).
func BenchmarkConnFlood(b *testing.B) {
	for _, m := range []mode{modeConn, modeProc} {
		b.Run(m.String(), func(b *testing.B) { benchConnFlood(b, m, maxFlows) })
	}
}

// connFlood is one op of BenchmarkConnFlood, and what it counted.
type connFlood struct {
	acc      *accountant
	v        *view
	rows     []usage
	evicted  uint64
	reports  int
	inReport time.Duration
}

func benchConnFlood(b *testing.B, m mode, limit int) {
	var last *connFlood
	var inReport time.Duration
	reports := 0
	b.ReportAllocs()
	for range b.N {
		last = nil // let the last op's accountant go before the next one fills
		last = runConnFlood(b, m, limit)
		inReport += last.inReport
		reports += last.reports
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/floodFrames, "ns/frame")
	b.ReportMetric(float64(inReport.Microseconds())/1000/float64(reports), "report-ms")
	b.ReportMetric(float64(len(last.rows)), "rows")
	b.ReportMetric(float64(len(last.acc.flows)), "flows")
	b.ReportMetric(float64(last.evicted), "evicted")
	b.ReportMetric(liveHeapMiB(), "heap-MiB")
	runtime.KeepAlive(last)
}

func runConnFlood(b *testing.B, m mode, limit int) *connFlood {
	a := newAccountant()
	a.max = limit
	cf := &connFlood{acc: a, v: newView(m, nil, filter{})}
	a.conns = cf.v.conns
	f, nth := floodFrame(b)
	s := newSniffer(a.add, nil)
	report := func() {
		start := time.Now()
		procs, conns, totals := a.report(false)
		cf.reports++
		cf.rows = cf.v.apply(cf.reports, procs, conns)
		cf.inReport += time.Since(start)
		cf.evicted += totals.evicted
		if totals.flows > a.max || len(a.flows) > a.max {
			b.Fatalf("report %d: the table holds %d flow ends, more than --max-flows %d", cf.reports, len(a.flows), a.max)
		}
		a.takePending(time.Now()) // as the resolver would
	}
	for i := range floodFrames {
		if i%100_000 == 0 && i > 0 {
			s.endBlock()
			report()
		}
		nth(i)
		s.frame(f)
		if len(s.block) == blockFrames {
			s.endBlock()
			if len(a.flows) > a.max {
				b.Fatalf("after %d frames the table holds %d flow ends, more than --max-flows %d", i+1, len(a.flows), a.max)
			}
		}
	}
	s.endBlock()
	report()
	if cf.evicted == 0 {
		b.Fatalf("%d new flows through a table of %d, and no eviction counted", floodFrames, a.max)
	}
	return cf
}
