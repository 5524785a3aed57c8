package main

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestFlagsDocumented checks that the two lists of flags a user may read
// name the same flags: kong's help, which comes from the cli struct and so
// is the truth, and the table of flags in docs/usage.md. Each long name must be in
// both, with the same short name, or none, in each. A flag that only
// proc's help lists must say so in the table ("proc:" at the start of
// its meaning), and a flag every command lists must not.
func TestFlagsDocumented(t *testing.T) {
	help := map[string]flagLine{} // every command's flags
	shared := map[string]bool{}   // the flags of netuse --help, which every command takes
	for _, cmd := range []string{"", "total", "iface", "proc", "conn", "serve", "history"} {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		args := append(strings.Fields(cmd), "--help")
		if code := a.main(args); code != 0 {
			t.Fatalf("netuse %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
		where := "netuse " + strings.Join(args, " ")
		flags := flagsOf(t, where, blockAfter(stdout.String(), "Flags:"), helpFlag)
		if cmd == "proc" || cmd == "conn" {
			maps.Copy(flags, flagsOf(t, where, blockAfter(stdout.String(), "Flags of proc and conn:"), helpFlag))
		}
		if cmd == "total" || cmd == "iface" {
			maps.Copy(flags, flagsOf(t, where, blockAfter(stdout.String(), "Flags of total and iface:"), helpFlag))
		}
		if cmd == "serve" {
			maps.Copy(flags, flagsOf(t, where, blockAfter(stdout.String(), "Flags of serve:"), helpFlag))
		}
		if cmd == "history" {
			maps.Copy(flags, flagsOf(t, where, blockAfter(stdout.String(), "Flags of history:"), helpFlag))
		}
		for long, f := range flags {
			help[long] = f
			if cmd == "" {
				shared[long] = true
			}
		}
	}

	usage, err := os.ReadFile(filepath.Join("docs", "usage.md"))
	if err != nil {
		t.Fatal(err)
	}
	table := flagsOf(t, "docs/usage.md's table of flags", blockAfter(string(usage), "| flag | meaning |"), readmeFlag)

	for _, other := range []struct {
		name  string
		flags map[string]flagLine
	}{{"docs/usage.md's table of flags", table}} {
		for _, long := range slices.Sorted(maps.Keys(help)) {
			f, ok := other.flags[long]
			switch {
			case !ok:
				t.Errorf("--%s is in netuse's help but not in %s", long, other.name)
				continue
			case f.short != help[long].short:
				t.Errorf("--%s: short name %q in %s, %q in netuse's help", long, f.short, other.name, help[long].short)
			}
			if own := ownMark.MatchString(f.meaning); own == shared[long] {
				t.Errorf("--%s: %s marks it some commands' alone: %v; netuse --help lists it: %v", long, other.name, own, shared[long])
			}
		}
		for _, long := range slices.Sorted(maps.Keys(other.flags)) {
			if _, ok := help[long]; !ok {
				t.Errorf("--%s is in %s but not in netuse's help", long, other.name)
			}
		}
	}
}

// TestReadmeMap checks the README's map: it names every non-test .go
// file of the package exactly once, and no file that is not one, so that
// a file added, renamed or removed without the map fails here.
func TestReadmeMap(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Map\n")
	if !ok {
		t.Fatal("README.md has no section \"## Map\"")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	named := map[string]int{}
	for _, name := range regexp.MustCompile(`[A-Za-z0-9_.-]+\.go\b`).FindAllString(section, -1) {
		named[name]++
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	source := map[string]bool{}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			source[f] = true
		}
	}
	for _, f := range slices.Sorted(maps.Keys(source)) {
		if n := named[f]; n != 1 {
			t.Errorf("README.md's map names %s %d times, want once", f, n)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(named)) {
		if !source[f] {
			t.Errorf("README.md's map names %s, which is not a non-test .go file of the package", f)
		}
	}
}

// flagLine is a flag as a list shows it.
type flagLine struct {
	short   string // "" if none
	meaning string // the rest of the first line
}

// The first line of a flag in each list, with its short name if any and
// its long name:
//
//	help:   "  -i, --interval=1s   Sampling period..." or "      --json   Write..."
//	docs/usage.md: "| `-i, --interval=1s` | sampling period... |"
var (
	helpFlag   = regexp.MustCompile(`^ {2,}(?:-([a-zA-Z]), )? *--([a-z][a-z0-9-]*)`)
	readmeFlag = regexp.MustCompile("^\\| `(?:-([a-zA-Z]), )?--([a-z][a-z0-9-]*)")
	// ownMark starts the meaning of a flag of some commands alone: "proc:
	// ..." or "total, iface: ..." in the doc, "`proc`: ..." or "`total`,
	// `iface`: ..." in docs/usage.md.
	ownMark = regexp.MustCompile("^`?(proc|total|serve|history)`?[:,]")
	// flagLike is any line that starts with a flag, in any of the three.
	flagLike = regexp.MustCompile("^[ \t|`]*--?[a-zA-Z]")
)

// blockAfter returns the lines after the line that is heading, up to the
// first blank line after at least one line; nil if heading is not there.
func blockAfter(text, heading string) []string {
	lines := strings.Split(text, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == heading })
	if i < 0 {
		return nil
	}
	var block []string
	for _, l := range lines[i+1:] {
		if strings.TrimSpace(l) == "" {
			if len(block) > 0 {
				break
			}
			continue
		}
		block = append(block, l)
	}
	return block
}

// flagsOf reads the flags of a block: long name -> its line. A line that starts like a flag but does not match re, or a flag
// listed twice, fails the test, and so does a block without flags, so that
// a change of layout is not read as "no flags".
func flagsOf(t *testing.T, where string, block []string, re *regexp.Regexp) map[string]flagLine {
	t.Helper()
	flags := map[string]flagLine{}
	for _, l := range block {
		m := re.FindStringSubmatch(l)
		if m == nil {
			// Continuation lines of help text, and docs/usage.md's table's
			// separator row "| --- |", name no flag.
			if flagLike.MatchString(l) {
				t.Errorf("%s: cannot read the flag in %q", where, l)
			}
			continue
		}
		if _, dup := flags[m[2]]; dup {
			t.Errorf("%s: --%s is listed twice", where, m[2])
		}
		// The meaning follows the placeholder, if any ("=auto",
		// "=auto\\|bpf\\|proc`"), after spaces or the table's "|".
		rest := l[len(m[0]):]
		if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "\t") {
			i := strings.IndexAny(rest, " \t")
			if i < 0 {
				i = len(rest)
			}
			rest = rest[i:]
		}
		flags[m[2]] = flagLine{short: m[1], meaning: strings.TrimLeft(rest, " \t|`")}
	}
	if len(flags) == 0 {
		t.Fatalf("%s: no flags found", where)
	}
	return flags
}

// TestEmptyValues gives every flag that takes a value, of every command,
// an empty one, and another flag for one (what a shell makes of an unset
// variable): each is refused with one line naming the flag, exit 2, and
// nothing on stdout. --state, --textfile, --web-config, --sort and
// --format did nothing with an empty value.
func TestEmptyValues(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Vars{"version": "test", "maxFlows": "65536", "listen": defaultListen})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cmd := range parser.Model.Children {
		if slices.Contains([]string{"help", "version", "man", "completion"}, cmd.Name) {
			continue // they read no flag
		}
		flags := slices.Clone(parser.Model.Flags)
		for _, g := range cmd.Flags {
			flags = append(flags, g)
		}
		for _, f := range flags {
			if f.IsBool() || f.Name == "help" || f.Name == "version" {
				continue
			}
			if slices.Contains(flagsRefused(cmd.Name), f.Name) {
				continue // refused whatever its value
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{cmd.Name, "--" + f.Name, ""}, `netuse: --` + f.Name + ` "": empty; want `},
				{[]string{cmd.Name, "--" + f.Name, "--json"}, `netuse: --` + f.Name + ` "--json": a flag, not a value; want `},
				{[]string{cmd.Name, "--" + f.Name, "--interval", "2s"}, `netuse: --` + f.Name + ` "--interval": a flag, not a value; want `},
			} {
				if cmd.Name == "serve" && tc.args[2] == "--json" {
					continue // serve refuses --json itself
				}
				n++
				a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
				code := a.main(tc.args)
				if code != 2 || stdout.Len() > 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), tc.want) {
					t.Errorf("netuse %q: exit %d, stdout %q, stderr %q; want 2, nothing, and one line %s...", tc.args, code, stdout, stderr, tc.want)
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("%d cases: the walk of kong's model missed flags", n)
	}
}
