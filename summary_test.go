package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSummaryBy runs proc and conn with every --by key, and pairs of them,
// for two intervals of the mixed scenario, as a table (piped and on a
// terminal) and as NDJSON: the run's summary is a table of the groups,
// under their keys' columns, every group's totals in it; with --top, only
// the first N. A summary of groups was written with proc's columns and
// panicked (index out of range in pick).
func TestSummaryBy(t *testing.T) {
	frames := loadScenario(t, "mixed").readFrames(t, filepath.Join("testdata", "capture", "mixed.pcapng"))
	bys := append(slices.Clone(groupKeys), "user,program", "container,remote", "netns,user")
	for _, m := range []string{"proc", "conn"} {
		for _, by := range bys {
			for _, term := range []*[2]int{nil, {120, 40}} {
				name := m + "_" + strings.ReplaceAll(by, ",", "_")
				if term != nil {
					name += "_tty"
				}
				t.Run(name, func(t *testing.T) {
					args := []string{m, "--count", "2", "--owners", "proc", "--by", by}
					code, out, stderr := loadScenario(t, "mixed").runOn(frames, term, args...)
					if code != 0 || stderr != "" {
						t.Fatalf("netuse %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
					}
					_, summary, ok := bytes.Cut(out, []byte("summary"))
					if !ok {
						t.Fatalf("no summary in %q", out)
					}
					var want []string
					for _, k := range strings.Split(by, ",") {
						want = append(want, groupColumn[k])
					}
					// The summary's header line, then its column names.
					lines := strings.Split(string(summary), "\n")
					if len(lines) < 3 {
						t.Fatalf("summary %q has no rows", summary)
					}
					if fields := strings.Fields(lines[1]); len(fields) < len(want) || !slices.Equal(fields[:len(want)], want) {
						t.Fatalf("summary's columns %q, want %v first", lines[1], want)
					}
					if strings.Contains(lines[1], "PID") {
						t.Errorf("summary of groups has a PID column: %q", lines[1])
					}
				})
			}
		}
	}
}

// TestSummaryTop checks that a summary obeys --top as a frame does, in a
// table and in NDJSON, and that it holds every group otherwise.
func TestSummaryTop(t *testing.T) {
	frames := loadScenario(t, "mixed").readFrames(t, filepath.Join("testdata", "capture", "mixed.pcapng"))
	count := func(args ...string) (rows, summary int) {
		t.Helper()
		out := loadScenario(t, "mixed").run(t, frames, args...)
		for line := range bytes.Lines(out) {
			var r struct{ Type string }
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			switch r.Type {
			case "summary":
				summary++
			case "group", "proc", "conn":
				rows++
			}
		}
		return rows, summary
	}
	for _, m := range []string{"proc", "conn"} {
		_, all := count(m, "--json", "--count", "2", "--owners", "proc", "--by", "program")
		if all < 3 {
			t.Fatalf("%s: %d summary records, want the scenario's groups (more than 2)", m, all)
		}
		if _, top := count(m, "--json", "--count", "2", "--owners", "proc", "--by", "program", "--top", "2"); top != 2 {
			t.Errorf("%s --top 2: %d summary records, want 2", m, top)
		}
		_, all = count(m, "--json", "--count", "2", "--owners", "proc")
		if _, top := count(m, "--json", "--count", "2", "--owners", "proc", "--top", "1"); top != 1 || all < 2 {
			t.Errorf("%s --top 1: %d summary records of %d, want 1", m, top, all)
		}
	}
}

// TestFilterMatchesNothing: a filter that matches no row says so, in the
// table of each interval and once on stderr at the end; NDJSON stays
// records alone. It gave no hint.
func TestFilterMatchesNothing(t *testing.T) {
	frames := loadScenario(t, "mixed").readFrames(t, filepath.Join("testdata", "capture", "mixed.pcapng"))
	for _, json := range []bool{false, true} {
		args := []string{"proc", "--count", "2", "--owners", "proc", "--program", "nomatch"}
		if json {
			args = append(args, "--json")
		}
		code, out, stderr := loadScenario(t, "mixed").runOn(frames, nil, args...)
		if code != 0 || stderr != "netuse: no row matched --program \"nomatch\" in 2 intervals; netuse proc without them shows what there is\n" {
			t.Errorf("netuse %s: exit %d, stderr %q; want 0 and the hint", strings.Join(args, " "), code, stderr)
		}
		if hint := bytes.Count(out, []byte(`(no row matches --program "nomatch")`)); json && hint != 0 || !json && hint != 2 {
			t.Errorf("netuse %s: %d hints in the output %q; want one per table, none in NDJSON", strings.Join(args, " "), hint, out)
		}
	}
	// A filter that matches says nothing.
	if code, _, stderr := loadScenario(t, "mixed").runOn(frames, nil, "proc", "--count", "1", "--owners", "proc", "--program", "curl"); code != 0 || stderr != "" {
		t.Errorf("--program curl: exit %d, stderr %q", code, stderr)
	}
}
