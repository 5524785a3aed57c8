package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestNarrowTerminal runs netuse proc and conn, one interval, in a
// pseudo-terminal of 80x24 and of 60x15, inside a network namespace where
// two helpers move a megabyte over loopback: the table's lines fit the
// terminal, no column name is cut, and its columns are PID, PROGRAM and
// the rates at least, each rate whole (before, conn at 80 and 60 columns
// had no rates, its program cut to PROGR by the screen's edge, and proc's
// CONTAINER at 60 to CONTA).
func TestNarrowTerminal(t *testing.T) {
	ns := newNamespaces(t, "nu", "narrow")[0]
	rate := regexp.MustCompile(`^[0-9]+(\.[0-9])? ([KMGTP]i)?B/s$`)
	port := 7300
	for _, mode := range []string{"proc", "conn"} {
		for _, size := range [][2]int{{80, 24}, {60, 15}} {
			t.Run(fmt.Sprintf("%s/%dx%d", mode, size[0], size[1]), func(t *testing.T) {
				port++
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				server := startHelper(t, ns, "serve-recv", "tcp", addr)
				server.expect(t, "listening")
				ptm, pts := openPTY(t, size[0], size[1])
				t.Cleanup(func() { ptm.Close(); pts.Close() })
				cmd, scr := startOnTerminal(t, ptm, pts, "ip", "netns", "exec", ns, netuseBinary(t), mode,
					"--iface", "lo", "--owners", "proc", "--interval", "2s", "--count", "1")
				// The waiting line comes once the capture is open.
				scr.waitFor(t, 0, "measuring the first interval")
				client := startHelper(t, ns, "send", "tcp", addr, "1000000")
				client.expect(t, "sent")
				server.expect(t, "got 1000000")
				if err := cmd.Wait(); err != nil {
					t.Fatalf("netuse: %v\n%s", err, scr.String())
				}
				scr.waitFor(t, 0, "RX/s")
				tm := newTerm(size[0], size[1])
				tm.write(scr.String())
				screen := strings.Join(tm.screen(), "\n")
				for _, o := range tm.overflow {
					t.Errorf("%s\n%s", o, screen)
				}
				head, rows := tableRows(tm.screen())
				cols := checkHead(t, head, screen)
				for _, w := range []string{"PID", "PROGRAM", "RX/s", "TX/s"} {
					if !slices.ContainsFunc(cols, func(c column) bool { return c.name == w }) {
						t.Errorf("no %s column:\n%s", w, screen)
					}
				}
				helpers := 0
				for _, row := range rows {
					cells := cells(cols, row)
					for _, c := range cols {
						v := cells[c.name]
						switch {
						case c.number && !rate.MatchString(v):
							t.Errorf("%s: %q is no whole rate:\n%s", c.name, v, screen)
						case c.name == "PROGRAM" && v == helperComm():
							helpers++
						}
					}
				}
				if helpers < 2 {
					t.Errorf("%d rows of the helpers, want their 2 ends:\n%s", helpers, screen)
				}
			})
		}
	}
}
