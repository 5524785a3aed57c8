package main

// Fuzz targets for the Linux parsers of outside data: inet_diag messages,
// /proc/<pid>/stat, status and cgroup, the fd and namespace links,
// /proc/net/nf_conntrack, /proc/loadavg, and the blocks of the capture
// ring. See fuzz_test.go for how to run them and rewrite the seeds.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzParseDiagMsg reads an inet_diag_msg (at least inetDiagMsgLen bytes,
// which query checks) and checks that ports, uid, inode and state are the bytes
// where inet_diag.h has them, that an AF_INET message has IPv4 addresses,
// that no address stays IPv4-mapped, and that writing the socket back
// with putDiagAddr and reading it again gives the same socket.
func FuzzParseDiagMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, m []byte, tcp bool) {
		if len(m) < inetDiagMsgLen {
			m = append(m, make([]byte, inetDiagMsgLen-len(m))...)
		}
		proto := uint8(unix.IPPROTO_UDP)
		if tcp {
			proto = unix.IPPROTO_TCP
		}
		s := parseDiagMsg(proto, m)
		ne := binary.NativeEndian
		if s.proto != proto || s.local.Port() != binary.BigEndian.Uint16(m[4:]) || s.remote.Port() != binary.BigEndian.Uint16(m[6:]) ||
			s.uid != ne.Uint32(m[diagMsgUIDOff:]) || s.inode != uint64(ne.Uint32(m[diagMsgInodeOff:])) || s.state != tcpState(m[1]) {
			t.Fatalf("parseDiagMsg(%x) = %+v: fields not where inet_diag.h has them", m, s)
		}
		for _, a := range []netip.Addr{s.local.Addr(), s.remote.Addr()} {
			if !a.IsValid() || a.Is4In6() || (m[0] == unix.AF_INET && !a.Is4()) {
				t.Fatalf("parseDiagMsg(%x), family %d: address %v", m, m[0], a)
			}
		}
		again := parseDiagMsg(proto, diagMsg(m[0], s))
		if again != s {
			t.Fatalf("parseDiagMsg of its own socket written back: %+v, want %+v", again, s)
		}
	})
}

// diagMsg writes s as the kernel writes an inet_diag_msg of family.
func diagMsg(family uint8, s socket) []byte {
	m := make([]byte, inetDiagMsgLen)
	m[0], m[1] = family, byte(s.state)
	binary.BigEndian.PutUint16(m[4:], s.local.Port())
	binary.BigEndian.PutUint16(m[6:], s.remote.Port())
	putDiagAddr(m[8:24], s.local.Addr(), family)
	putDiagAddr(m[24:40], s.remote.Addr(), family)
	binary.NativeEndian.PutUint32(m[diagMsgUIDOff:], s.uid)
	binary.NativeEndian.PutUint32(m[diagMsgInodeOff:], uint32(s.inode))
	return m
}

// statLine is /proc/<pid>/stat as the kernel writes it (fs/proc/array.c):
// the name raw, unescaped, between parentheses.
func statLine(pid int, comm string, start uint64) []byte {
	return fmt.Appendf(nil, "%d (%s) S 1 %d %d 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 %d 8392704 750 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n",
		pid, comm, pid, pid, start)
}

// kernelComm cuts a name as the kernel keeps it: at most 15 bytes
// (TASK_COMM_LEN less the NUL), no NUL.
func kernelComm(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	return s[:min(len(s), 15)]
}

// FuzzParseStat checks parseStatName and parseStartTime: on any input they
// return what is there (a name between parentheses in the input, a start
// time that is a number in it), and on a stat line of any name, spaces,
// parentheses and newlines included, they return that name and start time.
func FuzzParseStat(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, comm string, start uint64) {
		if name := parseStatName(raw); name != "" && !bytes.Contains(raw, []byte("("+name+")")) {
			t.Fatalf("parseStatName(%q) = %q, not a name in parentheses there", raw, name)
		}
		if v, ok := parseStartTime(raw); ok && !bytes.Contains(raw, []byte(strconv.FormatUint(v, 10))) {
			t.Fatalf("parseStartTime(%q) = %d, not a number there", raw, v)
		}
		comm = kernelComm(comm)
		line := statLine(4242, comm, start)
		if got := parseStatName(line); got != comm {
			t.Fatalf("parseStatName(%q) = %q, want %q", line, got, comm)
		}
		if got, ok := parseStartTime(line); !ok || got != start {
			t.Fatalf("parseStartTime(%q) = %d, %v; want %d", line, got, ok, start)
		}
	})
}

// statusText is /proc/<pid>/status as the kernel writes it: the name with
// '\\' and control characters escaped (proc_task_name, ESCAPE_SPACE |
// ESCAPE_SPECIAL), so that it cannot start a line of its own.
func statusText(comm string, uids [4]uint32) []byte {
	esc := strings.NewReplacer("\\", `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`, "\v", `\v`, "\f", `\f`, "\a", `\a`, "\b", `\b`, "\x1b", `\e`)
	return fmt.Appendf(nil, "Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\nTracerPid:\t0\n"+
		"Uid:\t%d\t%d\t%d\t%d\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\nGroups:\t4 24 27 1000 \nVmPeak:\t  10000 kB\nThreads:\t1\n",
		esc.Replace(comm), uids[0], uids[1], uids[2], uids[3])
}

// FuzzParseEffectiveUID checks that a uid read from any input is a number
// in it, and that the effective uid of a status file of any name and uids
// is read as it is.
func FuzzParseEffectiveUID(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, comm string, real, eff uint32) {
		if uid, ok := parseEffectiveUID(raw); ok && (!bytes.Contains(raw, []byte("Uid:")) || !bytes.Contains(raw, []byte(strconv.FormatUint(uint64(uid), 10)))) {
			t.Fatalf("parseEffectiveUID(%q) = %d, not a uid there", raw, uid)
		}
		status := statusText(kernelComm(comm), [4]uint32{real, eff, eff, eff})
		if got, ok := parseEffectiveUID(status); !ok || got != eff {
			t.Fatalf("parseEffectiveUID(%q) = %d, %v; want %d", status, got, ok, eff)
		}
	})
}

// FuzzParseCgroup checks that the path read from any input is a line's
// third field there, and that the path of a cgroup file, v2, hybrid or v1
// with systemd's hierarchy, is read as the kernel wrote it. A path is any
// bytes but NUL and newline.
func FuzzParseCgroup(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, path string) {
		if got := parseCgroup(raw); got != "" && (strings.Contains(got, "\n") || !bytes.Contains(raw, []byte(":"+got))) {
			t.Fatalf("parseCgroup(%q) = %q, not a path there", raw, got)
		}
		path = "/" + strings.NewReplacer("\n", "", "\x00", "").Replace(path)
		for _, file := range []string{
			"0::" + path + "\n",
			"12:pids:/user.slice/user-1000.slice\n1:name=systemd:/user.slice\n0::" + path + "\n",
			"12:pids:/system.slice\n3:cpu,cpuacct:/\n1:name=systemd:" + path + "\n",
		} {
			if got := parseCgroup([]byte(file)); got != path {
				t.Fatalf("parseCgroup(%q) = %q, want %q", file, got, path)
			}
		}
	})
}

// FuzzSocketInode checks that an inode is read only from a link
// "socket:[N]", as N, and that every such link is read.
func FuzzSocketInode(f *testing.F) {
	f.Fuzz(func(t *testing.T, link []byte, ino uint64) {
		if got, ok := socketInode(link); ok {
			digits, found := bytes.CutPrefix(link, []byte("socket:["))
			digits, closed := bytes.CutSuffix(digits, []byte("]"))
			n, err := strconv.ParseUint(string(digits), 10, 64)
			if !found || !closed || err != nil || n != got {
				t.Fatalf("socketInode(%q) = %d, but it is not socket:[%d]", link, got, got)
			}
		}
		link = fmt.Appendf(nil, "socket:[%d]", ino)
		if got, ok := socketInode(link); !ok || got != ino {
			t.Fatalf("socketInode(%q) = %d, %v; want %d", link, got, ok, ino)
		}
	})
}

// FuzzNetnsOf reads namespace links made with any target: an inode only
// from "net:[N]", and every such link.
func FuzzNetnsOf(f *testing.F) {
	link := filepath.Join(f.TempDir(), "net")
	read := func(t *testing.T, target string) (uint64, bool, bool) {
		os.Remove(link)
		if os.Symlink(target, link) != nil {
			return 0, false, false // NUL, empty or too long: no link can hold it
		}
		n, ok := netnsOf(link)
		return n, ok, true
	}
	f.Fuzz(func(t *testing.T, target string, ino uint64) {
		if got, ok, made := read(t, target); made && ok {
			digits, found := strings.CutPrefix(target, "net:[")
			digits, closed := strings.CutSuffix(digits, "]")
			if n, err := strconv.ParseUint(digits, 10, 64); !found || !closed || err != nil || n != got {
				t.Fatalf("netnsOf(-> %q) = %d, but it is not net:[%d]", target, got, got)
			}
		}
		target = fmt.Sprintf("net:[%d]", ino)
		if got, ok, _ := read(t, target); !ok || got != ino {
			t.Fatalf("netnsOf(-> %q) = %d, %v; want %d", target, got, ok, ino)
		}
	})
}

// conntrackAddr writes an address as nf_conntrack does: IPv4 dotted
// (%pI4), IPv6 in full, every group of four digits (%pI6).
func conntrackAddr(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var s strings.Builder
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			s.WriteByte(':')
		}
		fmt.Fprintf(&s, "%02x%02x", b[i], b[i+1])
	}
	return s.String()
}

// FuzzParseConntrack checks the entries read from any input (TCP or UDP,
// four valid, unmapped endpoints, at most one a line) and that an entry
// written as the kernel writes it is read back as it was.
func FuzzParseConntrack(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, tuple []byte, tcp, v6 bool) {
		es := parseConntrack(raw)
		if len(es) > bytes.Count(raw, []byte("\n"))+1 {
			t.Fatalf("parseConntrack(%q): %d entries from fewer lines", raw, len(es))
		}
		for _, e := range es {
			for _, ap := range []netip.AddrPort{e.origSrc, e.origDst, e.replySrc, e.replyDst} {
				if !ap.Addr().IsValid() || ap.Addr().Is4In6() {
					t.Fatalf("parseConntrack(%q): entry %+v has endpoint %v", raw, e, ap)
				}
			}
			if e.proto != 6 && e.proto != 17 {
				t.Fatalf("parseConntrack(%q): entry of protocol %d", raw, e.proto)
			}
		}

		tuple = append(tuple, make([]byte, 4*16+4*2)...)
		var aps [4]netip.AddrPort
		for i := range aps {
			var a netip.Addr
			if v6 {
				a = netip.AddrFrom16([16]byte(tuple[i*16:]))
			} else {
				a = netip.AddrFrom4([4]byte(tuple[i*16:]))
			}
			aps[i] = netip.AddrPortFrom(a, binary.BigEndian.Uint16(tuple[64+2*i:]))
		}
		fam, famNum, name, num, state := "ipv4", 2, "udp", 17, "25 "
		if v6 {
			fam, famNum = "ipv6", 10
		}
		if tcp {
			name, num, state = "tcp", 6, "431999 ESTABLISHED "
		}
		line := fmt.Sprintf("%-8s %d %-8s %d %ssrc=%s dst=%s sport=%d dport=%d src=%s dst=%s sport=%d dport=%d [ASSURED] mark=0 zone=0 use=2\n",
			fam, famNum, name, num, state,
			conntrackAddr(aps[0].Addr()), conntrackAddr(aps[1].Addr()), aps[0].Port(), aps[1].Port(),
			conntrackAddr(aps[2].Addr()), conntrackAddr(aps[3].Addr()), aps[2].Port(), aps[3].Port())
		for i := range aps {
			aps[i] = netip.AddrPortFrom(aps[i].Addr().Unmap(), aps[i].Port())
		}
		want := natEntry{uint8(num), aps[0], aps[1], aps[2], aps[3]}
		if got := parseConntrack([]byte(line)); len(got) != 1 || got[0] != want {
			t.Fatalf("parseConntrack(%q) = %+v, want %+v", line, got, want)
		}
	})
}

// FuzzProcPids reads /proc/<id>/status for a thread's process and
// /proc/loadavg for the last pid, in a fake /proc, and checks that what
// the kernel writes is read back.
func FuzzProcPids(f *testing.F) {
	root := f.TempDir()
	if err := os.Mkdir(filepath.Join(root, "7"), 0o755); err != nil {
		f.Fatal(err)
	}
	p := &procfs{root: root}
	write := func(t *testing.T, status, loadavg []byte) {
		if os.WriteFile(filepath.Join(root, "7", "status"), status, 0o644) != nil ||
			os.WriteFile(filepath.Join(root, "loadavg"), loadavg, 0o644) != nil {
			t.Fatal("write the fake /proc")
		}
	}
	f.Fuzz(func(t *testing.T, status, loadavg []byte, pid uint32) {
		write(t, status, loadavg)
		if got, ok := p.tgid(7); ok && !bytes.Contains(status, []byte("Tgid:")) {
			t.Fatalf("tgid of status %q = %d without a Tgid line", status, got)
		}
		if got, ok := p.lastPid(); ok && !bytes.Contains(loadavg, []byte(strconv.Itoa(got))) {
			t.Fatalf("lastPid of loadavg %q = %d, not a number there", loadavg, got)
		}
		pid = pid%4194304 + 1 // 1 to PID_MAX_LIMIT
		st := bytes.Replace(statusText("worker", [4]uint32{1000, 1000, 1000, 1000}), []byte("Tgid:\t4242"), fmt.Appendf(nil, "Tgid:\t%d", pid), 1)
		write(t, st, fmt.Appendf(nil, "0.52 0.58 0.59 2/1234 %d\n", pid))
		if got, ok := p.tgid(7); !ok || got != int(pid) {
			t.Fatalf("tgid of %q = %d, %v; want %d", st, got, ok, pid)
		}
		if got, ok := p.lastPid(); !ok || got != int(pid) {
			t.Fatalf("lastPid = %d, %v; want %d", got, ok, pid)
		}
	})
}

// FuzzReadBlock hands readBlock a ring block whose first bytes are the
// input: it must stay inside the block (a frame's data is a slice of it),
// hand over at most the block's packet count of frames, all in one block
// to the sniffer's receiver, give the block back and move on, and leave a
// block the kernel still owns alone.
func FuzzReadBlock(f *testing.F) {
	r := &ring{buf: make([]byte, blockSize)}
	f.Fuzz(func(t *testing.T, data []byte) {
		clear(r.buf)
		copy(r.buf, data)
		alignOffsets(r.buf)
		r.next = 0
		hdr := (*unix.TpacketHdrV1)(unsafe.Pointer(&r.buf[blockStatusOff]))
		user, npkts := hdr.Block_status&statusUser != 0, hdr.Num_pkts
		var blocks int
		var frames uint32
		s := newSniffer(func(block []packet) {
			blocks++
			frames += uint32(len(block))
		}, nil)
		got := r.readBlock(&frame{}, s)
		if got != user {
			t.Fatalf("readBlock = %v for a block with status %#x", got, hdr.Block_status)
		}
		if !user {
			if blocks != 0 || r.next != 0 {
				t.Fatalf("readBlock touched a block the kernel owns")
			}
			return
		}
		if blocks > 1 || (blocks == 0) != (frames == 0) || frames > npkts || len(s.block) != 0 || hdr.Block_status != statusKernel || r.next != 1 {
			t.Fatalf("readBlock: %d blocks handed over, %d of %d frames, %d left, status %#x, next %d", blocks, frames, npkts, len(s.block), hdr.Block_status, r.next)
		}
	})
}

// alignOffsets rounds the offsets of the frame headers down to the 16 bytes
// the kernel aligns them to (TPACKET_ALIGNMENT), so that readBlock's
// unsafe casts are of aligned pointers, as they are in a real ring (the
// race detector's checkptr checks it).
func alignOffsets(block []byte) {
	hdr := (*unix.TpacketHdrV1)(unsafe.Pointer(&block[blockStatusOff]))
	hdr.Offset_to_first_pkt &^= 15
	off := int(hdr.Offset_to_first_pkt)
	for n := uint32(0); n < hdr.Num_pkts && off+sockaddrLLOff+unix.SizeofSockaddrLinklayer <= blockSize; n++ {
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		h.Next_offset &^= 15
		if h.Next_offset == 0 {
			break
		}
		off += int(h.Next_offset)
	}
}

// Seeds.

func diagSeeds() map[string][]any {
	sock := func(local, remote string, uid uint32, inode uint64) socket {
		return socket{local: netip.MustParseAddrPort(local), remote: netip.MustParseAddrPort(remote), uid: uid, inode: inode}
	}
	v4mapped := diagMsg(unix.AF_INET6, sock("[::ffff:192.0.2.1]:40000", "[::ffff:198.51.100.7]:443", 1000, 123456))
	return map[string][]any{
		"tcp4":          {diagMsg(unix.AF_INET, sock("192.0.2.1:40000", "198.51.100.7:443", 1000, 123456)), true},
		"tcp6":          {diagMsg(unix.AF_INET6, sock("[2001:db8::1]:40000", "[2001:db8::7]:443", 0, 99)), true},
		"udp6-wildcard": {diagMsg(unix.AF_INET6, sock("[::]:5353", "[::]:0", 107, 4242)), false},
		"udp4-listener": {diagMsg(unix.AF_INET, sock("0.0.0.0:53", "0.0.0.0:0", 0, 17)), false},
		"v4-mapped":     {v4mapped, true},
		"family-0":      {append([]byte{0}, v4mapped[1:]...), true},
		"short":         {[]byte{unix.AF_INET, 1, 2}, false},
		"inode-max":     {diagMsg(unix.AF_INET, sock("127.0.0.1:1", "127.0.0.1:2", 65534, 1<<32-1)), true},
	}
}

func statSeeds() map[string][]any {
	return map[string][]any{
		"systemd":        {[]byte("1 (systemd) S 0 1 1 0 -1 4194560 46343 2184432 106 1233 70 113 3393 1406 20 0 1 0 12 23592960 3224"), "systemd", uint64(12)},
		"parens":         {statLine(42, "a) b) c", 98765), "a) b) c", uint64(98765)},
		"spaces":         {statLine(7, "Web Content", 1), "Web Content", uint64(1)},
		"newline":        {statLine(7, "x\n1 (y) R", 5), ") 1 2 3 4 5 6 7", uint64(1<<64 - 1)},
		"open-paren":     {[]byte("42 (x(y R 1 2"), "((", uint64(0)},
		"short":          {[]byte("42 (x) R 1 2 3"), "", uint64(0)},
		"no-parenthesis": {[]byte("no parenthesis"), "kworker/0:1H", uint64(3)},
		"empty":          {[]byte(""), "", uint64(0)},
		"reversed":       {[]byte(") 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 ("), "x", uint64(20)},
	}
}

func uidSeeds() map[string][]any {
	return map[string][]any{
		"user":      {statusText("bash", [4]uint32{1000, 1000, 1000, 1000}), "bash", uint32(1000), uint32(1000)},
		"setuid":    {statusText("sudo", [4]uint32{1000, 0, 0, 0}), "sudo", uint32(1000), uint32(0)},
		"name-uid":  {[]byte("Name:\tx\\nUid:\t5\t5\t5\t5\nUid:\t6\t7\t7\t7\n"), "x\nUid:\t5\t5", uint32(6), uint32(7)},
		"short-uid": {[]byte("Uid:\t1000\n"), "", uint32(0), uint32(1<<32 - 1)},
		"too-big":   {[]byte("Uid:\t1\t4294967296\t0\t0\n"), "a b", uint32(1), uint32(2)},
		"no-uid":    {[]byte("Name:\tbash\nGid:\t0\t0\t0\t0\n"), "bash", uint32(0), uint32(0)},
		"crlf":      {[]byte("Uid:\t1\t2\t3\t4\r\n"), "", uint32(1), uint32(2)},
	}
}

func cgroupSeeds() map[string][]any {
	return map[string][]any{
		"v2":       {[]byte("0::/system.slice/docker-3f2a.scope\n"), "system.slice/docker-3f2a.scope"},
		"hybrid":   {[]byte("12:pids:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n0::/user.slice/user-1000.slice/session-2.scope\n"), "user.slice"},
		"v1":       {[]byte("12:pids:/docker/3f2a\n4:cpu,cpuacct:/docker/3f2a\n1:name=systemd:/docker/3f2a\n"), "docker/3f2a"},
		"root":     {[]byte("0::/\n"), ""},
		"colons":   {[]byte("0::/a:b:c\n"), "a:b:c"},
		"spaces":   {[]byte("0::/my cgroup\n"), "my cgroup"},
		"garbage":  {[]byte("garbage\n::\n"), "x"},
		"empty":    {[]byte(""), ""},
		"no-final": {[]byte("5:memory:/m"), "z"},
	}
}

func inodeSeeds() map[string][]any {
	return map[string][]any{
		"socket":   {[]byte("socket:[12345]"), uint64(12345)},
		"zero":     {[]byte("socket:[0]"), uint64(0)},
		"empty":    {[]byte("socket:[]"), uint64(1)},
		"letters":  {[]byte("socket:[12a]"), uint64(1 << 32)},
		"pipe":     {[]byte("pipe:[12345]"), uint64(7)},
		"file":     {[]byte("/dev/null"), uint64(8)},
		"max":      {[]byte("socket:[18446744073709551615]"), uint64(1<<64 - 1)},
		"overflow": {[]byte("socket:[18446744073709551616]"), uint64(9)},
		"sign":     {[]byte("socket:[+1]"), uint64(10)},
		"anon":     {[]byte("anon_inode:[eventfd]"), uint64(11)},
	}
}

func netnsSeeds() map[string][]any {
	return map[string][]any{
		"init":     {"net:[4026531840]", uint64(4026531840)},
		"other":    {"net:[4026532305]", uint64(4026532305)},
		"mnt":      {"mnt:[4026531841]", uint64(1)},
		"empty":    {"net:[]", uint64(0)},
		"unclosed": {"net:[4026531840", uint64(1<<64 - 1)},
		"path":     {"/proc/1/ns/net", uint64(2)},
	}
}

func conntrackSeeds() map[string][]any {
	tuple := func(ss ...string) []byte {
		b := make([]byte, 4*16+4*2)
		for i, s := range ss {
			ap := netip.MustParseAddrPort(s)
			copy(b[i*16:], ap.Addr().AsSlice())
			binary.BigEndian.PutUint16(b[64+2*i:], ap.Port())
		}
		return b
	}
	dnat := tuple("203.0.113.7:50000", "192.0.2.10:8080", "172.17.0.2:80", "203.0.113.7:50000")
	v6 := tuple("[2001:db8::1]:1", "[2001:db8::2]:2", "[2001:db8::2]:2", "[2001:db8::1]:1")
	real := []byte("ipv4     2 tcp      6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.10 sport=50000 dport=8080 src=172.17.0.2 dst=203.0.113.7 sport=80 dport=50000 [ASSURED] mark=0 zone=0 use=2\n" +
		"ipv4     2 udp      17 25 src=172.17.0.2 dst=198.51.100.53 sport=5353 dport=53 [UNREPLIED] src=198.51.100.53 dst=192.0.2.10 sport=53 dport=61000 mark=0 zone=0 use=2\n" +
		"ipv6     10 tcp      6 119 TIME_WAIT src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0002 sport=1 dport=2 src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=2 dport=1 [ASSURED] mark=0 zone=0 use=2\n" +
		"ipv4     2 icmp     1 29 src=192.0.2.10 dst=198.51.100.1 type=8 code=0 id=7 src=198.51.100.1 dst=192.0.2.10 type=0 code=0 id=7 mark=0 use=2\n")
	return map[string][]any{
		"table":        {real, dnat, true, false},
		"v6":           {real[len(real)/2:], v6, true, true},
		"short-line":   {[]byte("ipv4 2 tcp 6 1 src=1.2.3.4 dst=5.6.7.8 sport=1\n"), tuple(), false, false},
		"bad-values":   {[]byte("ipv4 2 tcp 6 1 src=1.2.3.4 dst=5.6.7.8 sport=70000 dport=-1 src=x dst= sport= dport=\n"), tuple(), false, true},
		"zone":         {[]byte("ipv6 10 udp 17 1 src=fe80::1%eth0 dst=fe80::2 sport=1 dport=2 src=fe80::2 dst=fe80::1%eth0 sport=2 dport=1\n"), tuple(), false, true},
		"mapped":       {[]byte("ipv6 10 udp 17 1 src=::ffff:1.2.3.4 dst=::ffff:5.6.7.8 sport=1 dport=2 src=::ffff:5.6.7.8 dst=::ffff:1.2.3.4 sport=2 dport=1\n"), tuple(), true, true},
		"empty":        {[]byte(""), []byte{}, false, false},
		"extra-tuples": {[]byte("ipv4 2 udp 17 1 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=3.3.3.3 dst=4.4.4.4 sport=3 dport=4 src=5.5.5.5 sport=5\n"), tuple(), true, false},
	}
}

func pidSeeds() map[string][]any {
	return map[string][]any{
		"real":     {statusText("curl", [4]uint32{1000, 1000, 1000, 1000}), []byte("0.52 0.58 0.59 2/1234 98765\n"), uint32(98765)},
		"thread":   {[]byte("Name:\tcurl\nTgid:\t100\nPid:\t101\n"), []byte("0.00 0.00 0.00 1/1 101\n"), uint32(101)},
		"negative": {[]byte("Tgid:\t-1\n"), []byte("0 0 0 0 -5"), uint32(0)},
		"empty":    {[]byte(""), []byte(""), uint32(1<<32 - 1)},
		"garbage":  {[]byte("Tgid:\tx\n"), []byte("a b c d e f"), uint32(1)},
	}
}

// ringBlock is the start of a ring block that the kernel handed over, with
// frames of the given captured lengths, as TPACKET_V3 lays them out.
func ringBlock(lens ...int) []byte {
	const first = 48 // after the block descriptor, aligned
	b := make([]byte, first)
	ne := binary.NativeEndian
	ne.PutUint32(b[blockStatusOff:], statusUser)
	ne.PutUint32(b[blockStatusOff+4:], uint32(len(lens)))
	ne.PutUint32(b[blockStatusOff+8:], first)
	for i, n := range lens {
		const mac = 80 // frame header, sockaddr_ll, padding
		size := (mac + n + 15) &^ 15
		h := make([]byte, size)
		if i < len(lens)-1 {
			ne.PutUint32(h[0:], uint32(size))
		}
		ne.PutUint32(h[12:], uint32(n))      // tp_snaplen
		ne.PutUint32(h[16:], uint32(n+1000)) // tp_len
		ne.PutUint16(h[24:], mac)            // tp_mac
		ne.PutUint16(h[26:], mac+14)         // tp_net
		ll := h[sockaddrLLOff:]
		ne.PutUint16(ll[0:], unix.AF_PACKET)
		binary.BigEndian.PutUint16(ll[2:], 0x0800)
		ne.PutUint32(ll[4:], 2)       // ifindex
		ll[10] = unix.PACKET_OUTGOING // pkttype
		copy(h[mac:], eth(0x0800, tcp4("192.0.2.1", "198.51.100.7", 1, 2, tcpACK, 0)))
		b = append(b, h...)
	}
	return b
}

func ringSeeds() map[string][]any {
	mac := ringBlock(60)
	binary.NativeEndian.PutUint16(mac[48+24:], 65535) // tp_mac past the block
	snaplen := ringBlock(60)
	binary.NativeEndian.PutUint32(snaplen[48+12:], 1<<31) // tp_snaplen past the block
	loop := ringBlock(60, 60)
	binary.NativeEndian.PutUint32(loop[48:], 1<<31) // tp_next_offset past the block
	kernel := ringBlock(60)
	kernel[blockStatusOff] = 0
	return map[string][]any{
		"one":           {ringBlock(60)},
		"three":         {ringBlock(60, 192, 0)},
		"kernel-owns":   {kernel},
		"mac-outside":   {mac},
		"snaplen-large": {snaplen},
		"next-outside":  {loop},
		"empty":         {[]byte{}},
	}
}

// platformSeeds are the named seeds of the Linux targets, by target.
func platformSeeds() map[string]map[string][]any {
	return map[string]map[string][]any{
		"FuzzParseDiagMsg":      diagSeeds(),
		"FuzzParseStat":         statSeeds(),
		"FuzzParseEffectiveUID": uidSeeds(),
		"FuzzParseCgroup":       cgroupSeeds(),
		"FuzzSocketInode":       inodeSeeds(),
		"FuzzNetnsOf":           netnsSeeds(),
		"FuzzParseConntrack":    conntrackSeeds(),
		"FuzzProcPids":          pidSeeds(),
		"FuzzReadBlock":         ringSeeds(),
	}
}
