package main

import (
	"bufio"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// readConntrack reads the connection tracking table of netuse's namespace
// from /proc/net/nf_conntrack, where the kernel has it (CONFIG_NF_CONNTRACK_PROCFS):
//
//	ipv4 2 tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q src=C dst=D sport=R dport=S [ASSURED] ...
//
// the first four keys are the original direction, the next four the reply.
func readConntrack() ([]natEntry, error) {
	f, err := os.Open("/proc/net/nf_conntrack")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A line at a time, keeping only the entries that NAT rewrote: a flood
	// of packets to closed ports fills the table with hundreds of
	// thousands of entries (TestProcFlood, a million flows), and reading
	// the file whole took tens of megabytes at each pass.
	var es []natEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if e, ok := parseConntrackLine(sc.Text()); ok && e.natted() {
			es = append(es, e)
		}
	}
	return es, sc.Err()
}

// parseConntrack parses the lines of /proc/net/nf_conntrack.
func parseConntrack(b []byte) []natEntry {
	var es []natEntry
	for _, line := range strings.Split(string(b), "\n") {
		if e, ok := parseConntrackLine(line); ok {
			es = append(es, e)
		}
	}
	return es
}

// parseConntrackLine parses one line of /proc/net/nf_conntrack: a TCP or
// UDP entry with its original and reply tuples.
func parseConntrackLine(line string) (natEntry, bool) {
	f := strings.Fields(line)
	var e natEntry
	if len(f) < 3 {
		return e, false
	}
	switch f[2] {
	case "tcp":
		e.proto = 6
	case "udp":
		e.proto = 17
	default:
		return e, false
	}
	var addrs [4]netip.Addr
	var ports [4]uint16
	na, np := 0, 0
	for _, kv := range f[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "src", "dst":
			if a, err := netip.ParseAddr(v); err == nil && na < 4 {
				addrs[na] = a.Unmap()
				na++
			}
		case "sport", "dport":
			if p, err := strconv.ParseUint(v, 10, 16); err == nil && np < 4 {
				ports[np] = uint16(p)
				np++
			}
		}
	}
	if na != 4 || np != 4 {
		return e, false
	}
	e.origSrc, e.origDst = netip.AddrPortFrom(addrs[0], ports[0]), netip.AddrPortFrom(addrs[1], ports[1])
	e.replySrc, e.replyDst = netip.AddrPortFrom(addrs[2], ports[2]), netip.AddrPortFrom(addrs[3], ports[3])
	return e, true
}
