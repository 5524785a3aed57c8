package main

// netuse man and netuse completion: the man page, and the model walk it
// shares with the completion scripts (cli_completion.go), all written
// from kong's model of the command line (newParser): the commands, flags,
// placeholders and help that --help prints, so that they cannot disagree.
// What the model does not hold is said here once: which flags a command
// takes (commandFlags), and the man page's exit status and see-also.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// manCmd is netuse man.
type manCmd struct{}

func (manCmd) Help() string {
	return `Writes netuse's man page, in roff, to stdout: the commands, flags and
help that --help prints, on one page.

Examples:

	netuse man | man -l -
	netuse man | sudo tee /usr/local/share/man/man1/netuse.1`
}

// completionCmd is netuse completion SHELL.
type completionCmd struct {
	Shell string `arg:"" placeholder:"SHELL" help:"bash, zsh or fish."`
}

func (completionCmd) Help() string {
	return `Writes the completion script of a shell to stdout: commands, each
command's flags, and the values of the flags that take one of a few
(--units, --format, --sort, --owners, --by), files for --state,
--textfile and --web-config, interfaces for --iface.

Examples:

	netuse completion bash | sudo tee /etc/bash_completion.d/netuse
	netuse completion zsh | sudo tee /usr/local/share/zsh/site-functions/_netuse
	netuse completion fish > ~/.config/fish/completions/netuse.fish`
}

// commands are app's commands, hidden ones too, in the cli struct's order.
func commands(app *kong.Application) []*kong.Node {
	var cmds []*kong.Node
	for _, n := range app.Children {
		if n.Type == kong.CommandNode {
			cmds = append(cmds, n)
		}
	}
	return cmds
}

// commandFlags are the flags cmd takes, the root's first; cmd nil is
// netuse before a command. The root's flags are those of the commands
// that report (modeNames) and history's, but for those the command
// refuses (flagsRefused); the others (help, version, man, completion) take
// --help alone.
func commandFlags(app *kong.Application, cmd *kong.Node) []*kong.Flag {
	var flags []*kong.Flag
	for _, f := range app.Flags {
		switch {
		case f.Hidden:
		case cmd == nil, f == app.HelpFlag:
			flags = append(flags, f)
		case slices.Contains(flagsRefused(cmd.Name), f.Name):
		case slices.Contains(modeNames[:], cmd.Name), cmd.Name == "history":
			flags = append(flags, f)
		}
	}
	if cmd != nil {
		for _, f := range cmd.Flags {
			if !f.Hidden {
				flags = append(flags, f)
			}
		}
	}
	return flags
}

// commandName is cmd's name, "" for nil: netuse before a command.
func commandName(cmd *kong.Node) string {
	if cmd == nil {
		return ""
	}
	return cmd.Name
}

// takesValue reports whether f reads the word after it.
func takesValue(f *kong.Flag) bool { return !f.IsBool() && !f.IsCounter() }

// writeMan writes netuse's man page, man(7) macros, to w.
func writeMan(w io.Writer, app *kong.Application) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH NETUSE 1 \"\" %s \"User Commands\"\n", roffArg(versionLine()))
	b.WriteString(".SH NAME\n")
	name := strings.TrimSuffix(app.Help, ".")
	b.WriteString(`netuse \- ` + roffText(strings.ToLower(name[:1])+name[1:]) + "\n")

	b.WriteString(".SH SYNOPSIS\n")
	b.WriteString(".B netuse\n.RI [ flags ]\n")
	for _, cmd := range commands(app) {
		b.WriteString(".br\n.B netuse " + roffText(cmd.Name) + "\n")
		if len(commandFlags(app, cmd)) > 1 { // more than --help
			b.WriteString(".RI [ flags ]\n")
		}
		for _, arg := range cmd.Positional {
			if arg.Required {
				b.WriteString(".I " + roffArg(arg.Name) + "\n")
			} else {
				b.WriteString(".RI [ " + roffArg(arg.Name) + " ]\n")
			}
		}
	}

	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText(app.Help) + "\n")
	if app.DefaultCmd != nil {
		b.WriteString("With no command, netuse runs \\fB" + roffText(app.DefaultCmd.Name) + "\\fR.\n")
	}
	b.WriteString(".PP\n" + roffText("The flags listed under OPTIONS, Flags, may stand before or after the command; a command's own flags go after it. Every flag but --help and --version may also be set from the environment (see ENVIRONMENT).") + "\n")

	b.WriteString(".SH COMMANDS\n")
	for _, cmd := range commands(app) {
		manCommand(&b, app, cmd)
	}
	b.WriteString(".SH OPTIONS\n")
	manOptions(&b, app)
	b.WriteString(".SH ENVIRONMENT\n")
	manEnvironment(&b, app)
	b.WriteString(manExitStatus)
	b.WriteString(".SH EXAMPLES\n")
	for _, cmd := range commands(app) {
		if ex := examples(cmd.Detail); len(ex) > 0 {
			b.WriteString(".PP\n" + roffText(cmd.Name+":") + "\n")
			roffExample(&b, ex)
		}
	}
	b.WriteString(manSeeAlso)
	_, err := io.WriteString(w, b.String())
	return err
}

// manCommand writes a command's part of COMMANDS: its one-line help, its
// Help() text, and the names of its own flags.
func manCommand(b *strings.Builder, app *kong.Application, cmd *kong.Node) {
	b.WriteString(".SS " + roffArg(cmd.Name) + "\n")
	b.WriteString(roffText(cmd.Help) + "\n")
	roffParagraphs(b, cmd.Detail)
	var own []string
	for _, f := range cmd.Flags {
		if !f.Hidden {
			own = append(own, `\fB\-\-`+roffText(f.Name)+`\fR`)
		}
	}
	if len(own) > 0 {
		b.WriteString(".PP\nIts own flags: " + strings.Join(own, ", ") + ".\n")
	}
	if names := flagsRefused(cmd.Name); names != nil {
		var refused []string
		for _, name := range names {
			refused = append(refused, `\fB\-\-`+roffText(name)+`\fR`)
		}
		b.WriteString("It refuses these flags of the other commands: " + strings.Join(refused, ", ") + ".\n")
	}
}

// manOptions writes OPTIONS: the root's flags, then each group's, as
// --help lists them (a flag shared by commands, --by of proc and conn,
// once per group).
func manOptions(b *strings.Builder, app *kong.Application) {
	type group struct {
		title string
		flags []*kong.Flag
	}
	groups := []*group{{title: "Flags"}}
	byKey := map[string]*group{}
	seen := map[string]bool{} // group title + flag name
	add := func(title string, f *kong.Flag) {
		g := byKey[title]
		if g == nil {
			g = &group{title: title}
			byKey[title] = g
			groups = append(groups, g)
		}
		if !seen[title+" "+f.Name] {
			seen[title+" "+f.Name] = true
			g.flags = append(g.flags, f)
		}
	}
	for _, f := range app.Flags {
		if !f.Hidden {
			groups[0].flags = append(groups[0].flags, f)
		}
	}
	for _, cmd := range commands(app) {
		for _, f := range cmd.Flags {
			title := "Flags of " + cmd.Name
			if f.Group != nil {
				title = strings.TrimSuffix(f.Group.Title, ":")
			}
			if !f.Hidden {
				add(title, f)
			}
		}
	}
	for _, g := range groups {
		b.WriteString(".SS " + roffArg(g.title) + "\n")
		for _, f := range g.flags {
			b.WriteString(".TP\n" + manFlag(f) + "\n")
			b.WriteString(roffText(f.Help) + "\n")
			if f.HasDefault && f.Default != "" && f.Default != f.FormatPlaceHolder() {
				b.WriteString("Default: " + roffText(f.Default) + ".\n")
			}
		}
	}
}

// manFlag is a flag's name as OPTIONS shows it: \fB\-i\fR, \fB\-\-interval\fR=\fI1s\fR.
func manFlag(f *kong.Flag) string {
	s := `\fB\-\-` + roffText(f.Name) + `\fR`
	if f.Short != 0 {
		s = `\fB\-` + roffText(string(f.Short)) + `\fR, ` + s
	}
	if takesValue(f) {
		s += `=\fI` + roffText(f.FormatPlaceHolder()) + `\fR`
	}
	return s
}

// manEnvironment writes ENVIRONMENT: each NETUSE_ variable, once, with
// the flag it sets.
func manEnvironment(b *strings.Builder, app *kong.Application) {
	b.WriteString(roffText("Every flag but --help and --version may be set from the environment as NETUSE_<FLAG>; the command line wins over it. A list is comma-separated (NETUSE_IFACE=eth0,wlan0); an empty variable counts as unset. Variables of flags that a command does not take are let be.") + "\n")
	seen := map[string]bool{}
	walk := func(flags []*kong.Flag) {
		for _, f := range flags {
			for _, env := range f.Envs {
				if f.Hidden || seen[env] {
					continue
				}
				seen[env] = true
				b.WriteString(".TP\n.B " + roffArg(env) + "\n" + `as \fB\-\-` + roffText(f.Name) + `\fR.` + "\n")
			}
		}
	}
	walk(app.Flags)
	for _, cmd := range commands(app) {
		walk(cmd.Flags)
	}
}

// manExitStatus and manSeeAlso are what kong's model does not hold.
const (
	manExitStatus = `.SH EXIT STATUS
.TP
.B 0
success: the count was reached, or netuse was interrupted (SIGINT, SIGTERM, SIGHUP), or stdout was closed
.TP
.B 1
a failure at run time, said on stderr
.TP
.B 2
bad usage: an unknown flag or command, or a bad value
`
	manSeeAlso = `.SH SEE ALSO
.BR ip (8),
.BR ss (8),
.BR nethogs (8),
.BR iftop (8),
.BR setcap (8),
.BR capabilities (7),
.BR cron (8)
.PP
The README in netuse's source: the NDJSON schema, the metrics, the privileges.
`
)

// examples returns the indented lines that follow "Examples:" in a
// command's Help() text, without their indent.
func examples(detail string) []string {
	_, after, ok := strings.Cut(detail, "Examples:\n")
	if !ok {
		return nil
	}
	var ex []string
	for _, l := range strings.Split(after, "\n") {
		if strings.HasPrefix(l, "\t") {
			ex = append(ex, strings.TrimPrefix(l, "\t"))
		}
	}
	return ex
}

// roffParagraphs writes a Help() text as go doc reads it: paragraphs
// split by blank lines, and indented lines as examples, kept as they are.
func roffParagraphs(b *strings.Builder, detail string) {
	var ex []string
	para := false // a paragraph is open
	for _, l := range strings.Split(detail, "\n") {
		switch {
		case strings.HasPrefix(l, "\t"):
			ex = append(ex, strings.TrimPrefix(l, "\t"))
			para = false
			continue
		case len(ex) > 0:
			roffExample(b, ex)
			ex = nil
		}
		switch {
		case strings.TrimSpace(l) == "":
			para = false
		case !para:
			b.WriteString(".PP\n")
			para = true
			fallthrough
		default:
			b.WriteString(roffText(strings.TrimSpace(l)) + "\n")
		}
	}
	if len(ex) > 0 {
		roffExample(b, ex)
	}
}

// roffExample writes lines indented, unfilled, as typed.
func roffExample(b *strings.Builder, lines []string) {
	b.WriteString(".PP\n.RS 4\n.nf\n")
	for _, l := range lines {
		b.WriteString(roffText(l) + "\n")
	}
	b.WriteString(".fi\n.RE\n")
}

// roffText escapes one line of text for roff: a backslash is \e; a
// hyphen is \- so that flags render, and copy, as the ASCII minus the
// shell needs; other characters than ASCII are \[uXXXX] (groff reads its
// input as Latin-1); a line that would start with a control character
// (. or ') starts with \& instead. Newlines become spaces.
func roffText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r == '\n', r == '\t':
			b.WriteByte(' ')
		case r > '~':
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "'") {
		out = `\&` + out
	}
	return out
}

// roffArg is s as one argument of a macro: escaped, and quoted when it
// holds a space (a quote inside is \(dq).
func roffArg(s string) string {
	s = strings.ReplaceAll(roffText(s), `"`, `\(dq`)
	if strings.ContainsAny(s, " ") || s == "" {
		return `"` + s + `"`
	}
	return s
}
