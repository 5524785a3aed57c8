package main

// netuse completion SHELL: the completion scripts of bash, zsh and fish,
// written from kong's model as the man page is (cli_docs.go). What the
// model does not say is here, said once: the values of the flags that
// take one of a few (valuesOf), and of the commands' arguments. Each
// shell's script is written in its own file: cli_completion_bash.go,
// cli_completion_zsh.go, cli_completion_fish.go.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// shells are the shells netuse completion writes for.
var shells = []string{"bash", "zsh", "fish"}

// writeCompletion writes shell's completion script for app to w.
func writeCompletion(w io.Writer, app *kong.Application, shell string) error {
	var b strings.Builder
	switch shell {
	case "bash":
		writeBash(&b, app)
	case "zsh":
		writeZsh(&b, app)
	case "fish":
		writeFish(&b, app)
	default:
		return usageError{fmt.Errorf("completion %q: no such shell; want bash, zsh or fish", shell)}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// completion is how a shell completes a value: a flag's or an argument's.
type completion struct {
	kind  completionKind
	words []string // the values, for completeWords and completeList
}

type completionKind uint8

const (
	completeNothing completionKind = iota // free text (a duration, a number, a pid): no candidates
	completeWords                         // one of words
	completeList                          // words, several joined by commas (--by user,program)
	completeFiles                         // a file name
	completeIfaces                        // network interfaces, several joined by commas
)

// valuesOf says how to complete the value of the flag long of the
// command cmd ("" before a command). The words are those Validate
// accepts there, and the flag's help names them (TestCompletionValues).
func valuesOf(cmd, long string) completion {
	switch long {
	case "units":
		return completion{completeWords, []string{"bytes", "bits"}}
	case "format":
		return completion{completeWords, []string{"table", "json", "prometheus"}}
	case "owners":
		return completion{completeWords, []string{"auto", "bpf", "proc"}}
	case "source":
		return completion{completeWords, []string{"capture", "kernel", "auto"}}
	case "sort":
		if modeOf(cmd).captures() {
			return completion{completeWords, []string{"rx", "tx", "total", "name", "pid"}}
		}
		return completion{completeWords, []string{"rx", "tx", "total", "name"}}
	case "by":
		switch cmd {
		case "serve":
			return completion{completeList, serveKeys}
		case "history":
			return completion{completeList, historyKeys}
		}
		return completion{completeList, groupKeys}
	case "every":
		return completion{completeWords, levelName[:]}
	case "state", "textfile", "web-config", "db":
		return completion{kind: completeFiles}
	case "iface":
		return completion{kind: completeIfaces}
	}
	return completion{}
}

// argValues says how to complete the argument of cmd, which has one:
// help's command, completion's shell.
func argValues(app *kong.Application, cmd *kong.Node) completion {
	switch {
	case cmd.Name == "help":
		var names []string
		for _, c := range commands(app) {
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		return completion{completeWords, names}
	case cmd.Name == "completion":
		return completion{completeWords, shells}
	}
	return completion{}
}

// summary is the start of a help text, up to its first "; " or ". ", for
// the one line a shell shows beside a candidate.
func summary(help string) string {
	help = strings.Join(strings.Fields(help), " ")
	for _, sep := range []string{"; ", ". "} {
		if i := strings.Index(help, sep); i >= 0 {
			help = help[:i]
		}
	}
	// Not "(cron's totals" of "(cron's totals; the first run ...)".
	if i := strings.LastIndex(help, " ("); i >= 0 && strings.Count(help, "(") > strings.Count(help, ")") {
		help = help[:i]
	}
	return strings.TrimSuffix(help, ".")
}

// scopes are where a shell may be: nil, before a command, then each command.
func scopes(app *kong.Application) []*kong.Node {
	return append([]*kong.Node{nil}, commands(app)...)
}

// flagNames are a flag's names as typed: -i and --interval.
func flagNames(f *kong.Flag) []string {
	if f.Short != 0 {
		return []string{"-" + string(f.Short), "--" + f.Name}
	}
	return []string{"--" + f.Name}
}

// valueFlags are the names of every flag that reads the next word, in any
// command: a shell skips that word when it looks for the command.
func valueFlags(app *kong.Application) []string {
	var names []string
	for _, s := range scopes(app) {
		for _, f := range commandFlags(app, s) {
			for _, n := range flagNames(f) {
				if takesValue(f) && !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
	}
	return names
}

// sameIn groups the scopes by what key says of each, in order: the names
// of the scopes of each group ("" before a command), and the key.
func sameIn(app *kong.Application, key func(s *kong.Node) string) (names [][]string, keys []string) {
	for _, s := range scopes(app) {
		k := key(s)
		i := slices.Index(keys, k)
		if i < 0 {
			i = len(keys)
			keys = append(keys, k)
			names = append(names, nil)
		}
		names[i] = append(names[i], commandName(s))
	}
	return names, keys
}

// commandNames are the names of app's commands.
func commandNames(app *kong.Application) []string {
	var names []string
	for _, c := range commands(app) {
		names = append(names, c.Name)
	}
	return names
}

// quotedNames joins the names of scopes with sep, "" (before a command)
// as two single quotes, which bash's case and fish's arguments both read
// as the empty word.
func quotedNames(names []string, sep string) string {
	p := slices.Clone(names)
	for i, n := range p {
		if n == "" {
			p[i] = "''"
		}
	}
	return strings.Join(p, sep)
}
