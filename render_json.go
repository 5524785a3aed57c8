package main

import (
	"bytes"
	"encoding/json"
	"time"
)

// NDJSON output: one object per row per interval, and for proc one
// capture record; the README documents every key.
type (
	recordHead struct {
		Type     string  `json:"type"`
		TS       string  `json:"ts"`
		Seq      int     `json:"seq"`
		Interval float64 `json:"interval"`
		// Partial: the run was interrupted before the interval was over;
		// interval is the time it lasted.
		Partial bool `json:"partial,omitempty"`
	}
	// counts are the four counters of traffic, as every record names
	// them.
	counts struct {
		RxBytes   uint64 `json:"rx_bytes"`
		TxBytes   uint64 `json:"tx_bytes"`
		RxPackets uint64 `json:"rx_packets"`
		TxPackets uint64 `json:"tx_packets"`
	}
	// trafficFields are a row's traffic in the interval, and its totals.
	trafficFields struct {
		counts
		RxRate  float64 `json:"rx_rate"`
		TxRate  float64 `json:"tx_rate"`
		RxTotal uint64  `json:"rx_total"`
		TxTotal uint64  `json:"tx_total"`
	}
	// record is a total or iface row.
	record struct {
		recordHead
		Iface  string   `json:"iface,omitempty"`
		Ifaces []string `json:"ifaces,omitempty"`
		trafficFields
		RxErrors uint64 `json:"rx_errors"`
		TxErrors uint64 `json:"tx_errors"`
		RxDrops  uint64 `json:"rx_drops"`
		TxDrops  uint64 `json:"tx_drops"`
	}
	// procRecord is a process's row, or with pid 0 traffic of no process.
	procRecord struct {
		recordHead
		Pid int `json:"pid"`
		// StartTime: when the process started, which tells a reused pid
		// apart; "" for pid 0 rows.
		StartTime string `json:"start_time,omitempty"`
		Name      string `json:"name"`
		User      string `json:"user"`
		Cmdline   string `json:"cmdline"`
		ownerPlace
		trafficFields
	}
	// connRecord is a connection end's row, or with pid 0 and no proto the
	// bytes of no flow, for a reason.
	connRecord struct {
		recordHead
		Proto      string `json:"proto"`
		LocalAddr  string `json:"local_addr"`
		LocalPort  uint16 `json:"local_port"`
		RemoteAddr string `json:"remote_addr"`
		RemotePort uint16 `json:"remote_port"`
		RemoteName string `json:"remote_name,omitempty"`
		State      string `json:"state,omitempty"`
		FirstSeen  string `json:"first_seen,omitempty"`
		LastSeen   string `json:"last_seen,omitempty"`
		Pid        int    `json:"pid"`
		StartTime  string `json:"start_time,omitempty"`
		Name       string `json:"name"`
		User       string `json:"user"`
		ownerPlace
		trafficFields
	}
	// ownerPlace is why a row has no process, and where its process is:
	// the fields proc's and conn's records share, in this order.
	ownerPlace struct {
		Reason    string `json:"reason,omitempty"`
		Netns     uint64 `json:"netns"`
		NetnsName string `json:"netns_name,omitempty"`
		Cgroup    string `json:"cgroup"`
		Container string `json:"container"`
	}
	// groupRecord is a group's row (--by): only its keys are present.
	groupRecord struct {
		recordHead
		By         []string `json:"by"`
		Program    *string  `json:"program,omitempty"`
		User       *string  `json:"user,omitempty"`
		Container  *string  `json:"container,omitempty"`
		Netns      *uint64  `json:"netns,omitempty"`
		Remote     *string  `json:"remote,omitempty"`
		RemoteName string   `json:"remote_name,omitempty"`
		Reason     string   `json:"reason,omitempty"` // a group of no process's traffic: why
		Other      bool     `json:"other,omitempty"`
		Members    int      `json:"members"`
		trafficFields
	}
	// captureRecord is what proc mode captured in the interval.
	captureRecord struct {
		recordHead
		Ifaces []string `json:"ifaces"`
		counts
		Drops           uint64  `json:"drops"`
		AttributedBytes uint64  `json:"attributed_bytes"`
		AttributedShare float64 `json:"attributed_share"`
		Flows           int     `json:"flows"`
		EvictedFlows    uint64  `json:"evicted_flows"`
		// ByIface: each interface's frames as its own counters count
		// them; the keys above count a packet between two processes of
		// this machine both ways.
		ByIface       map[string]counts `json:"by_iface"`
		InferredBytes uint64            `json:"inferred_bytes"`
		// Owners: "bpf" or "proc" (see captured.owners).
		Owners     string `json:"owner_source"`
		OwnersLost uint64 `json:"owner_records_lost"`
	}
)

// rfc3339Milli is RFC 3339 with milliseconds.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// jsonSink writes NDJSON: a record a row, and proc's and conn's capture
// record. It keeps the container of each cgroup seen.
type jsonSink struct {
	containers map[string]string // containerOf by cgroup (jsonSink.containerOf)
}

func (s *jsonSink) waiting(*bytes.Buffer, mode, time.Time) {}

func (s *jsonSink) close(*bytes.Buffer, func()) {}

// write writes rep's records, a row's as v shows them.
func (s *jsonSink) write(b *bytes.Buffer, rep report, v rowView) {
	rep = v.arrange(rep, v.top)
	enc := json.NewEncoder(b)
	head := recordHead{Type: rep.mode.String(), TS: utcOf(rep.at), Seq: rep.seq, Interval: round(rep.elapsed.Seconds(), 6), Partial: rep.partial}
	if rep.summary {
		head.Type = "summary"
	}
	for _, u := range rep.rows {
		tf := trafficFields{
			counts:  countsOf(u.interval),
			RxRate:  round(rate(u.interval.rxBytes, rep.elapsed), 3),
			TxRate:  round(rate(u.interval.txBytes, rep.elapsed), 3),
			RxTotal: u.total.rxBytes,
			TxTotal: u.total.txBytes,
		}
		// Encoding plain fields into a bytes.Buffer cannot fail.
		switch {
		case u.group != nil:
			enc.Encode(newGroupRecord(head, u, tf))
		case rep.mode == modeConn:
			rec := newConnRecord(head, u, tf, s.containerOf)
			b.Write(rec.appendJSON(b.AvailableBuffer()))
		case rep.mode == modeProc:
			p := u.proc
			enc.Encode(procRecord{recordHead: head, Pid: p.pid, StartTime: utcOf(p.started), Name: u.name, User: p.user, Cmdline: p.cmdline,
				ownerPlace: placeOf(p, s.containerOf), trafficFields: tf})
		case rep.mode == modeTotal:
			ifaces := rep.ifaces
			if ifaces == nil {
				ifaces = []string{}
			}
			enc.Encode(record{recordHead: head, Ifaces: ifaces, trafficFields: tf,
				RxErrors: u.rxErrors, TxErrors: u.txErrors, RxDrops: u.rxDrops, TxDrops: u.txDrops})
		default:
			enc.Encode(record{recordHead: head, Iface: u.name, trafficFields: tf,
				RxErrors: u.rxErrors, TxErrors: u.txErrors, RxDrops: u.rxDrops, TxDrops: u.txDrops})
		}
	}
	if c := rep.capture; c != nil {
		head.Type = "capture"
		attributed, share := rep.attribution()
		byIface := make(map[string]counts, len(c.byIface))
		for name, t := range c.byIface {
			byIface[name] = countsOf(t)
		}
		enc.Encode(captureRecord{recordHead: head, Ifaces: c.ifaces, counts: countsOf(c.traffic),
			Drops: c.drops, AttributedBytes: attributed, AttributedShare: round(share, 6), InferredBytes: c.inferred,
			Flows: c.flows, EvictedFlows: c.evicted, ByIface: byIface, Owners: c.owners, OwnersLost: c.ownersLost})
	}
}

// countsOf is t's counts.
func countsOf(t traffic) counts {
	return counts{RxBytes: t.rxBytes, TxBytes: t.txBytes, RxPackets: t.rxPackets, TxPackets: t.txPackets}
}

// round rounds x to digits decimal digits.
func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// utcOf formats t for NDJSON, "" if zero.
func utcOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	var b [24]byte
	return string(appendUTC(b[:0], t))
}

// appendUTC appends t in UTC as t.UTC().Format(rfc3339Milli) does,
// without Format's parsing of the layout: a conn report formats three
// times a row (TestAppendUTC compares them).
func appendUTC(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, rfc3339Milli)
	}
	hour, minute, sec := t.Clock()
	digits := func(b []byte, v, n int) []byte {
		for i := n - 1; i >= 0; i-- {
			b = append(b, 0)
		}
		for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
			b[i] = byte('0' + v%10)
			v /= 10
		}
		return b
	}
	b = digits(b, year, 4)
	b = append(b, '-')
	b = digits(b, int(month), 2)
	b = append(b, '-')
	b = digits(b, day, 2)
	b = append(b, 'T')
	b = digits(b, hour, 2)
	b = append(b, ':')
	b = digits(b, minute, 2)
	b = append(b, ':')
	b = digits(b, sec, 2)
	b = append(b, '.')
	b = digits(b, t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

// unixUTC formats a time in Unix ns for NDJSON, "" if 0 (not known).
func unixUTC(ns int64) string {
	if ns == 0 {
		return ""
	}
	return utcOf(time.Unix(0, ns))
}

// placeOf is process p's ownerPlace; container names its cgroup's
// container.
func placeOf(p *process, container func(string) string) ownerPlace {
	return ownerPlace{Reason: reasonKey[p.reason], Netns: p.netns, NetnsName: p.nsName, Cgroup: p.cgroup, Container: container(p.cgroup)}
}

// newConnRecord is conn row u's record.
func newConnRecord(head recordHead, u usage, tf trafficFields, container func(string) string) connRecord {
	p := u.proc
	r := connRecord{recordHead: head, Pid: p.pid, StartTime: utcOf(p.started), Name: u.name, User: p.user,
		ownerPlace: placeOf(p, container), trafficFields: tf}
	if c := u.conn; c != nil && c.proto != 0 {
		r.Proto = "tcp"
		if c.proto == 17 {
			r.Proto = "udp"
		} else {
			r.State = c.state.String()
		}
		r.LocalAddr, r.LocalPort = c.local.Addr().String(), c.local.Port()
		r.RemoteAddr, r.RemotePort = c.remote.Addr().String(), c.remote.Port()
		r.RemoteName = c.remoteName
		r.FirstSeen, r.LastSeen = unixUTC(c.first), unixUTC(c.last)
	}
	return r
}

// newGroupRecord is group row u's record, its keys named.
func newGroupRecord(head recordHead, u usage, tf trafficFields) groupRecord {
	g := u.group
	if head.Type != "summary" {
		head.Type = "group"
	}
	r := groupRecord{recordHead: head, By: g.by, Members: g.members, trafficFields: tf}
	if g.key == (groupKey{}) && u.name == "(other)" {
		r.Other = true
		return r
	}
	if g.key.reasonCell() != "" {
		r.Reason = reasonKey[g.key.reason]
	}
	for _, b := range g.by {
		v := g.key.value(b)
		switch b {
		case "program":
			r.Program = &v
		case "user":
			r.User = &v
		case "container":
			r.Container = &v
		case "netns":
			n := g.key.netns
			r.Netns = &n
		case "remote":
			r.Remote = &v
			r.RemoteName = g.remoteName
		}
	}
	return r
}

// containerOf is containerOf, remembered: a report has many rows of one
// cgroup. It forgets all past maxContainers cgroups.
func (s *jsonSink) containerOf(cgroup string) string {
	if c, ok := s.containers[cgroup]; ok {
		return c
	}
	if s.containers == nil || len(s.containers) >= maxContainers {
		s.containers = map[string]string{}
	}
	c := containerOf(cgroup)
	s.containers[cgroup] = c
	return c
}

// maxContainers bounds jsonSink.containers.
const maxContainers = 4096
