package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// The command line: kong's struct of commands and flags, each flag's check
// in netuse's words (naming the flag, or the NETUSE_ variable it came
// from), per-command help, and the version.

// cli is the command line. Flags every command reads live on the root, so
// that they may stand before or after the command; proc's own flags are
// its alone, so that total and iface neither list nor take them.
//
// Kong keeps the flags' values as text, and Validate reads them, so that
// every bad value gets one message in netuse's words naming where it came
// from: the flag, or its NETUSE_ variable. kong's messages name the flag
// even for a value from the environment, and speak of its types and tokens.
type cli struct {
	Total totalCmd `cmd:"" default:"withargs" help:"The whole machine: traffic across its edge interfaces, summed (the default)."`
	Iface ifaceCmd `cmd:"" help:"One row per network interface."`
	Proc  procCmd  `cmd:"" help:"One row per process, from packet capture (Linux only)."`
	Conn  connCmd  `cmd:"" help:"One row per connection, from packet capture, with its process (Linux only)."`
	Serve serveCmd `cmd:"" help:"A Prometheus exporter: interface and process counters on /metrics."`
	Help  helpCmd  `cmd:"" help:"Print the help, or a command's: netuse help proc is netuse proc --help."`
	// VersionCmd is netuse version, for those who do not think of -V.
	VersionCmd struct{} `cmd:"" name:"version" help:"Print the version, as -V does."`
	// Man and Completion write netuse's docs (cli_docs.go); --help leaves
	// them out, the README and the man page name them.
	Man        manCmd        `cmd:"" hidden:"" help:"Write the man page, in roff, to stdout."`
	Completion completionCmd `cmd:"" hidden:"" help:"Write the completion script of a shell (bash, zsh or fish) to stdout."`

	History historyCmd `cmd:"" help:"What serve kept: traffic per program, user, container or interface over hours, days, months."`

	Interval string    `short:"i" default:"1s" placeholder:"1s" help:"Sampling period, from 10ms to 24h: a Go duration (500ms, 2s) or seconds (0.5)."`
	Count    string    `short:"c" default:"0" placeholder:"0" help:"Report this many intervals, then exit; 0 runs until interrupted."`
	JSON     toggle    `name:"json" help:"Write NDJSON, one object per row per interval."`
	Units    string    `default:"bytes" placeholder:"bytes" help:"Units of the table: bytes or bits."`
	SI       toggle    `name:"si" help:"Powers of 1000 instead of 1024 in the table (the default with --units bits; --si=false for 1024)."`
	Ifaces   globs     `name:"iface" placeholder:"GLOB" help:"Interfaces to read, as shell globs (repeatable)."`
	Sort     string    `placeholder:"COLUMN" help:"Sort rows by rx, tx, total or name (proc, conn: also pid); default name for iface, total for proc and conn."`
	Top      string    `default:"0" placeholder:"0" help:"Show only the first N rows; 0 shows all."`
	NoClear  toggle    `help:"On a terminal, print each interval below the last instead of redrawing."`
	Format   string    `placeholder:"table" help:"Output: table, json (as --json) or prometheus (the text format node_exporter's textfile collector reads)."`
	Textfile string    `placeholder:"PATH.prom" help:"Also write the metrics in Prometheus's text format to this file each interval, replacing it whole (for node_exporter's textfile collector)."`
	Version  versionOK `short:"V" env:"-" help:"Print the version and exit."`

	// What Validate read.
	o                 options
	json, si, noClear bool
	prom              bool   // --format prometheus
	textfile          string // --textfile
	bits              bool   // --units bits
	serve             serveOptions
	history           historyOptions
}

// The commands. Their Help is what netuse COMMAND --help says below the
// one-line summary of the help tag; kong formats it as go doc does, so an
// indented line is an example, printed as it is.
type (
	totalCmd struct {
		stateFlags `embed:""`
	}
	ifaceCmd struct {
		stateFlags `embed:""`
	}
	// stateFlags are total's and iface's own.
	stateFlags struct {
		State string `placeholder:"FILE" group:"counters" help:"total, iface: report once, at once, the traffic since the previous run with this file, and keep the counters in it for the next, with totals since its first run (cron's totals; the first run takes the baseline)."`
	}
)

func (totalCmd) Help() string {
	return `Every interval, one line for the whole machine: the bytes and packets
that crossed its edge interfaces (not loopback, bridges or veths, whose
traffic the edge carries too), their rates, and the totals since netuse
started. total is the default: netuse alone runs it. It needs no
privileges.

Examples:

	netuse
	netuse total --json --interval 10s --count 1`
}

func (ifaceCmd) Help() string {
	return `Every interval, one row per network interface, from the kernel's
counters (/proc/net/dev on Linux): bytes and packets in and out, their
rates, and the totals since netuse started. It needs no privileges.

Examples:

	netuse iface --iface 'eth*' --iface 'wl*'
	netuse iface --sort total --top 5
	netuse iface --json --count 3 | jq .`
}

func (procCmd) Help() string {
	return `Every interval, one row per process: netuse captures the packets on the
interfaces and credits each to the process that owns its socket; what it
cannot credit gets rows of its own. Linux only.

It needs root, or these capabilities, given to the binary once (the
README's "Privileges" says which needs which):

	sudo setcap ` + setcapCaps + `+ep "$(command -v netuse)"

Without CAP_NET_RAW it stops before writing anything; without one of the
others it carries on and says on stderr what it cannot see.

Examples:

	sudo netuse proc
	sudo netuse proc --sort rx --top 10
	sudo netuse proc --json --interval 5s --owners proc`
}

func (connCmd) Help() string {
	return `Every interval, one row per connection end on this machine that moved
bytes: protocol, local and remote address and port, the TCP state, the
process that owns the socket, and the bytes each way; a connection
between two processes here is two rows, one per end. Traffic of no
process is rows of pid 0 that say why, so that the rows add up to what
was captured, as proc's do. Linux only, with proc's privileges.

Examples:

	sudo netuse conn --program curl --json
	sudo netuse conn --port 443 --resolve
	sudo netuse conn --by remote --top 10`
}

func (serveCmd) Help() string {
	return `A long-running Prometheus exporter: on /metrics, counters since serve
started of every interface and, when it may capture packets (proc's
privileges), of every group of processes (by program unless --by says
otherwise), of the traffic no process could be credited with, and of the
capture itself. Without CAP_NET_RAW it serves the interfaces alone and
netuse_process_metrics_enabled says why. On / a page shows the live rates
and the history serve keeps (from /api/v1/now and /api/v1/history, which
scripts may read too). It listens on 127.0.0.1 unless --listen says
otherwise; --web-config adds TLS and basic auth to all of it.

Examples:

	sudo netuse serve
	sudo netuse serve --listen :9957 --web-config /etc/netuse/web.yml
	sudo netuse serve --by container,program`
}

// serveCmd holds serve's flags.
type serveCmd struct {
	Listen    string `default:"${listen}" placeholder:"ADDR" group:"serve" help:"serve: the address to listen on, HOST:PORT; the default serves this machine alone, :9957 every network."`
	WebConfig string `placeholder:"FILE" group:"serve" help:"serve: TLS and basic auth, from a web configuration file as Prometheus's exporters read it (exporter-toolkit's)."`
	By        string `default:"program" placeholder:"KEYS" group:"serve" help:"serve: process series per program (label groupname), user, container, netns or pid (one series per process: a warning says so), or several joined by commas."`
	Owners    string `default:"auto" placeholder:"auto" group:"serve" help:"serve: where socket owners come from: bpf, proc or auto, as proc's --owners."`
	Source    string `default:"capture" placeholder:"capture" group:"serve" help:"serve: where bytes are counted: capture, kernel or auto, as proc's --source."`
	MaxFlows  string `default:"${maxFlows}" placeholder:"${maxFlows}" group:"serve" help:"serve: flows kept at once, as proc's --max-flows."`
	Db        string `placeholder:"PATH" group:"serve" help:"serve: keep history in this file (netuse history reads it), or off; default /var/lib/netuse/history.db for root, else $XDG_STATE_HOME/netuse/history.db."`
	DbKeep    string `default:"48h,90d,2y,forever" placeholder:"SPANS" group:"serve" help:"serve: how long history keeps its 5-minute, hour, day and month buckets: four spans (48h, 90d, 2y) or forever, default 48h,90d,2y,forever."`
}

// serveFlagsRefused are the flags of every command that serve has no use
// for: it writes no rows.
var serveFlagsRefused = []string{"count", "json", "units", "si", "sort", "top", "no-clear", "format", "textfile"}

// historyFlagsRefused are the flags of every command that history has no
// use for: it reads a span of time once, and writes a table or, with
// --json, JSON records; no intervals, no metrics.
var historyFlagsRefused = []string{"interval", "count", "no-clear", "format", "textfile"}

// flagsRefused are the flags of every command that cmd refuses on its
// command line; --help, the man page and completion leave them out.
func flagsRefused(cmd string) []string {
	switch cmd {
	case "serve":
		return serveFlagsRefused
	case "history":
		return historyFlagsRefused
	}
	return nil
}

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
	if err := c.readSource(kctx, f.Source); err != nil {
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

// procCmd and connCmd hold the flags of proc and conn alone.
type (
	procCmd struct {
		captureFlags `embed:""`
	}
	connCmd struct {
		captureFlags `embed:""`
	}
	captureFlags struct {
		Owners   string `default:"auto" placeholder:"auto" group:"proc" help:"proc, conn: where socket owners come from: bpf (recorded by the kernel as sockets are born), proc (searched for in /proc), auto (bpf, else proc)."`
		Source   string `default:"capture" placeholder:"capture" group:"proc" help:"proc, conn: where bytes are counted: capture (frames captured on the interfaces), kernel (per socket, by eBPF programs in the kernel; netuse's own network namespace's sockets), auto (kernel where it can count, else capture)."`
		MaxFlows string `default:"${maxFlows}" placeholder:"${maxFlows}" group:"proc" help:"proc, conn: flows kept at once, each end of a connection one (about 300 bytes each); new flows past it count as flow_table_full."`
		By       string `placeholder:"KEYS" group:"proc" help:"proc, conn: one row per group of rows with the same program, user, container, netns or remote (address); several: --by user,program."`
		Resolve  toggle `group:"proc" help:"conn, --by remote: remote hosts by name, from reverse DNS in the background; the address until the name is known."`
		Pid      string `placeholder:"PIDS" group:"proc" help:"proc, conn: only the rows of these pids (comma-separated; 0: traffic of no process)."`
		Program  string `placeholder:"GLOBS" group:"proc" help:"proc, conn: only processes whose name matches one of these shell globs (comma-separated)."`
		User     string `placeholder:"USERS" group:"proc" help:"proc, conn: only processes of these users (names, comma-separated)."`
		Port     string `placeholder:"PORTS" group:"proc" help:"proc, conn: only connections with one of these ports at either end (comma-separated)."`
		Remote   string `placeholder:"CIDRS" group:"proc" help:"proc, conn: only connections whose remote address is in one of these networks (CIDR or address, comma-separated)."`
	}
)

// helpCmd is netuse help [command].
type helpCmd struct {
	Command string `arg:"" optional:"" help:"The command to describe."`
}

// procOnly are the long names of captureFlags's flags, proc's and conn's.
var procOnly = []string{"owners", "source", "max-flows", "by", "resolve", "pid", "program", "user", "port", "remote"}

// versionOK is kong's version flag; the name keeps it apart from the
// version variable.
type versionOK = kong.VersionFlag

// toggle is a flag without a value, such as --json, kept as text: "true"
// when given, or what --json=VALUE or NETUSE_JSON said. Validate reads it.
type toggle string

func (t *toggle) Decode(ctx *kong.DecodeContext) error {
	*t = "true"
	if tok := ctx.Scan.Peek(); tok.Type == kong.FlagValueToken {
		ctx.Scan.Pop()
		*t = toggle(fmt.Sprint(tok.Value))
	}
	return nil
}

// IsBool tells kong that the flag takes no value after a space.
func (*toggle) IsBool() bool { return true }

// on reads the text as kong did before netuse kept it: true, 1 or yes;
// false, 0 or no (NETUSE_JSON=yes in a script keeps working).
func (t toggle) on() (bool, bool) {
	switch strings.ToLower(string(t)) {
	case "true", "1", "yes":
		return true, true
	case "", "false", "0", "no":
		return false, true
	}
	return false, false
}

// globs is --iface's list: repeatable, each value comma-separated as
// NETUSE_IFACE is. kong's own lists would refuse --iface -x for a value.
type globs []string

func (g *globs) Decode(ctx *kong.DecodeContext) error {
	text := ""
	if tok := ctx.Scan.Pop(); !tok.IsEOL() {
		text = fmt.Sprint(tok.Value)
	}
	*g = append(*g, strings.Split(text, ",")...)
	return nil
}

// The bounds of --interval. Below 10ms netuse only burns CPU: top and
// iftop refuse to refresh faster too, and -i 1ns ran 8,000 intervals a
// second at 77% CPU. Above a day a rate says little, and a run that long
// is better left to vnstat or sar.
const (
	minInterval = 10 * time.Millisecond
	maxInterval = 24 * time.Hour
)

// interval is a sampling period given as a Go duration or as seconds.
type interval time.Duration

func (i *interval) UnmarshalText(b []byte) error {
	d, err := parseInterval(string(b))
	if err != nil {
		return err
	}
	*i = interval(d)
	return nil
}

// parseInterval accepts "500ms", "2s", "2" and "0.5"; plain numbers are
// seconds. It refuses a period of 0 or less, and one beyond time.Duration;
// the bounds of --interval are Validate's. Its error is a *badValue.
func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			return 0, &badValue{value: s, want: "want a duration like 500ms or 2s, or seconds like 0.5"}
		}
		// Compare in float: a huge number of seconds would overflow the conversion.
		if f*1e9 > float64(1<<62) {
			return 0, &badValue{value: s, want: tooSlow}
		}
		d = time.Duration(math.Round(f * float64(time.Second))) // to the nearest ns: 1.001 is not 1.000999999s
	}
	if d <= 0 {
		return 0, &badValue{value: s, want: "want " + minInterval.String() + " or more"}
	}
	return d, nil
}

var (
	tooFast = fmt.Sprintf("netuse cannot sample faster than every %v; want %v or more", minInterval, minInterval)
	tooSlow = fmt.Sprintf("netuse cannot sample slower than every %s; want %[1]s or less", strings.TrimSuffix(maxInterval.String(), "0m0s"))
)

// badValue is a value of a flag that netuse refuses.
type badValue struct {
	where string // "--count", or "NETUSE_COUNT" for a value from the environment; "" when not known
	value string // as the user wrote it: the whole variable for the environment
	want  string // what is wrong, if that needs saying, and what netuse wants
}

func (e *badValue) Error() string {
	switch {
	case e.where == "":
		return fmt.Sprintf("%q: %s", e.value, e.want)
	case strings.HasPrefix(e.where, "-"):
		return fmt.Sprintf("%s %q: %s", e.where, e.value, e.want)
	}
	return fmt.Sprintf("%s=%q: %s", e.where, e.value, e.want) // as a shell sets it
}

// badFlag returns the error for the value of the flag called long: named
// by the flag if the command line gave it, else by the variable it came
// from (kong reads the environment only for a flag not given).
func badFlag(kctx *kong.Context, long, value, want string) *badValue {
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == long {
			return &badValue{"--" + long, value, want}
		}
	}
	for _, f := range kctx.Flags() {
		if f.Name != long {
			continue
		}
		for _, env := range f.Envs {
			if text, ok := os.LookupEnv(env); ok {
				return &badValue{env, text, want}
			}
		}
	}
	return &badValue{"--" + long, value, want}
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

// readSource reads --source, proc's, conn's and serve's.
func (c *cli) readSource(kctx *kong.Context, source string) error {
	switch c.o.source = source; {
	case source != "capture" && source != "kernel" && source != "auto":
		return badFlag(kctx, "source", source, "want capture, kernel or auto")
	}
	return nil
}

// readCaptureFlags reads proc's and conn's own flags.
func (c *cli) readCaptureFlags(kctx *kong.Context, m mode, f captureFlags) error {
	if err := c.readOwners(kctx, f.MaxFlows, f.Owners); err != nil {
		return err
	}
	if err := c.readSource(kctx, f.Source); err != nil {
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

// versionLine is "netuse VERSION", VERSION one word (netuse_build_info's
// label); -V and netuse version print versionText.
func versionLine() string {
	info, _ := debug.ReadBuildInfo()
	return "netuse " + versionOf(version, info)
}

// versionText is what -V and netuse version print: versionLine, and
// where to read how to stamp a version when the build stamped none. The
// metrics' version label keeps versionLine's short "dev".
func versionText() string {
	info, _ := debug.ReadBuildInfo()
	return versionSaid(versionOf(version, info))
}

// versionSaid is -V's line for the version v, as versionOf picked it.
func versionSaid(v string) string {
	if v == "dev" {
		return "netuse dev (no version stamped: see the README's Install)"
	}
	return "netuse " + v
}

// versionOf picks netuse's version: the one -ldflags set; else the
// module's, which go install module@version records and go build (1.24
// and later) stamps from git as a pseudo-version; else the commit, short,
// "+dirty" if the tree had changes (go build -buildvcs in a checkout
// without a module version); else "dev". info may be nil.
func versionOf(ldflags string, info *debug.BuildInfo) string {
	if ldflags != "" {
		return ldflags
	}
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))] // as git log --abbrev=12 would
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev + dirty
}

// commandOf returns the name of kong's command, "" if none was chosen
// (--help alone).
func commandOf(kctx *kong.Context) string {
	if cmd := kctx.Selected(); cmd != nil {
		return cmd.Name
	}
	return ""
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
		// Before the command, kong has not chosen one yet: it is the default, total.
		if cmd := perr.Context.Selected(); cmd != nil && cmd.Name != "proc" && cmd.Name != "conn" {
			return fmt.Errorf("--%s is a flag of netuse proc and conn, not of netuse %s", long, cmd.Name)
		}
		return fmt.Errorf("--%s is a flag of netuse proc and conn: write it after the command", long)
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
