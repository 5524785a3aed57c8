package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Validate and the readers it calls: each flag's text read into options,
// in netuse's words, and the flags a command has no use for refused.

// refuseFlags refuses the flags of every command that the command of kctx
// has no use for, given on the command line (a NETUSE_ variable meant for
// the other commands is let be); why says why and what to do.
func refuseFlags(kctx *kong.Context, why string) error {
	refused := flagsRefused(commandOf(kctx))
	for _, p := range kctx.Path {
		if p.Flag != nil && slices.Contains(refused, p.Flag.Name) {
			return badFlag(kctx, p.Flag.Name, fmt.Sprint(p.Flag.Target.Interface()), why)
		}
	}
	return nil
}

// readServeFlags reads serve's flags, and refuses the output flags given
// on the command line (a NETUSE_ variable meant for the other commands is
// let be).
func (c *cli) readServeFlags(kctx *kong.Context) error {
	if err := refuseFlags(kctx, "serve writes no rows, only /metrics; drop it"); err != nil {
		return err
	}
	f := c.Serve
	if f.Listen == "" {
		return badFlag(kctx, "listen", f.Listen, "want HOST:PORT, such as "+defaultListen)
	}
	_, port, err := net.SplitHostPort(f.Listen)
	if err != nil {
		return badFlag(kctx, "listen", f.Listen, "want HOST:PORT, such as "+defaultListen+" or :9957")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return badFlag(kctx, "listen", f.Listen, fmt.Sprintf("port %q: want a number from 0 to 65535 (0: any free port)", port))
	}
	c.serve = serveOptions{listen: f.Listen, webConfig: f.WebConfig, db: f.Db}
	if c.serve.keep, err = parseKeep(f.DbKeep); err != nil {
		return badFlag(kctx, "db-keep", f.DbKeep, err.Error())
	}
	if err := c.readOwners(kctx, f.MaxFlows, f.Owners); err != nil {
		return err
	}
	if err := c.readSource(kctx, f.Source, f.PacketSenders); err != nil {
		return err
	}
	if f.By == "" {
		return badFlag(kctx, "by", f.By, "serve groups processes by at least one key; want program, user, container, netns or pid")
	}
	return c.readBy(kctx, f.By, serveKeys, " for serve; want program, user, container, netns or pid")
}

// readOwners reads --max-flows and --owners, proc's, conn's and serve's.
func (c *cli) readOwners(kctx *kong.Context, maxFlows, owners string) error {
	var err error
	if c.o.maxFlows, err = strconv.Atoi(maxFlows); err != nil || c.o.maxFlows < 16 {
		return badFlag(kctx, "max-flows", maxFlows, "want 16 or more")
	}
	switch c.o.owners = owners; c.o.owners {
	case "auto", "bpf", "proc":
	default:
		return badFlag(kctx, "owners", owners, "want auto, bpf or proc")
	}
	return nil
}

// readBy reads --by's keys, each one of keys, once; want says which.
func (c *cli) readBy(kctx *kong.Context, by string, keys []string, want string) error {
	if by == "" {
		return nil
	}
	for _, key := range strings.Split(by, ",") {
		switch {
		case !slices.Contains(keys, key):
			return badFlag(kctx, "by", by, fmt.Sprintf("no key %q%s, or several joined by commas", key, want))
		case slices.Contains(c.o.by, key):
			return badFlag(kctx, "by", by, fmt.Sprintf("%q twice; want each key once", key))
		}
		c.o.by = append(c.o.by, key)
	}
	return nil
}

// Validate reads the flags' text into c.o and the toggles; kong calls it
// after parsing.
func (c *cli) Validate(kctx *kong.Context) error {
	switch commandOf(kctx) {
	case "help":
		switch c.Help.Command {
		case "", "total", "iface", "proc", "conn", "serve", "history", "help", "version", "man", "completion":
			return nil
		}
		return fmt.Errorf("help %q: no such command; want total, iface, proc, conn, serve, history, help, version, man or completion", c.Help.Command)
	case "version", "man", "completion":
		return nil // as -V, which kong handles before the values are read: they read no flag
	}
	if err := refuseEmpty(kctx); err != nil {
		return err
	}
	var iv interval
	var bv *badValue
	if err := iv.UnmarshalText([]byte(c.Interval)); errors.As(err, &bv) {
		return badFlag(kctx, "interval", c.Interval, bv.want)
	}
	switch d := time.Duration(iv); {
	case d < minInterval:
		return badFlag(kctx, "interval", c.Interval, tooFast)
	case d > maxInterval:
		return badFlag(kctx, "interval", c.Interval, tooSlow)
	}
	c.o = options{interval: time.Duration(iv), sort: c.Sort, globs: c.Ifaces}
	var err error
	if c.o.count, err = strconv.Atoi(c.Count); err != nil || c.o.count < 0 {
		return badFlag(kctx, "count", c.Count, "want 0 (run until interrupted) or more")
	}
	if c.o.top, err = strconv.Atoi(c.Top); err != nil || c.o.top < 0 {
		return badFlag(kctx, "top", c.Top, "want 0 (all rows) or more")
	}
	if c.Units != "bytes" && c.Units != "bits" {
		return badFlag(kctx, "units", c.Units, "want bytes or bits")
	}
	c.bits = c.Units == "bits"
	switch commandOf(kctx) {
	case "serve":
		return c.readServeFlags(kctx)
	case "history":
		return c.readHistoryFlags(kctx)
	}
	if err := c.readModeFlags(kctx); err != nil {
		return err
	}
	if err := c.readSwitchesAndGlobs(kctx); err != nil {
		return err
	}
	return c.readFormat(kctx)
}

// refuseEmpty refuses a flag given on the command line with an empty
// value, or with another flag for its value: both are what a shell makes
// of an unset variable (--state $STATE, --state $STATE --json), and a
// flag left empty would otherwise do nothing (a cron line that never
// ends, serve without its TLS). An empty NETUSE_ variable stays unset, as
// the shell's convention has it.
func refuseEmpty(kctx *kong.Context) error {
	flags := map[string]bool{}
	for _, f := range kctx.Flags() {
		flags["--"+f.Name] = true
		if f.Short != 0 {
			flags["-"+string(f.Short)] = true
		}
	}
	for _, p := range kctx.Path {
		if p.Flag == nil || p.Flag.IsBool() {
			continue
		}
		var values []string
		switch v := p.Flag.Target.Interface().(type) {
		case string:
			values = []string{v}
		case globs:
			values = v
		}
		for _, v := range values {
			name, _, _ := strings.Cut(v, "=")
			switch {
			case v == "":
				return &badValue{"--" + p.Flag.Name, v, fmt.Sprintf("empty; want %s (an unset shell variable?)", placeholder(p.Flag))}
			case flags[name]:
				return &badValue{"--" + p.Flag.Name, v, fmt.Sprintf("a flag, not a value; want %s before it (an unset shell variable?)", placeholder(p.Flag))}
			}
		}
	}
	return nil
}

// placeholder names what a flag wants: its placeholder when that is a
// name (FILE), else an example of a value (1s).
func placeholder(f *kong.Flag) string {
	p := f.FormatPlaceHolder()
	if strings.ToUpper(p) == p {
		return p
	}
	return "a value such as " + p
}

// readFormat reads --format and --textfile.
func (c *cli) readFormat(kctx *kong.Context) error {
	switch c.Format {
	case "", "table":
		if c.json && c.Format == "table" {
			return badFlag(kctx, "format", c.Format, "--json asks for NDJSON; give one of them")
		}
	case "json":
		c.json = true
	case "prometheus":
		if c.json {
			return badFlag(kctx, "format", c.Format, "--json asks for NDJSON; give one of them")
		}
		c.prom = true
	default:
		return badFlag(kctx, "format", c.Format, "want table, json or prometheus")
	}
	if (c.prom || c.Textfile != "") && slices.Contains(c.o.by, "remote") {
		return badFlag(kctx, "by", strings.Join(c.o.by, ","), "remote has no metrics: a series per remote address would have no bound; group by program, user, container or netns")
	}
	if c.Textfile != "" {
		if !strings.HasSuffix(c.Textfile, ".prom") {
			return badFlag(kctx, "textfile", c.Textfile, "node_exporter reads only files whose name ends in .prom; want PATH.prom")
		}
		c.textfile = c.Textfile
	}
	return nil
}

// readModeFlags reads the flags whose values depend on the command:
// --sort, and proc's and conn's own.
func (c *cli) readModeFlags(kctx *kong.Context) error {
	m := modeOf(kctx.Command())
	f := c.Proc.captureFlags
	if m == modeConn {
		f = c.Conn.captureFlags
	}
	if m.captures() {
		if err := c.readCaptureFlags(kctx, m, f); err != nil {
			return err
		}
	}
	c.o.state = c.Total.State
	if m == modeIface {
		c.o.state = c.Iface.State
	}
	if c.o.state != "" && c.o.count > 1 {
		return badFlag(kctx, "count", c.Count, "--state reports once, the traffic since the previous run: drop --count, or give 1")
	}
	switch c.Sort {
	case "", "rx", "tx", "total", "name":
	case "pid":
		switch {
		case !m.captures():
			return badFlag(kctx, "sort", c.Sort, m.String()+" has no pid column; want rx, tx, total or name")
		case c.o.by != nil:
			return badFlag(kctx, "sort", c.Sort, "rows grouped with --by have no pid column; want rx, tx, total or name")
		}
	default:
		if m.captures() && c.o.by == nil {
			return badFlag(kctx, "sort", c.Sort, "want rx, tx, total, name or pid")
		}
		return badFlag(kctx, "sort", c.Sort, "want rx, tx, total or name")
	}
	return nil
}

// readSource reads --source and --packet-senders, proc's, conn's and
// serve's.
func (c *cli) readSource(kctx *kong.Context, source string, packets toggle) error {
	switch c.o.source = source; {
	case source != "capture" && source != "kernel" && source != "auto":
		return badFlag(kctx, "source", source, "want capture, kernel or auto")
	}
	var ok bool
	if c.o.packetSenders, ok = packets.on(); !ok {
		return badFlag(kctx, "packet-senders", string(packets), "want true or false")
	}
	if c.o.packetSenders && source == "capture" {
		return badFlag(kctx, "packet-senders", string(packets), "counts in the kernel, which --source capture leaves out; add --source kernel (or auto)")
	}
	return nil
}

// readCaptureFlags reads proc's and conn's own flags.
func (c *cli) readCaptureFlags(kctx *kong.Context, m mode, f captureFlags) error {
	if err := c.readOwners(kctx, f.MaxFlows, f.Owners); err != nil {
		return err
	}
	if err := c.readSource(kctx, f.Source, f.PacketSenders); err != nil {
		return err
	}
	if err := c.readBy(kctx, f.By, groupKeys, "; want program, user, container, netns or remote"); err != nil {
		return err
	}
	var ok bool
	if c.o.resolve, ok = f.Resolve.on(); !ok {
		return badFlag(kctx, "resolve", string(f.Resolve), "want true or false")
	}
	if c.o.resolve && m != modeConn && !slices.Contains(c.o.by, "remote") {
		return badFlag(kctx, "resolve", string(f.Resolve), "names remote addresses, which only conn and --by remote show; add --by remote, or use netuse conn")
	}
	return c.readFilter(kctx, f)
}

// readFilter reads --pid, --program, --user, --port and --remote.
func (c *cli) readFilter(kctx *kong.Context, f captureFlags) error {
	each := func(long, text string, read func(string) bool, want string) error {
		if text == "" {
			return nil
		}
		for _, v := range strings.Split(text, ",") {
			if !read(v) {
				if v == text {
					return badFlag(kctx, long, text, want) // the value is said once
				}
				return badFlag(kctx, long, text, fmt.Sprintf("%q: %s", v, want))
			}
		}
		return nil
	}
	fl := &c.o.filter
	if err := each("pid", f.Pid, func(v string) bool {
		pid, err := strconv.Atoi(v)
		fl.pids = append(fl.pids, pid)
		return err == nil && pid >= 0
	}, "want process ids, 0 or more"); err != nil {
		return err
	}
	if err := each("program", f.Program, func(v string) bool {
		_, err := path.Match(v, "")
		fl.programs = append(fl.programs, v)
		return err == nil && v != ""
	}, "want shell globs like curl or 'python*'"); err != nil {
		return err
	}
	if err := each("user", f.User, func(v string) bool {
		fl.users = append(fl.users, v)
		return v != ""
	}, "want user names"); err != nil {
		return err
	}
	if err := each("port", f.Port, func(v string) bool {
		port, err := strconv.ParseUint(v, 10, 16)
		fl.ports = append(fl.ports, uint16(port))
		return err == nil && port > 0
	}, "want port numbers, 1 to 65535"); err != nil {
		return err
	}
	return each("remote", f.Remote, func(v string) bool {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			p, err = netip.PrefixFrom(a, a.BitLen()), aerr
		}
		fl.remotes = append(fl.remotes, p.Masked())
		return err == nil
	}, "want a network like 10.0.0.0/8 or 2001:db8::/32, or an address")
}

// readSwitchesAndGlobs reads --json, --si, --no-clear and --iface.
func (c *cli) readSwitchesAndGlobs(kctx *kong.Context) error {
	for _, t := range []struct {
		long string
		text toggle
		on   *bool
	}{{"json", c.JSON, &c.json}, {"si", c.SI, &c.si}, {"no-clear", c.NoClear, &c.noClear}} {
		var ok bool
		if *t.on, ok = t.text.on(); !ok {
			return badFlag(kctx, t.long, string(t.text), "want true or false")
		}
	}
	if c.bits && c.SI == "" {
		c.si = true // link speeds are sold in powers of 1000: 100 Mbit/s; --si=false for Kibit
	}
	for _, g := range c.Ifaces {
		_, err := path.Match(g, "")
		if g == "" {
			err = errors.New("empty")
		}
		if err != nil {
			bad := badFlag(kctx, "iface", g, fmt.Sprintf("not a glob (%v); want a shell glob like eth* or wl?0", err))
			if !strings.HasPrefix(bad.where, "-") {
				bad.want = fmt.Sprintf("%q is not a glob (%v); want shell globs like eth*,wl?0", g, err)
			}
			return bad
		}
	}
	return nil
}
