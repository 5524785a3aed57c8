package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// connRecords are records whose every field, string and number takes each
// path of appendJSON: plain, escaped, omitted, and floats in and out of
// the range written without an exponent.
var connRecords = []connRecord{
	{recordHead: recordHead{Type: "conn", TS: "2026-12-01T18:00:00.000Z", Seq: 3, Interval: 1.000012},
		Proto: "tcp", LocalAddr: "192.0.2.10", LocalPort: 40000, RemoteAddr: "2001:db8::7", RemotePort: 443,
		RemoteName: "peer.example", State: "ESTABLISHED", FirstSeen: "2026-12-01T17:59:58.123Z", LastSeen: "2026-12-01T18:00:00.001Z",
		Pid: 4242, StartTime: "2026-12-01T17:00:00.000Z", Name: "curl", User: "alice",
		ownerPlace:    ownerPlace{Netns: 4026531840, Cgroup: "/user.slice/user-1000.slice/session-3.scope", Container: "session-3.scope"},
		trafficFields: trafficFields{counts: counts{RxBytes: 30000, TxBytes: 1000, RxPackets: 20, TxPackets: 10}, RxRate: 29999.64, TxRate: 0.001, RxTotal: 1 << 40, TxTotal: 7}},
	{recordHead: recordHead{Type: "summary", TS: "x", Seq: 1, Interval: 0.25, Partial: true},
		Pid: 0, Name: "(not TCP/UDP)", ownerPlace: ownerPlace{Reason: "not_tcp_udp"}, trafficFields: trafficFields{RxRate: 1e-7, TxRate: 1e22}},
	{recordHead: recordHead{Type: "conn"}, Proto: "udp", Name: "evil\x1b[2J\n\"<b>&\\", User: "\xff\xfe bytes", ownerPlace: ownerPlace{Cgroup: "/a\u2028b"},
		RemoteName: "ü.example", trafficFields: trafficFields{RxRate: 123456789.125, TxRate: math.Pi}},
}

func TestConnRecordJSON(t *testing.T) {
	for i, r := range connRecords {
		checkConnRecordJSON(t, i, r)
	}
}

func checkConnRecordJSON(t *testing.T, i int, r connRecord) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if got := r.appendJSON(nil); string(got) != string(want) {
		t.Errorf("record %d:\n got %s\nwant %s", i, got, want)
	}
}

// FuzzConnRecordJSON compares appendJSON with json.Marshal for any name,
// user, cgroup and rates.
func FuzzConnRecordJSON(f *testing.F) {
	for _, r := range connRecords {
		f.Add(r.Name, r.User, r.Cgroup, r.RxRate, r.Interval)
	}
	f.Fuzz(func(t *testing.T, name, user, cgroup string, rate, interval float64) {
		if math.IsNaN(rate) || math.IsInf(rate, 0) || math.IsNaN(interval) || math.IsInf(interval, 0) {
			return // netuse writes neither, and encoding/json refuses them
		}
		r := connRecords[0]
		r.Name, r.User, r.Cgroup, r.RxRate, r.Interval = name, user, cgroup, rate, interval
		checkConnRecordJSON(t, 0, r)
	})
}

func TestAppendUTC(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-1800), time.FixedZone("y", 13*3600)}
	times := []time.Time{time.Unix(0, 0), time.Unix(1, 999_999_999), time.Date(2026, 12, 1, 23, 59, 59, 999_500_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 1e6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 2000 {
		times = append(times, time.Unix(int64(i)*7919*104729, int64(i)*982451653%1e9))
	}
	for _, tt := range times {
		for _, z := range zones {
			at := tt.In(z)
			if got, want := string(appendUTC(nil, at)), at.UTC().Format(rfc3339Milli); got != want {
				t.Fatalf("appendUTC(%v) = %q; want %q", at, got, want)
			}
		}
	}
}
