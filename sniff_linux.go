package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Ring geometry of each capture socket. A frame takes its 48-byte header, a
// 20-byte link address and at most snapLen bytes, rounded to 16: about 272
// bytes, so the 8 MiB ring holds some 30,000 frames, 100 ms at 300,000
// frames a second: bench/run.sh's workload 5 (1,000 connections at once,
// up to 200,000 frames a second each way, on 2 cores with 20 busy
// processes) loses frames with 4 MiB and none with 8 MiB (BENCHMARKS.md).
// A block is handed over when full or after
// retireMillis, so that a new flow's first packet reaches the resolver
// quickly.
const (
	blockSize    = 256 << 10
	blockCount   = 32
	retireMillis = 10
)

// ring is one AF_PACKET socket with a TPACKET_V3 receive ring, bound to one
// interface, with its socket for connection openings.
type ring struct {
	fd       int
	syn      int // packet socket that gets only connection openings (synFilter), no ring; -1 if none
	index    int // the interface's index: a new interface of the same name has another
	iface    string
	loopback bool
	buf      []byte // the mmap'ed ring: blockCount blocks of blockSize
	next     int    // the block to read next
}

// capture reads frames from the rings of the interfaces it was opened on,
// and of those that rescan adds: it is proc mode's frameSource. The goroutine in run reads the rings and
// is the only one to open or close them; stop tells it to end, waits until
// it has, and only then closes the sockets and unmaps the rings, so that
// nothing is closed or unmapped under a reader.
type capture struct {
	globs   []string   // --iface: the interfaces to capture on; none: the default ones (captureIfaces)
	ifSeen  uint64     // the interface notifications rescan last saw (ifaceWatch)
	mu      sync.Mutex // guards rings, want and gone; run changes rings, stats reads them
	rings   []*ring
	want    []net.Interface   // set by rescan: the interfaces to capture on
	changed atomic.Bool       // want changed since run last looked
	gone    map[string]uint64 // drops of rings closed since the last stats, by interface
	wake    int               // eventfd that stop and rescan write to (poke), to end run's poll
	stopped atomic.Bool
	done    chan struct{} // closed when run returns
}

// errNoCapRaw is returned when the kernel refuses a packet socket.
var errNoCapRaw = errors.New("capturing packets needs the CAP_NET_RAW capability")

// openCapture opens a capture ring on each interface that globs pick (see
// captureIfaces).
func openCapture(globs []string) (frameSource, error) {
	var seen uint64
	watchedIfaces().changed(&seen) // before the list: a change after it is seen by rescan
	ifaces, err := captureIfaces(globs)
	if err != nil {
		return nil, err
	}
	c := &capture{done: make(chan struct{}), want: ifaces, globs: globs, ifSeen: seen}
	for _, i := range ifaces {
		r, err := openRing(i)
		if err != nil {
			c.closeRings()
			return nil, err
		}
		c.rings = append(c.rings, r)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		c.closeRings()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	c.wake = wake
	return c, nil
}

// rescan sets the interfaces to capture on to those that globs pick now;
// run opens rings on the new ones and closes those of interfaces no longer
// wanted or gone, before it reads on. An interface that cannot be opened
// is tried at the next rescan.
func (c *capture) rescan() {
	c.mu.Lock()
	open := len(c.rings) == len(c.want)
	c.mu.Unlock()
	if !watchedIfaces().changed(&c.ifSeen) && open {
		return // nothing changed, and no interface waits to be opened again
	}
	ifaces, _, err := pickIfaces(c.globs)
	if err != nil {
		return
	}
	c.mu.Lock()
	same := len(ifaces) == len(c.rings)
	for i := 0; same && i < len(ifaces); i++ {
		same = ifaces[i].Index == c.rings[i].index && ifaces[i].Name == c.rings[i].iface
	}
	if !same {
		c.want = ifaces
	}
	c.mu.Unlock()
	if !same {
		c.changed.Store(true)
		c.poke()
	}
}

// poke wakes run from its poll.
func (c *capture) poke() {
	one := [8]byte{1, 0, 0, 0, 0, 0, 0, 1} // any non-zero count wakes poll, whatever the byte order
	unix.Write(c.wake, one[:])
}

// apply opens and closes rings to match want; run calls it.
func (c *capture) apply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keep []*ring
	for _, r := range c.rings {
		if slices.ContainsFunc(c.want, func(i net.Interface) bool { return i.Index == r.index && i.Name == r.iface }) {
			keep = append(keep, r)
			continue
		}
		if c.gone == nil {
			c.gone = map[string]uint64{}
		}
		c.gone[r.iface] += r.drops()
		r.close()
	}
	for _, i := range c.want {
		if slices.ContainsFunc(keep, func(r *ring) bool { return i.Index == r.index && i.Name == r.iface }) {
			continue
		}
		if r, err := openRing(i); err == nil {
			keep = append(keep, r)
		}
	}
	// In the order of want, which is the kernel's order of interfaces.
	slices.SortFunc(keep, func(a, b *ring) int {
		return slices.IndexFunc(c.want, func(i net.Interface) bool { return i.Index == a.index }) -
			slices.IndexFunc(c.want, func(i net.Interface) bool { return i.Index == b.index })
	})
	c.rings = keep
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openRing(i net.Interface) (*ring, error) {
	// Protocol 0 receives nothing until bind, so no frame of another
	// interface slips in before the ring is bound to this one.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return nil, errNoCapRaw
	}
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	r := &ring{fd: fd, syn: -1, index: i.Index, iface: i.Name, loopback: i.Flags&net.FlagLoopback != 0}
	fail := func(what string, err error) (*ring, error) {
		r.close()
		return nil, fmt.Errorf("capture on %q: %s: %w", i.Name, what, err)
	}
	// Keep snapLen bytes of each frame: a classic BPF program of one
	// instruction, "return snapLen". The header still has the full length.
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: snapLen}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &prog[0]}); err != nil {
		return fail("attach snap length filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	req := unix.TpacketReq3{
		Block_size:     blockSize,
		Block_nr:       blockCount,
		Frame_size:     2048, // V3 packs frames tightly; the kernel only checks this divides the block
		Frame_nr:       blockSize / 2048 * blockCount,
		Retire_blk_tov: retireMillis,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("set up receive ring", err)
	}
	r.buf, err = unix.Mmap(fd, 0, blockSize*blockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED)
	if err != nil {
		// MAP_LOCKED fails under a small RLIMIT_MEMLOCK: map without it.
		r.buf, err = unix.Mmap(fd, 0, blockSize*blockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return fail("map receive ring", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: i.Index}); err != nil {
		return fail("bind", err)
	}
	if hasEthernetHeader(i.Name) { // synFilter reads Ethernet frames; others wait for the ring
		if r.syn, err = openSynSocket(i); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

// hasEthernetHeader reports whether the interface's frames start with an
// Ethernet header: Ethernet (ARPHRD_ETHER, 1) and loopback (772).
func hasEthernetHeader(name string) bool {
	b, err := os.ReadFile("/sys/class/net/" + name + "/type")
	t := strings.TrimSpace(string(b))
	return err == nil && (t == "1" || t == "772")
}

// openSynSocket opens a packet socket on i that receives the frames that
// open TCP connections, each as soon as it comes.
func openSynSocket(i net.Interface) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("capture on %q: open packet socket: %w", i.Name, err)
	}
	raw, err := bpf.Assemble(synFilter)
	if err == nil {
		prog := make([]unix.SockFilter, len(raw))
		for j, ins := range raw {
			prog[j] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
		}
		err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: i.Index})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("capture on %q: connection openings: %w", i.Name, err)
	}
	return fd, nil
}

func (r *ring) close() {
	if r.buf != nil {
		unix.Munmap(r.buf)
		r.buf = nil
	}
	unix.Close(r.fd)
	if r.syn >= 0 {
		unix.Close(r.syn)
	}
}

func (c *capture) closeRings() {
	for _, r := range c.rings {
		r.close()
	}
	c.rings = nil
}

// stats names the interfaces captured on and returns the frames the
// kernel dropped on every ring since the last call: reading
// PACKET_STATISTICS resets the kernel's counters. It may run beside run:
// the sockets stay open until stop.
func (c *capture) stats() captureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := captureStats{ifaces: make([]string, len(c.rings)), names: make(map[int]string, len(c.rings)), dropsBy: c.gone}
	c.gone = nil
	for i, r := range c.rings {
		st.ifaces[i] = r.iface
		st.names[r.index] = r.iface
		if n := r.drops(); n > 0 {
			if st.dropsBy == nil {
				st.dropsBy = map[string]uint64{}
			}
			st.dropsBy[r.iface] += n
		}
	}
	for _, n := range st.dropsBy {
		st.drops += n
	}
	return st
}

// stop ends run, waits for it, then closes the sockets. Call it once, from
// the goroutine that opened the capture, after starting run.
func (c *capture) stop() {
	c.stopped.Store(true)
	c.poke()
	<-c.done
	c.closeRings()
	unix.Close(c.wake)
}

// run reads frames until stop and hands them to s, a block at a time.
// Frames that open a TCP connection also go to s.opening, as soon as they
// come and before the ring hands them over.
func (c *capture) run(s *sniffer) error {
	defer close(c.done)
	var fds []unix.PollFd
	var f frame
	buf := make([]byte, snapLen)
	for changed := true; !c.stopped.Load(); {
		if c.changed.Swap(false) {
			c.apply()
			changed = true
		}
		if changed {
			// Poll the rings, then the connection-opening sockets, then wake.
			fds = fds[:0]
			for _, r := range c.rings {
				fds = append(fds, unix.PollFd{Fd: int32(r.fd), Events: unix.POLLIN})
			}
			for _, r := range c.rings {
				if r.syn >= 0 {
					fds = append(fds, unix.PollFd{Fd: int32(r.syn), Events: unix.POLLIN})
				}
			}
			fds = append(fds, unix.PollFd{Fd: int32(c.wake), Events: unix.POLLIN})
			changed = false
		}
		for _, r := range c.rings {
			for r.syn >= 0 && c.readSyn(r.syn, buf, &f) {
				s.opening(&f)
			}
		}
		busy := false
		for _, r := range c.rings {
			for r.readBlock(&f, s) {
				busy = true
			}
		}
		if busy {
			continue
		}
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll capture sockets: %w", err)
		}
		for i, r := range c.rings {
			if fds[i].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
				// The interface went down or away (ENETDOWN): reading the
				// socket error clears it. A ring of an interface that is
				// gone stays empty until the next rescan closes it.
				unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			}
		}
		if fds[len(fds)-1].Revents&unix.POLLIN != 0 {
			var b [8]byte
			unix.Read(c.wake, b[:]) // reset the eventfd
		}
	}
	return nil
}

// readSyn reads one frame from a connection-opening socket into f, if one
// is waiting.
func (c *capture) readSyn(fd int, buf []byte, f *frame) bool {
	n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
	ll, ok := from.(*unix.SockaddrLinklayer)
	if err != nil || !ok {
		return false
	}
	*f = frame{ifindex: ll.Ifindex, dir: dirIn, loopback: ll.Hatype == unix.ARPHRD_LOOPBACK,
		proto: htons(ll.Protocol), length: n, at: time.Now().UnixNano(), data: buf[:min(n, len(buf))]}
	if ll.Pkttype == unix.PACKET_OUTGOING {
		f.dir = dirOut
	}
	return true
}

// Offsets into the ring, from linux/if_packet.h.
const (
	blockStatusOff = 8                     // tpacket_block_desc.hdr.bh1.block_status
	sockaddrLLOff  = 48                    // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
	statusUser     = unix.TP_STATUS_USER   // the block belongs to user space
	statusKernel   = unix.TP_STATUS_KERNEL // hand the block back
)

// readBlock hands the frames of r's next block to s, if the kernel has
// filled it, gives the block back, and reports whether there was one.
func (r *ring) readBlock(f *frame, s *sniffer) bool {
	block := r.buf[r.next*blockSize : (r.next+1)*blockSize]
	status := (*uint32)(unsafe.Pointer(&block[blockStatusOff]))
	if atomic.LoadUint32(status)&statusUser == 0 {
		return false
	}
	h := (*unix.TpacketHdrV1)(unsafe.Pointer(&block[blockStatusOff]))
	off := int(h.Offset_to_first_pkt)
	for n := uint32(0); n < h.Num_pkts && off+sockaddrLLOff+unix.SizeofSockaddrLinklayer <= blockSize; n++ {
		hdr := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		ll := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&block[off+sockaddrLLOff]))
		start, end := off+int(hdr.Mac), off+int(hdr.Mac)+int(hdr.Snaplen)
		if end <= blockSize && start <= end {
			*f = frame{
				ifindex:  int(ll.Ifindex),
				loopback: r.loopback,
				rawIP:    hdr.Mac == hdr.Net, // no link-layer header (tun, WireGuard)
				proto:    htons(ll.Protocol),
				length:   int(hdr.Len),
				at:       int64(hdr.Sec)*1e9 + int64(hdr.Nsec),
				data:     block[start:end],
			}
			switch ll.Pkttype {
			case unix.PACKET_OUTGOING:
				f.dir = dirOut
			case unix.PACKET_OTHERHOST:
				f.dir = dirOther
			default: // PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST
				f.dir = dirIn
			}
			s.frame(f)
		}
		if hdr.Next_offset == 0 {
			break
		}
		off += int(hdr.Next_offset)
	}
	s.endBlock()
	atomic.StoreUint32(status, statusKernel)
	r.next = (r.next + 1) % blockCount
	return true
}

// drops returns the frames the kernel dropped on r since the last call.
func (r *ring) drops() uint64 {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return uint64(st.Drops)
}
