package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// What netuse says of its own usage: the help, with netuse's usage line
// and without the flags a command refuses, and the errors of a command
// line it refuses (exit status 2).

// printHelp is kong's help with netuse's own usage line: kong's "netuse
// <command> [flags]" would hide that the command may be left out. It
// writes the help at once, as kong does, so that netuse --help | head -1
// has it all in one write.
func printHelp(o kong.HelpOptions, kctx *kong.Context) error {
	var b bytes.Buffer
	if kctx.Selected() == nil {
		b.WriteString("Usage: netuse [total|iface|proc|conn|serve|history] [flags]\n")
		o.NoAppSummary = true
	}
	stdout := kctx.Stdout
	kctx.Stdout = &b
	err := kong.DefaultHelpPrinter(o, kctx)
	kctx.Stdout = stdout
	if err != nil {
		return err
	}
	if refused := flagsRefused(commandOf(kctx)); refused != nil {
		b = *bytes.NewBuffer(dropFlags(b.Bytes(), refused))
	}
	_, err = stdout.Write(b.Bytes())
	return err
}

// dropFlags removes the flags named long from kong's help: each flag's
// line, "  -c, --count=0   Report...", and the lines of its help below it,
// indented further, with no flag of their own.
func dropFlags(help []byte, long []string) []byte {
	var out bytes.Buffer
	dropping := false
	for line := range bytes.Lines(help) {
		trimmed := bytes.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if bytes.HasPrefix(trimmed, []byte("-")) && indent > 0 {
			name, _, _ := strings.Cut(strings.TrimPrefix(string(trimmed), "-"), " ")
			if strings.HasPrefix(name, "-") || strings.Contains(name, ",") {
				// "--count=0" or "c, --count=0"
				if i := strings.Index(string(trimmed), "--"); i >= 0 {
					name = strings.FieldsFunc(string(trimmed[i+2:]), func(r rune) bool { return r == '=' || r == ' ' || r == '\n' })[0]
				}
			}
			dropping = slices.Contains(long, name)
		} else if indent == 0 || len(bytes.TrimSpace(line)) == 0 {
			dropping = false
		}
		if !dropping {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// misplaced turns kong's "unknown flag --max-flows" into a word on where
// the flag belongs, when it is proc's; other errors it returns as they are.
func misplaced(err error, args []string, app *kong.Application) error {
	if flagForValue := flagAsValue(args, app); flagForValue != nil {
		return flagForValue
	}
	if strings.Contains(err.Error(), "applies to the default command") && strings.HasPrefix(err.Error(), "flag --state ") {
		return errors.New("--state is a flag of netuse total and iface: write it after the command")
	}
	var perr *kong.ParseError
	if !errors.As(err, &perr) {
		return err
	}
	if strings.HasPrefix(err.Error(), "unknown flag --state") {
		if cmd := perr.Context.Selected(); cmd != nil && cmd.Name != "total" && cmd.Name != "iface" {
			return fmt.Errorf("--state is a flag of netuse total and iface, not of netuse %s", cmd.Name)
		}
		return errors.New("--state is a flag of netuse total and iface: write it after the command")
	}
	for _, long := range []string{"listen", "web-config"} {
		if !strings.HasPrefix(err.Error(), "unknown flag --"+long) {
			continue
		}
		if cmd := perr.Context.Selected(); cmd != nil && cmd.Name != "serve" {
			return fmt.Errorf("--%s is a flag of netuse serve, not of netuse %s", long, cmd.Name)
		}
		return fmt.Errorf("--%s is a flag of netuse serve: write it after the command", long)
	}
	for _, long := range procOnly {
		if !strings.HasPrefix(err.Error(), "unknown flag --"+long) {
			continue
		}
		cmds, has := "proc and conn", []string{"proc", "conn"}
		if slices.Contains(serveToo, long) {
			cmds, has = "proc, conn and serve", append(has, "serve")
		}
		// Before the command, kong has not chosen one yet: it is the default, total.
		if cmd := perr.Context.Selected(); cmd != nil && !slices.Contains(has, cmd.Name) {
			return fmt.Errorf("--%s is a flag of netuse %s, not of netuse %s", long, cmds, cmd.Name)
		}
		return fmt.Errorf("--%s is a flag of netuse %s: write it after the command", long, cmds)
	}
	return err
}

// flagAsValue finds, in args that kong refused, a flag that takes a value
// followed by another flag, as a shell writes --web-config $WEB --listen
// :9957 with WEB unset: kong takes --listen for the file and refuses
// :9957, which would hide the cause. nil if there is none.
func flagAsValue(args []string, app *kong.Application) error {
	takes := map[string]*kong.Flag{}
	isFlag := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			isFlag["--"+f.Name] = true
			if f.Short != 0 {
				isFlag["-"+string(f.Short)] = true
			}
			if !f.IsBool() {
				takes["--"+f.Name] = f
				if f.Short != 0 {
					takes["-"+string(f.Short)] = f
				}
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--" {
			return nil
		}
		name, _, _ := strings.Cut(args[i+1], "=")
		if f := takes[args[i]]; f != nil && isFlag[name] {
			return &badValue{"--" + f.Name, args[i+1], fmt.Sprintf("a flag, not a value; want %s before it (an unset shell variable?)", placeholder(f))}
		}
	}
	return nil
}

// usageError marks an error that is the caller's fault: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
