package main

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestDelta(t *testing.T) {
	tests := []struct{ prev, cur, want uint64 }{
		{100, 150, 50},
		{100, 100, 0},
		{100, 40, 40}, // reset: the new value is the interval's traffic
		{0, 0, 0},
		{1<<64 - 10, 1<<64 - 1, 9},
		{1<<64 - 1, 5, 5}, // a 64-bit counter does not wrap in practice: a reset
	}
	for _, tt := range tests {
		if got := delta(tt.prev, tt.cur); got != tt.want {
			t.Errorf("delta(%d, %d) = %d, want %d", tt.prev, tt.cur, got, tt.want)
		}
	}
}

func TestPick(t *testing.T) {
	host := []counter{
		{name: "wlan0"}, {name: "eth0"}, {name: "lo", loopback: true, virtual: true},
		{name: "br0", virtual: true}, {name: "veth1a2b", virtual: true}, {name: "docker0", virtual: true},
	}
	container := []counter{{name: "eth0", virtual: true}, {name: "lo", loopback: true, virtual: true}}
	tests := []struct {
		name string
		sel  selector
		cs   []counter
		want string
	}{
		{"edge on a host", selector{edge: true}, host, "[eth0 wlan0]"},
		{"edge in a container", selector{edge: true}, container, "[eth0]"},
		{"edge with only loopback", selector{edge: true}, []counter{{name: "lo", loopback: true}}, "[]"},
		{"all", selector{}, host, "[br0 docker0 eth0 lo veth1a2b wlan0]"},
		{"globs override edge", selector{edge: true, globs: []string{"veth*", "lo"}}, host, "[lo veth1a2b]"},
		{"glob classes", selector{globs: []string{"[bd]*"}}, host, "[br0 docker0]"},
		{"no match", selector{globs: []string{"wg*"}}, host, "[]"},
	}
	for _, tt := range tests {
		got := fmt.Sprint(tt.sel.pick(tt.cs))
		if got != tt.want {
			t.Errorf("%s: pick = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// BenchmarkCycle measures one interval of the iface mode: read 32
// interfaces' counters (from memory), take deltas, sort and render.
func BenchmarkCycle(b *testing.B) {
	for _, form := range []string{"json", "plain"} {
		b.Run(form, func(b *testing.B) {
			cs := make([]counter, 32)
			for i := range cs {
				cs[i] = counter{name: fmt.Sprintf("veth%02d", i), virtual: true}
			}
			s := newSampler(func() ([]counter, error) {
				for i := range cs {
					cs[i].rxBytes += uint64(1000 * i)
					cs[i].txBytes += 1500
					cs[i].rxPackets += 10
				}
				return cs, nil
			})
			r := newRenderer(io.Discard, form == "json", false, false, false)
			o := options{interval: time.Second, count: b.N}
			now := epoch
			clk := clock{
				now:   func() time.Time { return now },
				sleep: func(context.Context, time.Duration) error { now = now.Add(time.Second); return nil },
			}
			b.ReportAllocs()
			b.ResetTimer()
			if err := runSampler(context.Background(), clk, modeIface, o, s, r); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkReadCounters reads this machine's real interface counters, as
// every interval does.
func BenchmarkReadCounters(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readCounters(); err != nil {
			b.Fatal(err)
		}
	}
}
