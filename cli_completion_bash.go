package main

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// bash's completion script (cli_completion.go says what each value
// completes to).

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
func bashPattern(names []string) string { return quotedNames(names, "|") }
