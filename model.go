package main

import (
	"net/netip"
	"time"
)

// The vocabulary every stage shares, each type said once, in the order
// data meets it: the kernel's interface counters (counter) of traffic;
// the packets the sniff stage decodes from captured frames (packet,
// direction) and what the capture says of itself (captureStats); what
// the command line chose (mode, options); the ends of conversations
// (flow), the processes traffic is credited to (process), and why some is
// credited to none (reason).
//
// The output's vocabulary is report.go's: a row (usage) and one
// interval's rows (report). Types that live with their stage: captured
// (proc.go), proc mode's capture record of an interval; filter (view.go);
// clock (tick.go).

// traffic is bytes and packets in each direction.
type traffic struct {
	rxBytes, txBytes     uint64
	rxPackets, txPackets uint64
}

func (t *traffic) add(u traffic) {
	t.rxBytes += u.rxBytes
	t.txBytes += u.txBytes
	t.rxPackets += u.rxPackets
	t.txPackets += u.txPackets
}

// counter is one interface's cumulative counters as the kernel keeps them.
type counter struct {
	name     string
	index    int  // the interface's index; a new interface of the same name has another
	loopback bool // the interface is a loopback device
	virtual  bool // the interface has no device below it (veth, bridge, tunnel, ...)
	down     bool // not up, or up without a carrier (a cable out, a veth whose peer is down)
	traffic
	rxErrors, txErrors uint64
	rxDrops, txDrops   uint64
}

// direction is where a captured frame went, as the kernel's packet type says.
type direction uint8

const (
	dirIn    direction = iota // addressed to this host (unicast, broadcast or multicast)
	dirOut                    // sent by this host
	dirOther                  // for another host, seen because the interface is promiscuous
)

// packet is what netuse keeps of a frame: where and when it was seen, its
// size, direction and flow. The decoder fills it (sniff_decode.go).
type packet struct {
	ifindex  int
	loopback bool  // seen on a loopback interface, where both ends are on this host
	at       int64 // when the kernel captured it, Unix ns; 0 if not known
	// length is the frame's length as its interface's counters count it:
	// on loopback without the Ethernet header (see decode)
	length int
	dir    direction
	// ok: the frame is TCP or UDP over IPv4 or IPv6 and src and dst are its
	// endpoints; otherwise only length and direction are known.
	ok    bool
	proto uint8 // IP protocol number: 6 TCP, 17 UDP
	// fragment: an IP fragment after the first whose first fragment was
	// not seen, of a datagram that may be TCP or UDP; its flow is not
	// known (ok is false).
	fragment bool
	src, dst netip.AddrPort
}

// captureStats is what a frame source says of itself each interval.
type captureStats struct {
	ifaces []string
	names  map[int]string // the names of ifaces by index
	drops  uint64         // frames the kernel dropped for want of room in a ring
	// dropsBy holds drops by interface name, those of none left out; nil
	// when there were none
	dropsBy map[string]uint64
}

// mode is what netuse reports on, as its command names it.
type mode uint8

const (
	modeTotal mode = iota // the whole machine, one row
	modeIface             // a row per interface
	modeProc              // a row per process
	modeConn              // a row per connection
	modeServe             // the exporter: no rows, metrics
)

var modeNames = [...]string{modeTotal: "total", modeIface: "iface", modeProc: "proc", modeConn: "conn", modeServe: "serve"}

func (m mode) String() string { return modeNames[m] }

// captures reports whether the mode's rows come from packet capture, and
// are credited to processes.
func (m mode) captures() bool { return m == modeProc || m == modeConn }

// options are the flags that every mode shares.
type options struct {
	interval      time.Duration // sampling period, > 0
	count         int           // intervals to report; 0 means until interrupted
	globs         []string      // --iface; none means the mode's default interfaces
	sort          string        // column to sort by; "" means the mode's default
	top           int           // rows to show; 0 means all
	maxFlows      int           // proc: flow ends the accountant keeps at once
	owners        string        // proc: "bpf", "proc", or "auto" (bpf, else proc)
	source        string        // proc: where bytes are counted: "capture" or "kernel" ("auto" is read as capture)
	packetSenders bool          // proc, --source kernel: credit packet sockets' frames (a tcx program on each interface)
	by            []string      // proc, conn: --by's keys, in its order; none: no groups
	filter        filter        // proc, conn: the rows to keep
	resolve       bool          // conn, proc --by remote: names for remote addresses
	state         string        // total, iface: --state's file; "" for none
	mode          mode          // proc, conn: the command, for messages
	conns         bool          // proc, conn: the accountant makes connection rows (see view)
	states        bool          // conn: the resolver reads TCP states for them
}

// flow is one end of a conversation, seen from this host.
type flow struct {
	proto         uint8 // 6 TCP, 17 UDP
	local, remote netip.AddrPort
}

// reason says why traffic has no process.
type reason uint8

const (
	attributed   reason = iota
	noSocket            // no socket in the table matches the flow
	noOwner             // the socket has no process: closed, TIME_WAIT, or its process is gone
	notReadable         // the socket's process could not be read (no CAP_SYS_PTRACE)
	notTCPUDP           // not TCP or UDP over IP, or not decodable
	notForHost          // addressed to another host, seen in promiscuous mode
	tableFull           // a new flow while the flow table was full (see maxFlows)
	lostFragment        // an IP fragment after the first whose first fragment was not seen
	numReasons
)

// reasonKey names a reason in NDJSON; reasonName in the table.
var (
	reasonKey  = [numReasons]string{"", "no_socket", "no_owner", "not_readable", "not_tcp_udp", "not_for_host", "flow_table_full", "fragment_unmatched"}
	reasonName = [numReasons]string{"", "(no socket)", "(no owner)", "(not readable)", "(not TCP/UDP)", "(not for host)", "(flow table full)", "(fragment unmatched)"}
)

// process owns traffic: a process, or for pid 0 a reason it has none.
// Everything but the counters is set once, when it is found.
type process struct {
	pid     int
	start   uint64    // start time in clock ticks after boot; pid and start identify a process
	started time.Time // start, as a time; zero if not known
	name    string    // as ps -o comm shows it, from /proc/<pid>/comm
	user    string
	cmdline string
	netns   uint64 // the network namespace's inode number; 0 if unknown
	cgroup  string // the cgroup path, which names the container or service
	foreign bool   // in another network namespace than the host's (pid 1's): a container
	reason  reason // why pid 0 rows have no process

	cur   traffic // since the last report; guarded by accountant.mu
	total traffic // since netuse started; guarded by accountant.mu

	live     string // the name at the last read of /proc (pipeline.report); only the reporting goroutine touches these three
	liveRead uint64 // the report that read it; 0: never read
	nsName   string // foreign: the name ip netns gives its namespace; "" if none
}
