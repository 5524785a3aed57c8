package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/alecthomas/kong"
)

// testModel is kong's model of netuse's command line, as newParser builds
// it for a run.
func testModel(t *testing.T) *kong.Application {
	t.Helper()
	p, err := newParser(&cli{}, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	return p.Model
}

// docOutput runs netuse with args and returns its stdout; it fails the
// test unless netuse exits 0 with nothing on stderr.
func docOutput(t *testing.T, args ...string) string {
	t.Helper()
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main(args); code != 0 || stderr.Len() > 0 {
		t.Fatalf("netuse %s: exit %d, stderr %q; want 0, nothing", strings.Join(args, " "), code, stderr)
	}
	return stdout.String()
}

// docTool returns the path of a program a test runs. Without it the
// test fails under CI (CI set: .ci/run installs it) and skips elsewhere.
func docTool(t *testing.T, name string) string {
	t.Helper()
	shortSkip(t, "runs "+name)
	return needTool(t, name, name+" (.ci/run installs it)")
}

// writeDoc writes netuse's output for args to a file of the test's own.
func writeDoc(t *testing.T, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(docOutput(t, args...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestManHasEverything checks that the man page has every section, every
// command kong knows with its help and examples, every flag with its
// short name and placeholder, and every NETUSE_ variable.
func TestManHasEverything(t *testing.T) {
	page := docOutput(t, "man")
	if !strings.HasPrefix(page, ".TH NETUSE 1 ") {
		t.Errorf("netuse man starts %q; want .TH NETUSE 1", page[:min(len(page), 40)])
	}
	at := 0
	for _, sh := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"} {
		i := strings.Index(page, "\n.SH "+sh+"\n")
		if i < at {
			t.Errorf("netuse man: no .SH %s after the sections before it", sh)
			continue
		}
		at = i
	}
	section := func(name string) string {
		_, after, _ := strings.Cut(page, "\n.SH "+name+"\n")
		before, _, _ := strings.Cut(after, "\n.SH ")
		return before + "\n"
	}
	app := testModel(t)
	commands, options, env, synopsis, all := section("COMMANDS"), section("OPTIONS"), section("ENVIRONMENT"), section("SYNOPSIS"), section("EXAMPLES")
	for _, cmd := range app.Children {
		for _, want := range []string{".SS " + roffArg(cmd.Name) + "\n" + roffText(cmd.Help) + "\n"} {
			if !strings.Contains(commands, want) {
				t.Errorf("netuse man: COMMANDS has no %q", want)
			}
		}
		if want := ".B netuse " + roffText(cmd.Name) + "\n"; !strings.Contains(synopsis, want) {
			t.Errorf("netuse man: SYNOPSIS has no %q", want)
		}
		_, exampleLines, _ := strings.Cut(cmd.Detail, "\nExamples:\n")
		for _, l := range strings.Split(cmd.Detail, "\n") {
			if want := roffText(strings.TrimSpace(l)); !strings.Contains(commands, want) {
				t.Errorf("netuse man: COMMANDS has no line %q of %s's help", want, cmd.Name)
			}
			if strings.HasPrefix(l, "\t") && strings.Contains(exampleLines, l) && !strings.Contains(all, "\n"+roffText(l[1:])+"\n") {
				t.Errorf("netuse man: EXAMPLES has no %q of %s's help", roffText(l[1:]), cmd.Name)
			}
		}
		for _, f := range cmd.Flags {
			if want := `own flags: .*\\fB\\-\\-` + regexp.QuoteMeta(roffText(f.Name)) + `\\fR`; !regexp.MustCompile(want).MatchString(commands) {
				t.Errorf("netuse man: %s in COMMANDS does not name its flag --%s", cmd.Name, f.Name)
			}
		}
	}
	flags := slices.Clone(app.Flags)
	for _, cmd := range app.Children {
		flags = append(flags, cmd.Flags...)
	}
	for _, f := range flags {
		if want := ".TP\n" + manFlag(f) + "\n" + roffText(f.Help) + "\n"; !strings.Contains(options, want) {
			t.Errorf("netuse man: OPTIONS has no\n%s", want)
		}
		for _, e := range f.Envs {
			if want := ".B " + e + "\n" + `as \fB\-\-` + roffText(f.Name) + `\fR.`; !strings.Contains(env, want) {
				t.Errorf("netuse man: ENVIRONMENT has no %q", want)
			}
		}
	}
	// manFlag itself: the names and placeholder, as --help shows them.
	for _, f := range flags {
		got := strings.NewReplacer(`\fB`, "", `\fR`, "", `\fI`, "", `\-`, "-").Replace(manFlag(f))
		if got != f.String() {
			t.Errorf("netuse man: flag %q; want %q, as --help", got, f.String())
		}
	}
}

// TestManEscapes checks roff's escapes: in text, every hyphen is \- (a
// minus: flags copy as typed), no character is outside ASCII, and a
// line starts with a request only where one is meant.
func TestManEscapes(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"--json", `\-\-json`},
		{`a\b`, `a\eb`},
		{".hidden", `\&.hidden`},
		{"'quoted'", `\&'quoted'`},
		{"a.b 'c'", "a.b 'c'"},
		{"names cut with …", `names cut with \[u2026]`},
		{"two\nlines", "two lines"},
	} {
		if got := roffText(tt.in); got != tt.want {
			t.Errorf("roffText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := roffArg(`EXIT "STATUS"`), `"EXIT \(dqSTATUS\(dq"`; got != want {
		t.Errorf("roffArg = %q, want %q", got, want)
	}
	requests := regexp.MustCompile(`^\.(TH|SH|SS|TP|PP|RS|RE|nf|fi|br|B|I|BR|RI)( |$)`)
	for i, l := range strings.Split(docOutput(t, "man"), "\n") {
		switch {
		case strings.HasPrefix(l, ".") && !requests.MatchString(l), strings.HasPrefix(l, "'"):
			t.Errorf("netuse man, line %d: %q starts with a control character", i+1, l)
		case regexp.MustCompile(`(^|[^\\])-`).MatchString(l):
			t.Errorf("netuse man, line %d: %q has a hyphen that is not \\-", i+1, l)
		case strings.ContainsFunc(l, func(r rune) bool { return r > '~' }):
			t.Errorf("netuse man, line %d: %q holds a character outside ASCII", i+1, l)
		}
	}
}

// TestManRenders has groff, and man-db's man, render the page with every
// warning on: none may be given.
func TestManRenders(t *testing.T) {
	page := writeDoc(t, "netuse.1", "man")
	for _, args := range [][]string{
		{docTool(t, "groff"), "-man", "-Tutf8", "-ww", "-z", page},
		{docTool(t, "man"), "--warnings=w", "-l", page},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "LANG=C.UTF-8")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("%s: %v, warnings:\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if filepath.Base(args[0]) == "man" {
			for _, want := range []string{"NETUSE(1)", "-i, --interval=1s", "netuse completion bash | sudo tee /etc/bash_completion.d/netuse"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("man -l: no %q in the page:\n%s", want, stdout.String())
				}
			}
		}
	}
}

// TestCompletionScriptsParse has each shell read its script without
// running it.
func TestCompletionScriptsParse(t *testing.T) {
	for _, shell := range shells {
		t.Run(shell, func(t *testing.T) {
			script := writeDoc(t, "netuse."+shell, "completion", shell)
			out, err := exec.Command(docTool(t, shell), "-n", script).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
}

// TestCompletionUnknownShell checks the usage error of a shell netuse
// does not write for.
func TestCompletionUnknownShell(t *testing.T) {
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	code := a.main([]string{"completion", "tcsh"})
	want := "netuse: completion \"tcsh\": no such shell; want bash, zsh or fish; see 'netuse --help'\n"
	if code != 2 || stdout.Len() > 0 || stderr.String() != want {
		t.Errorf("netuse completion tcsh: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, stdout, stderr, want)
	}
	// Hidden from --help, which lists the commands that report.
	for _, cmd := range []string{"man", "completion"} {
		if help := docOutput(t, "--help"); strings.Contains(help, "\n  "+cmd+" ") {
			t.Errorf("netuse --help lists %s:\n%s", cmd, help)
		}
	}
}

// longFlags are the long names of the flags cmd takes ("" before a
// command), as a shell offers them after --.
func longFlags(t *testing.T, cmd string) []string {
	app := testModel(t)
	var node *kong.Node
	for _, c := range commands(app) {
		if c.Name == cmd {
			node = c
		}
	}
	var names []string
	for _, f := range commandFlags(app, node) {
		names = append(names, "--"+f.Name)
	}
	return names
}

// completionCase is a command line being typed and what the shell should
// offer at its end.
type completionCase struct {
	line string   // the words so far; the last is the one being completed
	want []string // the candidates, in any order
}

// completionCases are the cases bash, zsh and fish must agree on. The flags of
// each command come from commandFlags, and are checked against the cli
// struct by the explicit cases after them.
func completionCases(t *testing.T) []completionCase {
	ifaces, _ := filepath.Glob("/sys/class/net/*")
	for i := range ifaces {
		ifaces[i] = filepath.Base(ifaces[i])
	}
	cmds := []string{"total", "iface", "proc", "conn", "serve", "history", "help", "version", "man", "completion"}
	cases := []completionCase{
		{"netuse proc --so", []string{"--sort", "--source"}},
		{"netuse proc --source ", []string{"capture", "kernel", "auto"}},
		{"netuse conn --source ", []string{"capture", "kernel", "auto"}},
		{"netuse --units ", []string{"bytes", "bits"}},
		{"netuse --units b", []string{"bytes", "bits"}},
		{"netuse ", cmds},
		{"netuse --sort total ", cmds}, // total is --sort's value
		{"netuse -i 2 --json ", cmds},
		{"netuse iface --sort ", []string{"rx", "tx", "total", "name"}},
		{"netuse conn --sort ", []string{"rx", "tx", "total", "name", "pid"}},
		{"netuse --format ", []string{"table", "json", "prometheus"}},
		{"netuse proc --owners ", []string{"auto", "bpf", "proc"}},
		{"netuse proc --by ", []string{"program", "user", "container", "netns", "remote"}},
		{"netuse serve --by user,", []string{"user,program", "user,user", "user,container", "user,netns", "user,pid"}},
		{"netuse help ", []string{"total", "iface", "proc", "conn", "serve", "history", "help", "version"}},
		{"netuse history --every ", []string{"5m", "hour", "day", "month"}},
		{"netuse history --by ", []string{"program", "user", "container", "iface", "reason"}},
		{"netuse history --sort ", []string{"rx", "tx", "total", "name"}},
		{"netuse completion ", []string{"bash", "zsh", "fish"}},
		{"netuse proc --interval ", nil},
		{"netuse --iface ", ifaces},
		{"netuse serve --w", []string{"--web-config"}},
		{"netuse serve --j", nil}, // serve refuses --json
		{"netuse total --st", []string{"--state"}},
		{"netuse proc --st", nil},
	}
	for _, cmd := range []string{"", "total", "iface", "proc", "conn", "serve", "history", "man"} {
		cases = append(cases, completionCase{strings.Join([]string{"netuse", cmd, "--"}, " "), longFlags(t, cmd)})
	}
	return cases
}

// TestCommandFlags checks commandFlags against the cli struct: proc's own
// flags, --state, serve's refusals.
func TestCommandFlags(t *testing.T) {
	for _, tt := range []struct {
		cmd        string
		has, hasNo []string
	}{
		{"", []string{"--interval", "--json", "--textfile", "--version", "--help"}, []string{"--state", "--by", "--listen"}},
		{"total", []string{"--state", "--sort"}, []string{"--by", "--owners"}},
		{"proc", []string{"--owners", "--max-flows", "--by", "--resolve", "--pid", "--program", "--user", "--port", "--remote", "--json"}, []string{"--state", "--listen"}},
		{"serve", []string{"--listen", "--web-config", "--by", "--owners", "--max-flows", "--iface", "--interval"}, []string{"--json", "--count", "--format", "--textfile", "--sort", "--top", "--units", "--si", "--no-clear"}},
		{"version", []string{"--help"}, []string{"--interval"}},
	} {
		got := longFlags(t, tt.cmd)
		for _, f := range tt.has {
			if !slices.Contains(got, f) {
				t.Errorf("netuse %s: %s not among its flags %q", tt.cmd, f, got)
			}
		}
		for _, f := range tt.hasNo {
			if slices.Contains(got, f) {
				t.Errorf("netuse %s: %s among its flags %q", tt.cmd, f, got)
			}
		}
	}
}

// TestCompletionBash sources the bash script, sets COMP_WORDS and
// COMP_CWORD as bash does for each case, calls the function complete
// names for netuse, and reads COMPREPLY.
func TestCompletionBash(t *testing.T) {
	bash := docTool(t, "bash")
	script := writeDoc(t, "netuse.bash", "completion", "bash")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "state.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := append(completionCases(t),
		completionCase{"netuse --units=b", []string{"--units=bytes", "--units=bits"}}, // COMP_WORDBREAKS without "="
		completionCase{"netuse --units = b", []string{"bytes", "bits"}},               // with it: three words
		completionCase{"netuse proc --by user,pr", []string{"user,program"}},
		completionCase{"netuse iface --state " + dir + "/st", []string{dir + "/state.json"}},
	)
	for _, tt := range cases {
		words := strings.Split(tt.line, " ")
		// The words as a bash array, each single-quoted.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		driver := `source "$1" || exit 1
f=$(complete -p netuse) && f=${f#*-F } && f=${f%% *} || exit 1
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
"$f" netuse "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command(bash, "--norc", "--noprofile", "-c", driver, "bash", script).CombinedOutput()
		if err != nil {
			t.Errorf("bash, %q: %v\n%s", tt.line, err, out)
			continue
		}
		checkCandidates(t, "bash", tt, strings.Fields(string(out)))
	}
}

// TestCompletionFish asks fish what it would offer: complete -C.
func TestCompletionFish(t *testing.T) {
	fish := docTool(t, "fish")
	script := writeDoc(t, "netuse.fish", "completion", "fish")
	cases := append(completionCases(t), completionCase{"netuse proc --by=user,pr", []string{"--by=user,program"}})
	for _, tt := range cases {
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(tt.line) + "'"
		out, err := exec.Command(fish, "--no-config", "-c", `source $argv[1]; or exit 1; complete -C `+quoted, script).CombinedOutput()
		if err != nil {
			t.Errorf("fish, %q: %v\n%s", tt.line, err, out)
			continue
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			// A candidate, then a tab and its description.
			if c, _, _ := strings.Cut(l, "\t"); c != "" {
				got = append(got, c)
			}
		}
		checkCandidates(t, "fish", tt, got)
	}
}

// checkCandidates compares a shell's candidates with a case's, as sets.
func checkCandidates(t *testing.T, shell string, tt completionCase, got []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.want))
	if !slices.Equal(g, w) {
		t.Errorf("%s, %q: offers %q; want %q", shell, tt.line, g, w)
	}
}

// TestCompletionValues checks valuesOf both ways against Validate: in
// each command, every value offered for a flag is accepted, and every
// other value offered anywhere for that flag, or a made-up one, is
// refused. The flag's help names each value it offers, too.
func TestCompletionValues(t *testing.T) {
	app := testModel(t)
	for _, s := range scopes(app) {
		cmd := commandName(s)
		if s != nil && !slices.Contains(modeNames[:], cmd) && cmd != "history" {
			continue
		}
		for _, f := range commandFlags(app, s) {
			c := valuesOf(cmd, f.Name)
			if c.kind != completeWords && c.kind != completeList {
				continue
			}
			// Every value offered anywhere for the flag, and every word of
			// its help ("bytes or bits"), most of which are no values.
			candidates := strings.FieldsFunc(f.Help, func(r rune) bool { return !unicode.IsLetter(r) })
			for _, other := range append(modeNames[:], "history") {
				candidates = append(candidates, valuesOf(other, f.Name).words...)
			}
			slices.Sort(candidates)
			for _, v := range slices.Compact(candidates) {
				args := append(strings.Fields(cmd), "--"+f.Name, v)
				_, err := newParserOK(t).Parse(args)
				if offered := slices.Contains(c.words, v); offered != (err == nil) {
					t.Errorf("netuse %s: offered %v, but Validate says %v", strings.Join(args, " "), offered, err)
				}
			}
			for _, v := range c.words {
				if !strings.Contains(f.Help, v) {
					t.Errorf("netuse %s --%s: offers %q, which its help does not name: %q", cmd, f.Name, v, f.Help)
				}
			}
		}
	}
}

// newParserOK is a parser of the test's own, which never exits.
func newParserOK(t *testing.T) *kong.Kong {
	t.Helper()
	p, err := newParser(&cli{}, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// zshHarness types a line and a Tab into an interactive zsh in a
// pseudo-terminal (zsh/zpty), with _netuse in $fpath ($1), and prints
// the matches completion adds, one a line: compadd is wrapped to print
// them (the calls with -O, -A or -D are _describe's own bookkeeping).
// After completion, a function says it is done and ends the shell.
// $2 is the line.
const zshHarness = `zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT=; RPROMPT=; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'bindkey "^I" complete-word; zstyle ":completion:*" insert-tab false'
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a __m; builtin compadd -O __m "$@"; print -rl -- "" "<<"${^__m}; }'
zpty -w z '__end() { print -rl -- "" "<<END"; exit }; comppostfuncs=(__end)'
zpty -n -w z "$2"$'\t'
while zpty -r z; do :; done 2>/dev/null | while IFS= read -r line; do
	line=${line%$'\r'}
	[[ $line == '<<END' ]] && exit 0
	[[ $line == '<<'* ]] && print -r -- ${line#<<}
done
exit 4
`

// TestCompletionZsh has an interactive zsh complete each case.
func TestCompletionZsh(t *testing.T) {
	zsh := docTool(t, "zsh")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_netuse"), []byte(docOutput(t, "completion", "zsh")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range completionCases(t) {
		switch tt.line {
		case "netuse serve --by user,":
			// _values offers each key once, and the one being typed alone.
			tt.want = []string{"program", "container", "netns", "pid"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, zsh, "-f", "-c", zshHarness, "zsh", dir, tt.line)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Errorf("zsh, %q: %v\n%s%s", tt.line, err, out, stderr.Bytes())
			continue
		}
		checkCandidates(t, "zsh", tt, strings.Fields(string(out)))
	}
}
