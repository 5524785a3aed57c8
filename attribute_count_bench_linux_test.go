package main

// Benchmarks of the counting programs (attribute_count_linux.go): their
// own cost per packet from the kernel's BPF statistics (run_time_ns /
// run_cnt), for a UDP flood and bulk TCP between two namespaces, with
// empty programs beside them for the floor the statistics themselves
// cost; and the cost of a collect over 10,000 and 100,000 entries.
//
//	go test -run '^$' -bench 'CountPrograms' -benchtime 1x -count 3 .   # as root
//	go test -run '^$' -bench 'CountCollect' -benchmem -count 3 .       # as root
//
// The programs are attached to the benchmark's cgroup only, never to the
// root; traffic stays between the benchmark's namespaces.

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// emptySKB returns a cgroup_skb program that only allows, and attaches
// it at egress and ingress: the floor of the statistics.
func emptySKB(b *testing.B) ([]*ebpf.Program, func(dir *os.File) ([]*link.RawLink, error)) {
	var progs []*ebpf.Program
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetIngress} {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupSKB, AttachType: at, License: bpfLicense,
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		progs = append(progs, p)
	}
	return progs, func(dir *os.File) ([]*link.RawLink, error) {
		var links []*link.RawLink
		for i, at := range []ebpf.AttachType{ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetIngress} {
			l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(dir.Fd()), Program: progs[i], Attach: at})
			if err != nil {
				return links, err
			}
			links = append(links, l)
		}
		return links, nil
	}
}

// benchCountPrograms runs load (a sender in a, a receiver in b, both in
// the cgroup) once per iteration, and reports the egress and ingress
// programs' ns per run, and their kernel time per sent MB.
func benchCountPrograms(b *testing.B, load func(b *testing.B, n *countNet, cg *os.File) (bytes uint64)) {
	for _, variant := range []string{"empty", "count"} {
		b.Run(variant, func(b *testing.B) {
			n := newCountNet(b)
			var progs []*ebpf.Program
			var attach func(dir *os.File) ([]*link.RawLink, error)
			if variant == "empty" {
				progs, attach = emptySKB(b)
			} else {
				p, err := loadCountPrograms(countEntries, 0)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(p.close)
				for _, m := range []struct {
					netns   uint64
					ifindex uint32
				}{{n.netnsA, n.ifA}, {n.netnsB, n.ifB}} {
					p.setMTU(m.netns, m.ifindex, 1500)
				}
				progs, attach = []*ebpf.Program{p.egress, p.ingress}, p.attach
			}
			cg := countCgroup(b, attach)
			stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Fatal(err)
			}
			defer stats.Close() // back to 0: the statistics cost every program on the machine
			before := make([]ebpf.ProgramStats, 2)
			for i, p := range progs {
				s, err := p.Stats()
				if err != nil {
					b.Fatal(err)
				}
				before[i] = *s
			}
			var sent uint64
			for b.Loop() {
				sent += load(b, n, cg)
			}
			var total time.Duration
			for i, name := range []string{"egress", "ingress"} {
				s, err := progs[i].Stats()
				if err != nil {
					b.Fatal(err)
				}
				runs, rt := s.RunCount-before[i].RunCount, s.Runtime-before[i].Runtime
				total += rt
				if runs > 0 {
					b.ReportMetric(float64(rt.Nanoseconds())/float64(runs), name+"-ns/run")
					b.ReportMetric(float64(runs)/float64(b.N), name+"-runs/op")
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/(float64(sent)/1e6), "kernel-ns/MB")
		})
	}
}

// BenchmarkCountProgramsUDP: 200,000 datagrams of 64 bytes an iteration,
// as fast as one sender sends them.
func BenchmarkCountProgramsUDP(b *testing.B) { benchCountUDP(b, 64) }

// BenchmarkCountProgramsUDPFull: the same with datagrams of 1,400 bytes
// (QUIC's, a full segment's size): past fragFloor, not past the MTU.
func BenchmarkCountProgramsUDPFull(b *testing.B) { benchCountUDP(b, 1400) }

func benchCountUDP(b *testing.B, size int) {
	const datagrams = 200000
	benchCountPrograms(b, func(b *testing.B, n *countNet, cg *os.File) uint64 {
		srv := startChild(b, cg, n.b, "count-bind", "udp", "192.0.2.2:7501")
		srv.expect(b, "listening")
		h := startChild(b, cg, n.a, "count-udp-send", "192.0.2.2:7501", strconv.Itoa(size), strconv.Itoa(datagrams))
		h.expect(b, "cookie")
		h.expect(b, "done")
		h.end()
		srv.end()
		return uint64(datagrams * size)
	})
}

// BenchmarkCountProgramsTCP: 1 GiB over one connection an iteration.
func BenchmarkCountProgramsTCP(b *testing.B) {
	const bytes = 1 << 30
	benchCountPrograms(b, func(b *testing.B, n *countNet, cg *os.File) uint64 {
		srv := startChild(b, cg, n.b, "count-tcp-recv", "192.0.2.2:7502")
		srv.expect(b, "listening")
		h := startChild(b, cg, n.a, "count-tcp-send", "192.0.2.2:7502", strconv.Itoa(bytes))
		h.expect(b, "cookie")
		h.expect(b, "done")
		h.end()
		srv.expect(b, "got")
		srv.end()
		return bytes
	})
}

// BenchmarkCountCollect: one collect over a map of 10,000 and 100,000
// entries (sockets × devices), with every entry moved since the last
// ("moved": a delta each) or none ("still"), and with every entry's socket
// closed ("drain": read and deleted one by one).
func BenchmarkCountCollect(b *testing.B) {
	needRoot(b)
	for _, entries := range []int{10000, 100000} {
		p, err := loadCountPrograms(131072, 0)
		if err != nil {
			b.Fatal(err)
		}
		c, err := newSockCounter(p)
		if err != nil {
			b.Fatal(err)
		}
		keys := make([]countKey, entries)
		vals := make([]countValue, entries*c.ncpu)
		for i := range keys {
			keys[i] = countKey{Cookie: uint64(i + 1), Ifindex: 2}
			for cpu := range c.ncpu {
				vals[i*c.ncpu+cpu] = countValue{Netns: 4096, Tx: countHalf{Packets: 10, Bytes: 10000, Segs: 10, Wire: 10000}}
			}
		}
		fill := func(b *testing.B) {
			if _, err := p.counts.BatchUpdate(keys, vals, nil); err != nil {
				b.Fatal(err)
			}
		}
		var out []countDelta
		n := strconv.Itoa(entries)
		b.Run("moved/"+n, func(b *testing.B) {
			fill(b)
			// What the totals kept between collects hold.
			clear(c.prev)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c.collect(out[:0])
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportAllocs()
			for b.Loop() {
				clear(c.prev) // every entry new to it: a delta each
				if out, err = c.collect(out[:0]); err != nil || len(out) != entries {
					b.Fatalf("%d deltas, %v", len(out), err)
				}
			}
			b.ReportMetric(float64(after.HeapInuse)-float64(before.HeapInuse), "kept-heap-B")
		})
		b.Run("still/"+n, func(b *testing.B) {
			fill(b)
			c.collect(out[:0])
			b.ReportAllocs()
			for b.Loop() {
				if out, err = c.collect(out[:0]); err != nil || len(out) != 0 {
					b.Fatalf("%d deltas, %v", len(out), err)
				}
			}
		})
		b.Run("drain/"+n, func(b *testing.B) {
			b.ReportAllocs()
			c.now = func() int64 { return int64(time.Hour) }
			for b.Loop() {
				b.StopTimer()
				fill(b)
				for _, k := range keys {
					c.closing[k.Cookie] = 0
				}
				clear(c.drained)
				b.StartTimer()
				if out, err = c.collect(out[:0]); err != nil || len(out) != entries {
					b.Fatalf("%d deltas, %v", len(out), err)
				}
			}
			c.now = monoNow
		})
		c.close()
		p.close()
	}
}

// BenchmarkPacketProgram: the --packet-senders tcx program's own cost on
// veth-a's egress (a veth of the benchmark's own, in its namespace a), for
// 100,000 frames an iteration written on an AF_PACKET socket ("frames":
// each counted) and 100,000 UDP datagrams of 64 bytes ("datagrams":
// each only looked at, as every packet of a socket is), beside a tcx
// program that only returns TCX_NEXT ("empty": the statistics' floor).
func BenchmarkPacketProgram(b *testing.B) {
	const n = 100000
	for _, variant := range []string{"empty", "count"} {
		for _, load := range []string{"frames", "datagrams"} {
			b.Run(variant+"/"+load, func(b *testing.B) {
				net := newCountNet(b)
				var prog *ebpf.Program
				if variant == "empty" {
					p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, AttachType: ebpf.AttachTCXEgress, License: bpfLicense,
						Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, tcxNext), asm.Return()}})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { p.Close() })
					prog = p
				} else {
					prog = newPacketSenders(b).prog
				}
				err := inNetns("/run/netns/"+net.a, false, func() error {
					l, err := link.AttachTCX(link.TCXOptions{Interface: int(net.ifA), Program: prog, Attach: ebpf.AttachTCXEgress})
					if err == nil {
						b.Cleanup(func() { l.Close() })
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
				if err != nil {
					b.Fatal(err)
				}
				defer stats.Close()
				before, err := prog.Stats()
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if load == "frames" {
						h := startChild(b, nil, net.a, "flood", "veth-a", "02:00:00:00:75:01", strconv.Itoa(n), "192.0.2.1", "192.0.2.2", "7503")
						h.expect(b, "sent")
						h.end()
						continue
					}
					srv := startChild(b, nil, net.b, "count-bind", "udp", "192.0.2.2:7503")
					srv.expect(b, "listening")
					h := startChild(b, nil, net.a, "count-udp-send", "192.0.2.2:7503", "64", strconv.Itoa(n))
					h.expect(b, "cookie")
					h.expect(b, "done")
					h.end()
					srv.end()
				}
				after, err := prog.Stats()
				if err != nil {
					b.Fatal(err)
				}
				runs, rt := after.RunCount-before.RunCount, after.Runtime-before.Runtime
				if runs > 0 {
					b.ReportMetric(float64(rt.Nanoseconds())/float64(runs), "ns/run")
					b.ReportMetric(float64(runs)/float64(b.N), "runs/op")
				}
			})
		}
	}
}
