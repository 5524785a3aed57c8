package main

import (
	"strings"
	"testing"
)

func TestVisible(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"curl", 32, "curl"},
		{"", 32, ""},
		{"\x1b[2J\nevil", 0, `\x1b[2J\nevil`},
		{"tab\there\r", 0, `tab\there\r`},
		{"del\x7f", 0, `del\x7f`},
		{"c1\u009bJ", 0, `c1\u009bJ`},
		{"rtl\u202eexe.txt", 0, `rtl\u202eexe.txt`},
		{"bad\xff\xfeutf8", 0, `bad\xff\xfeutf8`},
		{"café", 0, "café"},
		{"日本語", 0, "日本語"},
		{"abcdefghij", 5, "abcd…"},
		{"abcde", 5, "abcde"},
		{"ééééééé", 4, "ééé…"},
		{"\x1b\x1b\x1b", 6, `\x1b\…`},
	} {
		if got := visible(c.in, c.limit); got != c.want {
			t.Errorf("visible(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}

// TestHostileNames renders a process whose name, user and cgroup try to
// drive the terminal, in every table form: no control byte of theirs may
// reach the output, and each row stays one line.
func TestHostileNames(t *testing.T) {
	evil := "\x1b[2J\nevil"
	rows := []usage{{name: evil, proc: &process{pid: 42, name: evil, user: "u\x07ser", cgroup: "/x\x1b]0;title\x07", foreign: true, netns: 7}}}
	rows[0].interval.rxBytes = 100
	for _, live := range []bool{false, true} {
		var out strings.Builder
		r := newRenderer(&out, false, live, false, false)
		r.termSize = func() (int, int, bool) { return 200, 50, true }
		rep := report{mode: modeProc, seq: 1, rows: rows, capture: &captured{ifaces: []string{"veth\x1b[1m"}}}
		rep.capture.rxBytes = 100
		if err := r.render(rep, options{}); err != nil {
			t.Fatal(err)
		}
		r.close()
		// Take out the escapes netuse itself writes; nothing else may remain.
		s := out.String()
		for _, e := range []string{escHideCursor, escShowCursor, escClearLine, escClearDown, "\x1b[1A", "\r"} {
			s = strings.ReplaceAll(s, e, "")
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 && c != '\n' {
				t.Fatalf("live %v: control byte %#x at %d in %q", live, c, i, out.String())
			}
		}
		for _, want := range []string{`\x1b[2J\nevil`, `u\x07ser`, `/x\x1b]0;title\x07`, `veth\x1b[1m`} {
			if !strings.Contains(s, want) {
				t.Errorf("live %v: output lacks %q:\n%s", live, want, s)
			}
		}
		if lines := strings.Count(strings.TrimRight(s, "\n"), "\n"); lines != 3 {
			t.Errorf("live %v: %d line breaks, want 3 (header, capture, column names, one row):\n%s", live, lines, s)
		}
	}
}
