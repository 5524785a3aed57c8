package main

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// zsh's completion script (cli_completion.go says what each value
// completes to).

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
