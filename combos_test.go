package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

var (
	combos    = flag.Int("combos", 300, "TestFlagCombinations: how many random combinations to run")
	comboSeed = flag.Uint64("combos.seed", 0, "TestFlagCombinations: the seed of its combinations; 0 picks one")
)

// TestFlagCombinations runs random combinations of the output, grouping,
// filter and unit flags of every command with traffic (the mixed capture
// for proc and conn, the basic counters for total and iface), piped and
// on terminals of several sizes, and fails on any panic, and on any run
// that breaks the output rules: exit 0, or 2 (a refused combination) with
// one line on stderr and nothing on stdout, NDJSON that parses, no escape
// sequence off a terminal. The seed is logged: -combos.seed reruns a
// failure.
func TestFlagCombinations(t *testing.T) {
	seed := *comboSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-combos.seed %[1]d reruns these)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	n := *combos
	if testing.Short() {
		n = min(n, 60)
	}
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	frames := loadScenario(t, "mixed").readFrames(t, filepath.Join("testdata", "capture", "mixed.pcapng"))
	terms := []*[2]int{nil, nil, {80, 24}, {60, 15}, {120, 40}, {40, 10}}
	for i := range n {
		m := pick("total", "iface", "proc", "conn")
		args := []string{m, "--count", pick("1", "2", "3")}
		maybe := func(p float64, a ...string) {
			if rng.Float64() < p {
				args = append(args, a...)
			}
		}
		maybe(0.3, "--json")
		maybe(0.2, "--format", pick("table", "json", "prometheus"))
		maybe(0.3, "--units", pick("bytes", "bits"))
		maybe(0.3, "--si"+pick("", "=false"))
		maybe(0.3, "--sort", pick("rx", "tx", "total", "name", "pid"))
		maybe(0.3, "--top", pick("0", "1", "2", "5"))
		maybe(0.2, "--no-clear")
		if m == "proc" || m == "conn" {
			args = append(args, "--owners", "proc")
			maybe(0.5, "--by", pick("program", "user", "container", "netns", "remote", "user,program", "container,remote", "program,netns"))
			maybe(0.15, "--pid", pick("0", "4242", "1,0"))
			maybe(0.15, "--program", pick("curl", "s*", "nomatch"))
			maybe(0.15, "--user", pick("alice", "root,bind"))
			maybe(0.15, "--port", pick("443", "53,22"))
			maybe(0.15, "--remote", pick("10.0.0.0/8", "2001:db8::/32", "93.184.216.34"))
		} else {
			maybe(0.2, "--iface", pick("eth*", "lo", "nomatch*"))
		}
		term := terms[rng.IntN(len(terms))]
		name := strings.Join(args, " ")
		if term != nil {
			name += " (terminal)"
		}
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			var code int
			var stdout []byte
			var stderr string
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("combination %d: netuse %s panicked: %v", i, strings.Join(args, " "), p)
					}
				}()
				if m == "proc" || m == "conn" {
					code, stdout, stderr = loadScenario(t, "mixed").runOn(frames, term, args...)
					return
				}
				a, out, errs := testApp(loadCounters(t, "basic"), term != nil)
				if term != nil {
					a.termSize = func() (int, int, bool) { return term[0], term[1], true }
				}
				code = a.main(args)
				stdout, stderr = out.Bytes(), errs.String()
			}()
			checkOutputRules(t, args, term != nil, code, stdout, stderr)
		})
	}
}

// checkOutputRules checks a run's status and output against render.go's
// output rules.
func checkOutputRules(t *testing.T, args []string, tty bool, code int, stdout []byte, stderr string) {
	t.Helper()
	switch code {
	case 0:
		if strings.Contains(stderr, "panic") {
			t.Errorf("netuse %s: stderr %q", strings.Join(args, " "), stderr)
		}
	case 1, 2: // a refused combination, or an --iface glob that matches nothing
		if len(stdout) > 0 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "netuse: ") {
			t.Errorf("netuse %s: exit %d with stdout %q, stderr %q; want nothing and one line", strings.Join(args, " "), code, stdout, stderr)
		}
		return
	default:
		t.Fatalf("netuse %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	json := false
	for i, a := range args {
		json = json || a == "--json" || (a == "--format" && i+1 < len(args) && args[i+1] == "json")
	}
	if json {
		for line := range bytes.Lines(stdout) {
			if !jsonValid(line) {
				t.Errorf("netuse %s: not JSON: %q", strings.Join(args, " "), line)
			}
		}
	} else if !tty && bytes.Contains(stdout, []byte("\x1b")) {
		t.Errorf("netuse %s: an escape sequence off a terminal", strings.Join(args, " "))
	}
}

func jsonValid(line []byte) bool { return json.Valid(bytes.TrimSpace(line)) }
