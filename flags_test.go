package main

import (
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFlagsDocumented checks that the three lists of flags a user may read
// name the same flags: the package doc (main.go's "Flags:" block, which
// go doc shows), kong's --help, which comes from the cli struct and so is
// the truth, and the README's table of flags. Each long name must be in
// all three, with the same short name, or none, in each.
func TestFlagsDocumented(t *testing.T) {
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"--help"}); code != 0 {
		t.Fatalf("netuse --help: exit %d, stderr %q", code, stderr)
	}
	help := flagsOf(t, "netuse --help", blockAfter(stdout.String(), "Flags:"), helpFlag)

	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("main.go has no package doc")
	}
	doc := flagsOf(t, "main.go's package doc", blockAfter(f.Doc.Text(), "Flags:"), docFlag)

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := flagsOf(t, "README.md's table of flags", blockAfter(string(readme), "| flag | meaning |"), readmeFlag)

	for _, other := range []struct {
		name  string
		flags map[string]string
	}{{"main.go's package doc", doc}, {"README.md's table of flags", table}} {
		for _, long := range slices.Sorted(maps.Keys(help)) {
			short, ok := other.flags[long]
			switch {
			case !ok:
				t.Errorf("--%s is in netuse --help but not in %s", long, other.name)
			case short != help[long]:
				t.Errorf("--%s: short name %q in %s, %q in netuse --help", long, short, other.name, help[long])
			}
		}
		for _, long := range slices.Sorted(maps.Keys(other.flags)) {
			if _, ok := help[long]; !ok {
				t.Errorf("--%s is in %s but not in netuse --help", long, other.name)
			}
		}
	}
}

// The first line of a flag in each list, with its short name if any and
// its long name:
//
//	help:   "  -i, --interval=1s   Sampling period..." or "      --json   Write..."
//	doc:    "\t-i, --interval=1s     sampling period..." (go/ast's Text keeps the tab)
//	README: "| `-i, --interval=1s` | sampling period... |"
var (
	helpFlag   = regexp.MustCompile(`^ {2,}(?:-([a-zA-Z]), )? *--([a-z][a-z0-9-]*)`)
	docFlag    = regexp.MustCompile(`^\t(?:-([a-zA-Z]), )? *--([a-z][a-z0-9-]*)`)
	readmeFlag = regexp.MustCompile("^\\| `(?:-([a-zA-Z]), )?--([a-z][a-z0-9-]*)")
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

// flagsOf reads the flags of a block: long name -> short name ("" if
// none). A line that starts like a flag but does not match re, or a flag
// listed twice, fails the test, and so does a block without flags, so that
// a change of layout is not read as "no flags".
func flagsOf(t *testing.T, where string, block []string, re *regexp.Regexp) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, l := range block {
		m := re.FindStringSubmatch(l)
		if m == nil {
			// Continuation lines of help text, and the README table's
			// separator row "| --- |", name no flag.
			if flagLike.MatchString(l) {
				t.Errorf("%s: cannot read the flag in %q", where, l)
			}
			continue
		}
		if _, dup := flags[m[2]]; dup {
			t.Errorf("%s: --%s is listed twice", where, m[2])
		}
		flags[m[2]] = m[1]
	}
	if len(flags) == 0 {
		t.Fatalf("%s: no flags found", where)
	}
	return flags
}
