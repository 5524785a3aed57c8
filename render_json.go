package main

import "encoding/json"

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
	trafficFields struct {
		RxBytes   uint64  `json:"rx_bytes"`
		TxBytes   uint64  `json:"tx_bytes"`
		RxPackets uint64  `json:"rx_packets"`
		TxPackets uint64  `json:"tx_packets"`
		RxRate    float64 `json:"rx_rate"`
		TxRate    float64 `json:"tx_rate"`
		RxTotal   uint64  `json:"rx_total"`
		TxTotal   uint64  `json:"tx_total"`
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
		Reason    string `json:"reason,omitempty"`
		Netns     uint64 `json:"netns"`
		Cgroup    string `json:"cgroup"`
		trafficFields
	}
	// ifaceRecord is one interface's frames in a capture record.
	ifaceRecord struct {
		RxBytes   uint64 `json:"rx_bytes"`
		TxBytes   uint64 `json:"tx_bytes"`
		RxPackets uint64 `json:"rx_packets"`
		TxPackets uint64 `json:"tx_packets"`
	}
	// captureRecord is what proc mode captured in the interval.
	captureRecord struct {
		recordHead
		Ifaces          []string `json:"ifaces"`
		RxBytes         uint64   `json:"rx_bytes"`
		TxBytes         uint64   `json:"tx_bytes"`
		RxPackets       uint64   `json:"rx_packets"`
		TxPackets       uint64   `json:"tx_packets"`
		Drops           uint64   `json:"drops"`
		AttributedBytes uint64   `json:"attributed_bytes"`
		AttributedShare float64  `json:"attributed_share"`
		Flows           int      `json:"flows"`
		EvictedFlows    uint64   `json:"evicted_flows"`
		// ByIface: each interface's frames as its own counters count
		// them; the keys above count a packet between two processes of
		// this machine both ways.
		ByIface       map[string]ifaceRecord `json:"by_iface"`
		InferredBytes uint64                 `json:"inferred_bytes"`
		// Owners: "bpf" or "proc" (see captured.owners).
		Owners     string `json:"owner_source"`
		OwnersLost uint64 `json:"owner_records_lost"`
	}
)

// rfc3339Milli is RFC 3339 with milliseconds.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

func (r *renderer) writeJSON(f report) {
	enc := json.NewEncoder(&r.buf)
	head := recordHead{Type: f.mode.String(), TS: f.at.UTC().Format(rfc3339Milli), Seq: f.seq, Interval: round(f.elapsed.Seconds(), 6), Partial: f.partial}
	if f.summary {
		head.Type = "summary"
	}
	for _, u := range f.rows {
		tf := trafficFields{
			RxBytes:   u.interval.rxBytes,
			TxBytes:   u.interval.txBytes,
			RxPackets: u.interval.rxPackets,
			TxPackets: u.interval.txPackets,
			RxRate:    round(rate(u.interval.rxBytes, f.elapsed), 3),
			TxRate:    round(rate(u.interval.txBytes, f.elapsed), 3),
			RxTotal:   u.total.rxBytes,
			TxTotal:   u.total.txBytes,
		}
		// Encoding plain fields into a bytes.Buffer cannot fail.
		switch f.mode {
		case modeProc:
			p := u.proc
			var started string
			if !p.started.IsZero() {
				started = p.started.UTC().Format(rfc3339Milli)
			}
			enc.Encode(procRecord{recordHead: head, Pid: p.pid, StartTime: started, Name: u.name, User: p.user, Cmdline: p.cmdline,
				Reason: reasonKey[p.reason], Netns: p.netns, Cgroup: p.cgroup, trafficFields: tf})
		case modeTotal:
			ifaces := f.ifaces
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
	if c := f.capture; c != nil {
		head.Type = "capture"
		attributed, share := attribution(f)
		byIface := make(map[string]ifaceRecord, len(c.byIface))
		for name, t := range c.byIface {
			byIface[name] = ifaceRecord{t.rxBytes, t.txBytes, t.rxPackets, t.txPackets}
		}
		enc.Encode(captureRecord{recordHead: head, Ifaces: c.ifaces,
			RxBytes: c.rxBytes, TxBytes: c.txBytes, RxPackets: c.rxPackets, TxPackets: c.txPackets,
			Drops: c.drops, AttributedBytes: attributed, AttributedShare: round(share, 6), InferredBytes: c.inferred,
			Flows: c.flows, EvictedFlows: c.evicted, ByIface: byIface, Owners: c.owners, OwnersLost: c.ownersLost})
	}
}
