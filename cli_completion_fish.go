package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// fish's completion script (cli_completion.go says what each value
// completes to).

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
func fishScopes(names []string) string { return quotedNames(names, " ") }

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
