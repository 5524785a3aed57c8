package main

// Golden tests of proc mode without privileges: packets from pcap files in
// testdata/capture go through decoding and attribution against a socket
// table and processes given in a text file beside each capture, and the
// NDJSON report is compared with testdata/golden.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// scenario is a capture's companion file, testdata/capture/NAME.txt:
//
//	iface INDEX NAME [loopback]     (in the order of the capture's interfaces)
//	local NETNS ADDR                (an address of a network namespace; with none, every address is local)
//	socket tcp|udp LOCAL REMOTE INODE UID [NETNS]
//	nat tcp|udp ORIGSRC ORIGDST REPLYSRC REPLYDST   (a conntrack entry)
//	process PID START NAME USER INODE[,INODE...] CMDLINE...
//	packet IFINDEX in|out|other tcp|udp|icmp SRC DST LENGTH [COUNT]
//
// Addresses are ADDR:PORT, [ADDR]:PORT for IPv6. The packet lines are what
// `go test -run Capture -update` writes into NAME.pcap; the test reads the
// packets back from the pcap file, not from the text.
type scenario struct {
	ifaces   []string // names, by ifindex-1
	loopback map[int]bool
	sockets  []socket
	owners   fixedOwners
	packets  []scenarioPacket
	local    map[uint64]map[netip.Addr]bool
	nat      []natEntry
}

// isOurs says whether addr is in any namespace's local lines, or nil
// without local lines.
func (s *scenario) isOurs() func(netip.Addr) bool {
	if len(s.local) == 0 {
		return nil
	}
	return func(a netip.Addr) bool {
		for _, m := range s.local {
			if m[a] {
				return true
			}
		}
		return a.IsLoopback()
	}
}

type scenarioPacket struct {
	ifindex  int
	dir      direction
	proto    string
	src, dst netip.AddrPort
	length   int
}

// fixedOwners is a socket-owner table given in full.
type fixedOwners map[uint64]*process

func (o fixedOwners) close() {}

func (o fixedOwners) find(want map[uint64]*process) bool {
	for ino := range want {
		want[ino] = o[ino]
	}
	return false
}

func loadScenario(t *testing.T, name string) *scenario {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "capture", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &scenario{loopback: map[int]bool{}, owners: fixedOwners{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		if err := s.parse(fs); err != nil {
			t.Fatalf("%s.txt:%d: %v: %q", name, line, err, sc.Text())
		}
	}
	return s
}

var protoNumbers = map[string]uint8{"tcp": 6, "udp": 17}

// bootedAt is when the scenarios' machine booted: processes' start times
// count from it.
var bootedAt = epoch.Add(-time.Hour)

func (s *scenario) parse(fs []string) error {
	atoi := func(v string) int { n, _ := strconv.Atoi(v); return n }
	switch {
	case fs[0] == "iface" && len(fs) >= 3 && atoi(fs[1]) == len(s.ifaces)+1:
		s.ifaces = append(s.ifaces, fs[2])
		s.loopback[atoi(fs[1])] = len(fs) > 3 && fs[3] == "loopback"
	case fs[0] == "nat" && len(fs) == 6:
		var ap [4]netip.AddrPort
		for i := range ap {
			var err error
			if ap[i], err = netip.ParseAddrPort(fs[2+i]); err != nil {
				return err
			}
		}
		s.nat = append(s.nat, natEntry{protoNumbers[fs[1]], ap[0], ap[1], ap[2], ap[3]})
	case fs[0] == "local" && len(fs) == 3:
		a, err := netip.ParseAddr(fs[2])
		if err != nil {
			return err
		}
		if s.local == nil {
			s.local = map[uint64]map[netip.Addr]bool{}
		}
		ns := uint64(atoi(fs[1]))
		if s.local[ns] == nil {
			s.local[ns] = map[netip.Addr]bool{}
		}
		s.local[ns][a] = true
	case fs[0] == "socket" && (len(fs) == 6 || len(fs) == 7):
		local, err1 := netip.ParseAddrPort(fs[2])
		remote, err2 := netip.ParseAddrPort(fs[3])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		ns := uint64(1)
		if len(fs) == 7 {
			ns = uint64(atoi(fs[6]))
		}
		s.sockets = append(s.sockets, socket{netns: ns, proto: protoNumbers[fs[1]], local: unmapAP(local), remote: unmapAP(remote),
			inode: uint64(atoi(fs[4])), uid: uint32(atoi(fs[5]))})
	case fs[0] == "process" && len(fs) >= 6:
		p := &process{pid: atoi(fs[1]), start: uint64(atoi(fs[2])), name: fs[3], user: fs[4], cmdline: strings.Join(fs[6:], " ")}
		p.started = bootedAt.Add(time.Duration(p.start) * 10 * time.Millisecond)
		for _, ino := range strings.Split(fs[5], ",") {
			s.owners[uint64(atoi(ino))] = p
		}
	case fs[0] == "cgroup" && (len(fs) == 3 || len(fs) == 4):
		// cgroup PID PATH [NETNS]: a process's cgroup, and its network
		// namespace if not the host's.
		for _, p := range s.owners {
			if p.pid == atoi(fs[1]) {
				p.cgroup = fs[2]
				if len(fs) == 4 {
					p.netns, p.foreign = uint64(atoi(fs[3])), true
				}
			}
		}
	case fs[0] == "packet" && len(fs) >= 7:
		src, err1 := netip.ParseAddrPort(fs[4])
		dst, err2 := netip.ParseAddrPort(fs[5])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		p := scenarioPacket{ifindex: atoi(fs[1]), proto: fs[3], src: src, dst: dst, length: atoi(fs[6])}
		p.dir = map[string]direction{"in": dirIn, "out": dirOut, "other": dirOther}[fs[2]]
		count := 1
		if len(fs) > 7 {
			count = atoi(fs[7])
		}
		for range count {
			s.packets = append(s.packets, p)
		}
	default:
		return errors.New("cannot parse")
	}
	return nil
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ipAddrOf(ap.Addr()), ap.Port())
}

// ipAddrOf unmaps IPv4-mapped addresses as the socket table reader does.
func ipAddrOf(a netip.Addr) netip.Addr {
	if a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// Captures are pcapng files with one interface block per interface (so a
// packet says which interface it was seen on), each in the Linux "cooked"
// link type (LINKTYPE_LINUX_SLL), whose header keeps the packet type: the
// direction. `tcpdump -i any` writes this header.
const sllLen = 16

// sllPacketType maps directions to the SLL header's packet types.
var sllPacketType = map[direction]uint16{dirIn: 0, dirOther: 3, dirOut: 4}

// writePcap writes the scenario's packets, 128 bytes of each, the full
// length in each record's header.
func (s *scenario) writePcap(w io.Writer) error {
	var pw *pcapgo.NgWriter
	for i, name := range s.ifaces {
		intf := pcapgo.NgInterface{Name: name, LinkType: layers.LinkTypeLinuxSLL, SnapLength: 128}
		var err error
		if i == 0 {
			pw, err = pcapgo.NewNgWriterInterface(w, intf, pcapgo.DefaultNgWriterOptions)
		} else {
			_, err = pw.AddInterface(intf)
		}
		if err != nil {
			return err
		}
	}
	at := epoch
	for _, p := range s.packets {
		data, proto, err := p.serialize()
		if err != nil {
			return err
		}
		hdr := make([]byte, sllLen)
		binary.BigEndian.PutUint16(hdr[0:], sllPacketType[p.dir])
		binary.BigEndian.PutUint16(hdr[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(hdr[14:], proto)
		full := append(hdr, data...)
		captured := full[:min(len(full), 128)]
		at = at.Add(time.Millisecond)
		ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(captured), Length: len(full), InterfaceIndex: p.ifindex - 1}
		if err := pw.WritePacket(ci, captured); err != nil {
			return err
		}
	}
	return pw.Flush()
}

// serialize builds the packet: IP, then TCP, UDP or ICMP, then zeros up to
// its length.
func (p scenarioPacket) serialize() ([]byte, uint16, error) {
	var net gopacket.SerializableLayer
	var ethType layers.EthernetType
	var ipProto layers.IPProtocol
	switch p.proto {
	case "tcp":
		ipProto = layers.IPProtocolTCP
	case "udp":
		ipProto = layers.IPProtocolUDP
	default:
		ipProto = layers.IPProtocolICMPv4
		if p.src.Addr().Is6() {
			ipProto = layers.IPProtocolICMPv6
		}
	}
	var ip4 *layers.IPv4
	var ip6 *layers.IPv6
	if p.src.Addr().Is4() {
		ip4 = &layers.IPv4{Version: 4, TTL: 64, Protocol: ipProto, SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
		net, ethType = ip4, layers.EthernetTypeIPv4
	} else {
		ip6 = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: ipProto, SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
		net, ethType = ip6, layers.EthernetTypeIPv6
	}
	var l4 gopacket.SerializableLayer
	hdrLen := 20
	if ip6 != nil {
		hdrLen = 40
	}
	switch p.proto {
	case "tcp":
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.src.Port()), DstPort: layers.TCPPort(p.dst.Port()), ACK: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(net.(gopacket.NetworkLayer))
		l4, hdrLen = tcp, hdrLen+20
	case "udp":
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
		udp.SetNetworkLayerForChecksum(net.(gopacket.NetworkLayer))
		l4, hdrLen = udp, hdrLen+8
	default:
		l4, hdrLen = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, hdrLen+8
	}
	buf := gopacket.NewSerializeBuffer()
	payload := gopacket.Payload(make([]byte, max(p.length-hdrLen, 0)))
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, net, l4, payload)
	return buf.Bytes(), uint16(ethType), err
}

// readFrames reads a capture back into frames.
func (s *scenario) readFrames(t *testing.T, path string) []frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (go test -run Capture -update writes it)", err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return frames
		}
		if err != nil || len(data) < sllLen {
			t.Fatalf("%s: packet %d: %v", path, len(frames)+1, err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil || intf.LinkType != layers.LinkTypeLinuxSLL {
			t.Fatalf("%s: packet %d: interface %d: %v, link type %v; want LINUX_SLL", path, len(frames)+1, ci.InterfaceIndex, err, intf.LinkType)
		}
		idx := ci.InterfaceIndex + 1
		dir := map[uint16]direction{0: dirIn, 1: dirIn, 2: dirIn, 3: dirOther, 4: dirOut}[binary.BigEndian.Uint16(data)]
		frames = append(frames, frame{
			ifindex:  idx,
			dir:      dir,
			loopback: s.loopback[idx],
			rawIP:    true, // the cooked header replaces the link-layer header
			proto:    binary.BigEndian.Uint16(data[14:]),
			length:   ci.Length - sllLen,
			data:     bytes.Clone(data[sllLen:]),
		})
	}
}

func TestCaptureGolden(t *testing.T) {
	for _, name := range []string{"mixed", "loopback", "bridge", "nat"} {
		t.Run(name, func(t *testing.T) {
			s := loadScenario(t, name)
			pcapPath := filepath.Join("testdata", "capture", name+".pcapng")
			if *update {
				var b bytes.Buffer
				if err := s.writePcap(&b); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(pcapPath, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			frames := s.readFrames(t, pcapPath)
			if len(frames) != len(s.packets) {
				t.Fatalf("%s holds %d packets, %s.txt says %d (go test -run Capture -update rewrites it)", pcapPath, len(frames), name, len(s.packets))
			}
			// --owners proc: the scenario finds owners as the /proc path does.
			out := s.run(t, frames, "proc", "--json", "--count", "1", "--owners", "proc")
			checkRowsAddUp(t, out)
			checkGolden(t, "capture_"+name, out)
			// A fresh scenario: a run adds to its processes' totals.
			out = loadScenario(t, name).run(t, frames, "proc", "--count", "1", "--owners", "proc")
			checkGolden(t, "capture_"+name+"_table", out)
			procs := rowBytes(t, out)
			out = loadScenario(t, name).run(t, frames, "conn", "--json", "--count", "1", "--owners", "proc")
			checkRowsAddUp(t, out)
			checkGolden(t, "capture_"+name+"_conn", out)
			out = loadScenario(t, name).run(t, frames, "conn", "--count", "1", "--owners", "proc")
			checkGolden(t, "capture_"+name+"_conn_table", out)
			if conns := rowBytes(t, out); conns != procs {
				t.Errorf("conn's rows add up to %+v, proc's to %+v", conns, procs)
			}
		})
	}
}

// TestCaptureGoldenBy groups the mixed scenario's rows by each key of
// --by, and by two: each group's bytes are those of the rows it replaces.
func TestCaptureGoldenBy(t *testing.T) {
	const name = "mixed"
	frames := loadScenario(t, name).readFrames(t, filepath.Join("testdata", "capture", name+".pcapng"))
	for _, tc := range []struct{ mode, by string }{
		{"proc", "program"}, {"proc", "user"}, {"proc", "container"}, {"proc", "netns"}, {"proc", "remote"},
		{"proc", "user,program"}, {"conn", "remote"}, {"conn", "container,user"},
	} {
		t.Run(tc.mode+"_"+tc.by, func(t *testing.T) {
			out := loadScenario(t, name).run(t, frames, tc.mode, "--json", "--count", "1", "--owners", "proc", "--by", tc.by)
			checkRowsAddUp(t, out)
			golden := "capture_" + name + "_" + tc.mode + "_by_" + strings.ReplaceAll(tc.by, ",", "_")
			checkGolden(t, golden, out)
			out = loadScenario(t, name).run(t, frames, tc.mode, "--count", "1", "--owners", "proc", "--by", tc.by)
			checkGolden(t, golden+"_table", out)
		})
	}
}

// rowBytes adds up the bytes of a table's rows, from the rate columns of
// a one-second interval (whole bytes below 1 KiB/s, as the scenarios are).
func rowBytes(t *testing.T, table []byte) (sum [2]float64) {
	t.Helper()
	rows := 0
	for line := range bytes.Lines(table) {
		f := strings.Fields(string(line))
		for i := 0; i+3 < len(f); i++ {
			if strings.HasSuffix(f[i+1], "/s") && strings.HasSuffix(f[i+3], "/s") {
				for k := range 2 {
					v, err := strconv.ParseFloat(f[i+2*k], 64)
					if err != nil {
						t.Fatalf("a rate that is no number in %q", line)
					}
					mult := map[string]float64{"B/s": 1, "KiB/s": 1024, "MiB/s": 1 << 20}[f[i+2*k+1]]
					sum[k] += v * mult
				}
				rows++
				break
			}
		}
	}
	if rows == 0 {
		t.Fatalf("no rows in %q", table)
	}
	return sum
}

// run runs netuse with args, through proc mode's real wiring, on the
// scenario's frames, and returns what it wrote to stdout.
func (s *scenario) run(t *testing.T, frames []frame, args ...string) []byte {
	t.Helper()
	return s.runWith(t, frames, nil, args...)
}

// runWith is run with setup, if not nil, changing the app first: a
// terminal's size, say.
func (s *scenario) runWith(t *testing.T, frames []frame, setup func(*app), args ...string) []byte {
	t.Helper()
	code, stdout, stderr := s.runSetup(frames, setup, args...)
	if code != 0 || stderr != "" {
		t.Fatalf("netuse %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// runOn runs netuse with args as run does, and returns its exit status and
// output; with term, stdout is a terminal of that size (columns, rows).
func (s *scenario) runOn(frames []frame, term *[2]int, args ...string) (code int, stdout []byte, stderr string) {
	return s.runSetup(frames, func(a *app) {
		if term != nil {
			a.tty = true
			a.termSize = func() (int, int, bool) { return term[0], term[1], true }
		}
	}, args...)
}

// runSetup runs netuse with args on the frames, setup (if not nil)
// changing the app first, and returns its exit status and output.
func (s *scenario) runSetup(frames []frame, setup func(*app), args ...string) (code int, stdout []byte, stderr string) {
	src := newFeeder(s.ifaces)
	src.batches = make(chan []frame, 1)
	src.batches <- frames // one block
	var fed sync.Once
	var out, errs bytes.Buffer
	now := epoch
	a := &app{
		stdout: &out,
		stderr: &errs,
		// The first interval ends once every frame was handed over.
		clock: clock{now: func() time.Time { return now }, sleep: func(_ context.Context, d time.Duration) error {
			fed.Do(func() { <-src.fed })
			now = now.Add(d)
			return nil
		}},
		proc:     s.procOS(src),
		counters: func() ([]counter, error) { return nil, nil },
	}
	if setup != nil {
		setup(a)
	}
	code = a.main(args)
	return code, out.Bytes(), errs.String()
}

// checkRowsAddUp checks that the rows of an NDJSON report (proc, conn or
// group records) add up to its capture record's bytes.
func checkRowsAddUp(t *testing.T, ndjson []byte) {
	t.Helper()
	var rx, tx uint64
	var capture struct{ RxBytes, TxBytes uint64 }
	n := 0
	for line := range bytes.Lines(ndjson) {
		var r struct {
			Type    string `json:"type"`
			RxBytes uint64 `json:"rx_bytes"`
			TxBytes uint64 `json:"tx_bytes"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		switch r.Type {
		case "proc", "conn", "group":
			rx, tx = rx+r.RxBytes, tx+r.TxBytes
		case "capture":
			capture.RxBytes, capture.TxBytes = r.RxBytes, r.TxBytes
			n++
		}
	}
	if n != 1 || rx != capture.RxBytes || tx != capture.TxBytes {
		t.Errorf("%d capture records; rows add up to rx %d tx %d, captured rx %d tx %d", n, rx, tx, capture.RxBytes, capture.TxBytes)
	}
}

// procOS is the scenario as proc mode's operating system: its socket
// table, processes and NAT table, and src for the capture.
func (s *scenario) procOS(src frameSource) procOS {
	return procOS{
		capture: func([]string) (frameSource, error) { return src, nil },
		records: func(*registry, socketTables) (*ownerRecords, error) {
			return nil, errors.New("a capture file has no owner records")
		},
		tables:    func(func(string)) socketTables { return scenarioTables{s} },
		lookup:    func() socketLookup { return noSocketLookup{} },
		owners:    func(*registry, bool) owners { return s.owners },
		conntrack: func() ([]natEntry, error) { return s.nat, nil },
		readable:  func() func(uint32) bool { return nil },
		liveName:  func(*process) (string, bool) { return "", false },
	}
}

// scenarioTables is a scenario's socket tables. Without local lines every
// address is local, and ours.
type scenarioTables struct{ s *scenario }

func (t scenarioTables) read() ([]socket, error) { return t.s.sockets, nil }
func (t scenarioTables) isLocal(ns uint64, a netip.Addr) bool {
	return len(t.s.local) == 0 || t.s.local[ns][a]
}
func (t scenarioTables) isOurs(a netip.Addr) bool {
	if f := t.s.isOurs(); f != nil {
		return f(a)
	}
	return true
}
func (t scenarioTables) ownAddr(uint64, netip.Addr) bool { return false }
func (t scenarioTables) netnsByCookie(uint64) uint64     { return 0 }
func (t scenarioTables) rescan() bool                    { return false }

// find is the kernel's lookup of one flow on the scenario's table: the
// connection's socket, else the listening or unconnected one of its local
// end.
func (t scenarioTables) find(fl flow) (socket, bool) {
	x := newSockIndex(t.s.sockets, nil)
	if s, ok := x.exact[fl]; ok {
		return s, true
	}
	return x.listener(fl)
}
func (t scenarioTables) close() {}

// noSocketLookup finds no socket: a capture file has no live sockets.
type noSocketLookup struct{}

func (noSocketLookup) lookup(flow) (socket, bool) { return socket{}, false }
func (noSocketLookup) close()                     {}

// feeder is a frameSource that hands over the batches of frames the test
// sends it, each as one block, until it is stopped.
type feeder struct {
	ifaces  []string      // by index - 1
	batches chan []frame  // the next batch
	fed     chan struct{} // a value once a batch was handed over
	stopped chan struct{} // closed by stop
	done    chan struct{} // closed when run returns
}

func newFeeder(ifaces []string) *feeder {
	return &feeder{ifaces: ifaces, batches: make(chan []frame), fed: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
}

func (f *feeder) run(s *sniffer) error {
	defer close(f.done)
	for {
		select {
		case b := <-f.batches:
			for i := range b {
				s.frame(&b[i])
			}
			s.endBlock()
			f.fed <- struct{}{}
		case <-f.stopped:
			return nil
		}
	}
}

func (f *feeder) stop() {
	close(f.stopped)
	<-f.done
}

func (f *feeder) rescan() {}

func (f *feeder) stats() captureStats {
	st := captureStats{ifaces: f.ifaces, names: map[int]string{}}
	for i, name := range f.ifaces {
		st.names[i+1] = name
	}
	return st
}
