package main

import (
	"errors"
	"time"

	"golang.org/x/net/bpf"
)

// The sniff stage: frames from the kernel's capture rings (sniff_linux.go),
// or from a file in tests, are decoded in the goroutine that reads them
// (sniff_decode.go, sniff_frag.go) into small packet records, which go on
// to the accountant (attribute_flows.go) a block at a time; the frames that
// open a TCP connection also go to the opening resolver
// (attribute_openings.go) as soon as they come.

// frame is one captured frame as the capture hands it over. data is only
// valid until the next frame: the decoder copies what it keeps.
type frame struct {
	ifindex  int
	dir      direction
	loopback bool   // captured on a loopback interface
	rawIP    bool   // data starts at the network header (tun, cooked captures)
	proto    uint16 // EtherType of the network header, for rawIP frames
	length   int    // the frame's length on the wire, however much was captured
	at       int64  // when the kernel captured it, Unix ns; 0 if not known
	data     []byte // the captured bytes, at most the snap length
}

// frameSource is where proc mode's frames come from: the kernel's capture
// rings (openCapture), or a capture file in tests. run reads frames until
// stop and hands them to s; it is the only goroutine that calls s.
type frameSource interface {
	run(s *sniffer) error
	// stop ends run, waits for it, then closes what the source opened.
	stop()
	// rescan captures on the interfaces that match now, from the next
	// block on: interfaces come and go (containers, VPNs, hotplug).
	rescan()
	// stats returns the interfaces captured on, in the kernel's order, their
	// names by index, and the frames the kernel dropped since the last call.
	stats() captureStats
}

// errNotLinux is what proc mode says outside Linux, whose capture it
// reads.
var errNotLinux = errors.New("proc is supported on Linux only; total and iface work here")

// sniffer decodes frames with its one decoder, in the capture goroutine,
// and hands the packets of each block of frames to the accountant at once,
// so that the accountant takes its lock once a block, not once a frame.
type sniffer struct {
	dec   *decoder
	block []packet        // the packets of the block being read; reused
	at    int64           // the capture time of the last frame that had one, Unix ns
	flows func([]packet)  // takes a block's packets (accountant.add)
	open  func(p *packet) // takes a connection opening (resolver.opening); nil: none
}

func newSniffer(flows func([]packet), open func(*packet)) *sniffer {
	s := &sniffer{dec: newDecoder(), flows: flows, open: open}
	// Fragments are aged by their frame's time, which the capture gives:
	// no clock read per fragment.
	s.dec.now = func() time.Time { return time.Unix(0, s.at) }
	return s
}

// frame decodes one frame of a block.
func (s *sniffer) frame(f *frame) {
	// The kernel delivers each loopback packet twice to AF_PACKET: once
	// outgoing, once incoming. Count the incoming copy, as libpcap does.
	if f.loopback && f.dir == dirOut {
		return
	}
	if f.at != 0 {
		s.at = f.at
	}
	s.block = append(s.block, packet{})
	s.dec.decode(f, &s.block[len(s.block)-1])
}

// endBlock hands the block's packets on.
func (s *sniffer) endBlock() {
	if len(s.block) > 0 {
		s.flows(s.block)
		s.block = s.block[:0]
	}
}

// opening decodes a frame that opens a TCP connection (see synFilter) and
// hands it on, as soon as it comes: a short-lived process may close its
// socket a millisecond later.
func (s *sniffer) opening(f *frame) {
	if s.open == nil {
		return
	}
	var p packet
	s.dec.decode(f, &p)
	if p.ok {
		s.open(&p)
	}
}

// synFilter is a classic BPF program that keeps the TCP segments that open
// a connection (SYN without ACK) in Ethernet frames: IPv4 (not a later
// fragment) or IPv6 with TCP as its first next header. netuse reads them on
// a socket of their own, without the ring's batching delay, to find a new
// connection's process while its socket is still open.
var synFilter = []bpf.Instruction{
	/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
	/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipFalse: 8}, // not IPv4: 10
	/* 2 */ bpf.LoadAbsolute{Off: 14 + 9, Size: 1}, // IPv4 protocol
	/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 13},
	/* 4 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 2}, // flags and fragment offset
	/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 11},
	/* 6 */ bpf.LoadMemShift{Off: 14}, // X = IPv4 header length
	/* 7 */ bpf.LoadIndirect{Off: 14 + 13, Size: 1}, // TCP flags
	/* 8 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12}, // SYN and ACK
	/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x02, SkipTrue: 6, SkipFalse: 7},
	/* 10 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 6}, // not IPv6
	/* 11 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, // IPv6 next header
	/* 12 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 4},
	/* 13 */ bpf.LoadAbsolute{Off: 14 + 40 + 13, Size: 1}, // TCP flags
	/* 14 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12},
	/* 15 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x02, SkipTrue: 1},
	/* 16 */ bpf.RetConstant{Val: snapLen}, // keep it
	/* 17 */ bpf.RetConstant{Val: 0}, // drop it
}
