package main

import (
	"encoding/json"
	"math"
	"strconv"
)

// Conn records by hand: encoding/json's reflection, a record a row, would
// take a report of 10,000 connections past its bound of 20 ms
// (BenchmarkConnReport). appendJSON writes what json.Marshal would,
// byte for byte (TestConnRecordJSON and FuzzConnRecordJSON compare them),
// falling back to encoding/json for a string or number it would escape or
// format in a way of its own.

// appendJSON appends r as one JSON object and a newline, as
// json.Encoder.Encode writes it.
func (r *connRecord) appendJSON(b []byte) []byte {
	b = appendJSONString(append(b, `{"type":`...), r.Type)
	b = appendJSONString(append(b, `,"ts":`...), r.TS)
	b = strconv.AppendInt(append(b, `,"seq":`...), int64(r.Seq), 10)
	b = appendJSONFloat(append(b, `,"interval":`...), r.Interval)
	if r.Partial {
		b = append(b, `,"partial":true`...)
	}
	b = appendJSONString(append(b, `,"proto":`...), r.Proto)
	b = appendJSONString(append(b, `,"local_addr":`...), r.LocalAddr)
	b = strconv.AppendUint(append(b, `,"local_port":`...), uint64(r.LocalPort), 10)
	b = appendJSONString(append(b, `,"remote_addr":`...), r.RemoteAddr)
	b = strconv.AppendUint(append(b, `,"remote_port":`...), uint64(r.RemotePort), 10)
	for _, f := range []struct{ key, v string }{
		{`,"remote_name":`, r.RemoteName}, {`,"state":`, r.State}, {`,"first_seen":`, r.FirstSeen}, {`,"last_seen":`, r.LastSeen},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendJSONString(b, f.v)
		}
	}
	b = strconv.AppendInt(append(b, `,"pid":`...), int64(r.Pid), 10)
	if r.StartTime != "" {
		b = append(b, `,"start_time":`...)
		b = appendJSONString(b, r.StartTime)
	}
	b = appendJSONString(append(b, `,"name":`...), r.Name)
	b = appendJSONString(append(b, `,"user":`...), r.User)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, r.Reason)
	}
	b = strconv.AppendUint(append(b, `,"netns":`...), r.Netns, 10)
	b = appendJSONString(append(b, `,"cgroup":`...), r.Cgroup)
	b = appendJSONString(append(b, `,"container":`...), r.Container)
	t := &r.trafficFields
	for _, f := range []struct {
		key string
		v   uint64
	}{{`,"rx_bytes":`, t.RxBytes}, {`,"tx_bytes":`, t.TxBytes}, {`,"rx_packets":`, t.RxPackets}, {`,"tx_packets":`, t.TxPackets}} {
		b = append(b, f.key...)
		b = strconv.AppendUint(b, f.v, 10)
	}
	b = appendJSONFloat(append(b, `,"rx_rate":`...), t.RxRate)
	b = appendJSONFloat(append(b, `,"tx_rate":`...), t.TxRate)
	b = strconv.AppendUint(append(b, `,"rx_total":`...), t.RxTotal, 10)
	b = strconv.AppendUint(append(b, `,"tx_total":`...), t.TxTotal, 10)
	return append(b, "}\n"...)
}

// appendJSONString appends s quoted as encoding/json quotes it: as it is
// when every byte is printable ASCII that needs no escape (not ", \, or
// <, > and & that json escapes for HTML); else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json formats it: the shortest
// decimal that reads back as f, without an exponent between 1e-6 and
// 1e21; json.Marshal for the rest (and for NaN and infinities, which it
// refuses: netuse writes neither).
func appendJSONFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	q, err := json.Marshal(f)
	if err != nil {
		return append(b, '0')
	}
	return append(b, q...)
}
