package main

// netuse completion SHELL: the completion scripts of bash, zsh and fish,
// written from kong's model as the man page is (cli_docs.go). What the
// model does not say is here, said once: the values of the flags that
// take one of a few (valuesOf), and of the commands' arguments.

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

// writeBash writes bash's completion script: a function _netuse that
// reads COMP_WORDS and COMP_CWORD and sets COMPREPLY, without
// bash-completion's helpers, so that it works in bash 3.2 (macOS) too.
func writeBash(b *strings.Builder, app *kong.Application) {
	valueCase := strings.Join(valueFlags(app), "|")
	fmt.Fprintf(b, `# bash completion for netuse, written by netuse completion bash from the
# model netuse --help prints. Install:
#	netuse completion bash | sudo tee /etc/bash_completion.d/netuse

_netuse() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}
	# --units=bits: three words when COMP_WORDBREAKS holds "=" (the
	# default), else one, whose candidates keep the --units= ($eq).
	local eq=
	if [[ $cur == --*=* ]]; then
		prev=${cur%%%%=*} eq=${cur%%%%=*}= cur=${cur#*=}
	elif [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	# The command: the first word that names one and is no flag's value.
	local cmd= at=0 j
	for ((j = 1; j < COMP_CWORD; j++)); do
		case ${COMP_WORDS[j]} in
		%s)
			[[ ${COMP_WORDS[j+1]} == = ]] && ((j++))
			((j++)) ;;
		%s)
			cmd=${COMP_WORDS[j]} at=$j
			break ;;
		esac
	done
	local pre=$eq${cur%%"${cur##*,}"} # and a list's keys before the one being typed
	case $prev in
`, valueCase, strings.Join(commandNames(app), "|"))
	for _, name := range valueFlags(app) {
		if strings.HasPrefix(name, "--") {
			bashValue(b, app, strings.TrimPrefix(name, "--"), name)
		}
	}
	b.WriteString("\tesac\n\tif [[ $cur == -* ]]; then\n\t\tcase $cmd in\n")
	names, keys := sameIn(app, func(s *kong.Node) string {
		var ns []string
		for _, f := range commandFlags(app, s) {
			ns = append(ns, flagNames(f)...)
		}
		return strings.Join(ns, " ")
	})
	for i := range names {
		fmt.Fprintf(b, "\t\t%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", bashPattern(names[i]), keys[i])
	}
	b.WriteString("\t\tesac\n\t\treturn\n\tfi\n\tcase $cmd in\n")
	fmt.Fprintf(b, "\t'') COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", strings.Join(commandNames(app), " "))
	for _, cmd := range commands(app) {
		if len(cmd.Positional) == 0 {
			continue
		}
		// One argument each (help's command, completion's shell): the word after the command.
		c := argValues(app, cmd)
		fmt.Fprintf(b, "\t%s) ((COMP_CWORD == at + 1)) && COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", cmd.Name, strings.Join(c.words, " "))
	}
	b.WriteString("\tesac\n}\n\ncomplete -F _netuse netuse\n")
}

// bashValue writes the case of $prev for the flag long: its values, per
// command where they differ; nothing for free text, so that the
// commands are not offered as its value.
func bashValue(b *strings.Builder, app *kong.Application, long, name string) {
	pattern := name
	for _, s := range scopes(app) {
		for _, f := range commandFlags(app, s) {
			if f.Name == long && f.Short != 0 {
				pattern = "-" + string(f.Short) + "|" + name
			}
		}
	}
	names, _ := sameIn(app, func(s *kong.Node) string { return fmt.Sprint(valuesOf(commandName(s), long)) })
	if len(names) == 1 {
		fmt.Fprintf(b, "\t%s) %s; return ;;\n", pattern, bashReply(valuesOf("", long)))
		return
	}
	fmt.Fprintf(b, "\t%s)\n\t\tcase $cmd in\n", pattern)
	for i := range names {
		fmt.Fprintf(b, "\t\t%s) %s ;;\n", bashPattern(names[i]), bashReply(valuesOf(names[i][0], long)))
	}
	b.WriteString("\t\tesac\n\t\treturn ;;\n")
}

// bashReply sets COMPREPLY to the candidates of c.
func bashReply(c completion) string {
	switch c.kind {
	case completeWords:
		return fmt.Sprintf(`COMPREPLY=($(compgen -P "$eq" -W '%s' -- "$cur"))`, strings.Join(c.words, " "))
	case completeList:
		return fmt.Sprintf(`COMPREPLY=($(compgen -P "$pre" -W '%s' -- "${cur##*,}"))`, strings.Join(c.words, " "))
	case completeFiles:
		return `compopt -o filenames 2>/dev/null; local IFS=$'\n'; COMPREPLY=($(compgen -P "$eq" -f -- "$cur"))`
	case completeIfaces:
		return `COMPREPLY=($(compgen -P "$pre" -W "$(command ls /sys/class/net 2>/dev/null)" -- "${cur##*,}"))`
	}
	return "COMPREPLY=()"
}

// bashPattern is a case pattern for the names of commands; "" (none yet)
// is two single quotes.
func bashPattern(names []string) string {
	p := slices.Clone(names)
	for i, n := range p {
		if n == "" {
			p[i] = "''"
		}
	}
	return strings.Join(p, "|")
}

// writeZsh writes zsh's completion script, a function for fpath (_netuse)
// made of _arguments specs: the root's flags and the command, then the
// command's flags.
func writeZsh(b *strings.Builder, app *kong.Application) {
	b.WriteString(`#compdef netuse
# zsh completion for netuse, written by netuse completion zsh from the
# model netuse --help prints. Install it as _netuse in a directory of
# $fpath, before compinit runs:
#	netuse completion zsh | sudo tee /usr/local/share/zsh/site-functions/_netuse

_netuse() {
	local curcontext=$curcontext state state_descr line ret=1
	typeset -A opt_args
	_arguments -C -s -A '-*' : \
`)
	for _, f := range commandFlags(app, nil) {
		b.WriteString("\t\t" + zshSpec("", f) + " \\\n")
	}
	b.WriteString("\t\t'1: :->command' '*:: :->args' && ret=0\n")
	b.WriteString("\tcase $state in\n\tcommand)\n\t\tlocal -a commands=(\n")
	for _, cmd := range commands(app) {
		b.WriteString("\t\t\t" + zshQuote(cmd.Name+":"+summary(cmd.Help)) + "\n")
	}
	b.WriteString("\t\t)\n\t\t_describe -t commands 'netuse command' commands && ret=0 ;;\n")
	b.WriteString("\targs)\n\t\tcurcontext=${curcontext%:*:*}:netuse-$words[1]:\n\t\tcase $words[1] in\n")
	names, keys := sameIn(app, func(s *kong.Node) string {
		if s == nil {
			return ""
		}
		var specs []string
		for _, f := range commandFlags(app, s) {
			specs = append(specs, zshSpec(s.Name, f))
		}
		for i, arg := range s.Positional {
			c := argValues(app, s)
			specs = append(specs, zshQuote(fmt.Sprintf("%d:%s:%s", i+1, arg.Name, zshAction(c))))
		}
		return strings.Join(specs, " \\\n\t\t\t\t")
	})
	for i := range names {
		if keys[i] == "" {
			continue
		}
		fmt.Fprintf(b, "\t\t%s)\n\t\t\t_arguments -s : \\\n\t\t\t\t%s && ret=0 ;;\n", strings.Join(names[i], "|"), keys[i])
	}
	b.WriteString("\t\tesac ;;\n\tesac\n\treturn ret\n}\n\n_netuse \"$@\"\n")
}

// zshSpec is an _arguments spec of the flag f of the command cmd:
// {-i+,--interval=}'[Sampling period]:1s: '.
func zshSpec(cmd string, f *kong.Flag) string {
	desc := "[" + zshDesc(summary(f.Help)) + "]"
	var action string
	if takesValue(f) {
		action = ":" + zshDesc(f.FormatPlaceHolder()) + ":" + zshAction(valuesOf(cmd, f.Name))
	}
	repeat := ""
	if valuesOf(cmd, f.Name).kind == completeIfaces {
		repeat = "*" // --iface, repeatable
	}
	long := "--" + f.Name
	short := ""
	if f.Short != 0 {
		short = "-" + string(f.Short)
	}
	if takesValue(f) {
		long += "="
		if short != "" {
			short += "+"
		}
	}
	if short == "" {
		return zshQuote(repeat + long + desc + action)
	}
	return repeat + "{" + short + "," + long + "}" + zshQuote(desc+action)
}

// zshAction is the action of an _arguments spec that completes c.
func zshAction(c completion) string {
	switch c.kind {
	case completeWords:
		return "(" + strings.Join(c.words, " ") + ")"
	case completeList:
		return "_values -s , key " + strings.Join(c.words, " ")
	case completeFiles:
		return "_files"
	case completeIfaces:
		return "_sequence _net_interfaces"
	}
	return " "
}

// zshDesc escapes what _arguments reads in a description or message.
func zshDesc(s string) string {
	return strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeFish writes fish's completion script: a complete line per flag and
// command, under a condition on the command being typed.
func writeFish(b *strings.Builder, app *kong.Application) {
	fmt.Fprintf(b, `# fish completion for netuse, written by netuse completion fish from the
# model netuse --help prints. Install:
#	netuse completion fish > ~/.config/fish/completions/netuse.fish

# __netuse_command prints the command being typed, if any: the first word
# that names one and is no flag's value.
function __netuse_command
	set -l words (commandline -opc)
	set -e words[1]
	set -l skip 0
	for w in $words
		if test $skip = 1
			set skip 0
			continue
		end
		switch $w
			case %s
				set skip 1
			case %s
				echo $w
				return 0
		end
	end
	return 1
end

# __netuse_using succeeds if the command being typed is one of its
# arguments; '' is none yet.
function __netuse_using
	set -l cmd (__netuse_command)
	contains -- "$cmd" $argv
end

# __netuse_list prints each of its arguments after the keys of a list
# already typed (--by user,pro).
function __netuse_list
	set -l pre (string replace -r -- '^--[^=]*=' '' (commandline -ct) | string match -r -- '^.*,')
	set -q pre[1]; or set pre ''
	for key in $argv
		echo $pre$key
	end
end

complete -c netuse -f
`, strings.Join(valueFlags(app), " "), strings.Join(commandNames(app), " "))
	for _, cmd := range commands(app) {
		fmt.Fprintf(b, "complete -c netuse -n \"__netuse_using ''\" -a %s -d %s\n", cmd.Name, fishQuote(summary(cmd.Help)))
	}
	for _, cmd := range commands(app) {
		if len(cmd.Positional) > 0 {
			c := argValues(app, cmd)
			fmt.Fprintf(b, "complete -c netuse -n '__netuse_using %s' -a %s\n", cmd.Name, fishQuote(strings.Join(c.words, " ")))
		}
	}
	// Each flag, once for the scopes that take it with the same values.
	var done []string
	for _, s := range scopes(app) {
		for _, f := range commandFlags(app, s) {
			if slices.Contains(done, f.Name) {
				continue
			}
			done = append(done, f.Name)
			names, keys := sameIn(app, func(s *kong.Node) string {
				for _, g := range commandFlags(app, s) {
					if g.Name == f.Name {
						return fishFlag(g, valuesOf(commandName(s), f.Name))
					}
				}
				return ""
			})
			for i := range names {
				if keys[i] == "" {
					continue
				}
				fmt.Fprintf(b, "complete -c netuse -n \"__netuse_using %s\" %s\n", fishScopes(names[i]), keys[i])
			}
		}
	}
}

// fishFlag is the rest of the complete line of f whose value completes as c.
func fishFlag(f *kong.Flag, c completion) string {
	s := ""
	if f.Short != 0 {
		s = "-s " + string(f.Short) + " "
	}
	s += "-l " + f.Name
	if takesValue(f) {
		switch c.kind {
		case completeWords:
			s += " -x -a " + fishQuote(strings.Join(c.words, " "))
		case completeList:
			s += " -x -a " + fishQuote("(__netuse_list "+strings.Join(c.words, " ")+")")
		case completeFiles:
			s += " -r -F"
		case completeIfaces:
			s += " -x -a " + fishQuote("(__netuse_list (string replace -r '.*/' '' /sys/class/net/*))")
		default:
			s += " -x"
		}
	}
	return s + " -d " + fishQuote(summary(f.Help))
}

// fishScopes are the arguments of __netuse_using for these scopes.
func fishScopes(names []string) string {
	p := slices.Clone(names)
	for i, n := range p {
		if n == "" {
			p[i] = "''"
		}
	}
	return strings.Join(p, " ")
}

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
