package main

import (
	"github.com/alecthomas/kong"
)

// The command line: kong's struct of commands and flags, and each
// command's help. The flags' types are in cli_values.go, their checks in
// cli_validate.go, the help's printing and the usage errors in
// cli_usage.go, the version in cli_version.go, the man page and the
// completions in cli_docs.go and cli_completion*.go.

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
	Listen        string `default:"${listen}" placeholder:"ADDR" group:"serve" help:"serve: the address to listen on, HOST:PORT; the default serves this machine alone, :9957 every network."`
	WebConfig     string `placeholder:"FILE" group:"serve" help:"serve: TLS and basic auth, from a web configuration file as Prometheus's exporters read it (exporter-toolkit's)."`
	By            string `default:"program" placeholder:"KEYS" group:"serve" help:"serve: process series per program (label groupname), user, container, netns or pid (one series per process: a warning says so), or several joined by commas."`
	Owners        string `default:"auto" placeholder:"auto" group:"serve" help:"serve: where socket owners come from: bpf, proc or auto, as proc's --owners."`
	Source        string `default:"capture" placeholder:"capture" group:"serve" help:"serve: where bytes are counted: capture, kernel or auto, as proc's --source."`
	PacketSenders toggle `group:"serve" help:"serve: as proc's --packet-senders."`
	MaxFlows      string `default:"${maxFlows}" placeholder:"${maxFlows}" group:"serve" help:"serve: flows kept at once, as proc's --max-flows."`
	Db            string `placeholder:"PATH" group:"serve" help:"serve: keep history in this file (netuse history reads it), or off; default /var/lib/netuse/history.db for root, else $XDG_STATE_HOME/netuse/history.db."`
	DbKeep        string `default:"48h,90d,2y,forever" placeholder:"SPANS" group:"serve" help:"serve: how long history keeps its 5-minute, hour, day and month buckets: four spans (48h, 90d, 2y) or forever, default 48h,90d,2y,forever."`
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

// procCmd and connCmd hold the flags of proc and conn alone.
type (
	procCmd struct {
		captureFlags `embed:""`
	}
	connCmd struct {
		captureFlags `embed:""`
	}
	captureFlags struct {
		Owners        string `default:"auto" placeholder:"auto" group:"proc" help:"proc, conn: where socket owners come from: bpf (recorded by the kernel as sockets are born), proc (searched for in /proc), auto (bpf, else proc)."`
		Source        string `default:"capture" placeholder:"capture" group:"proc" help:"proc, conn: where bytes are counted: capture (frames captured on the interfaces), kernel (per socket, by eBPF programs in the kernel; netuse's own network namespace's sockets), auto (kernel where it can count, else capture)."`
		PacketSenders toggle `group:"proc" help:"proc, conn, with --source kernel or auto: credit the frames that AF_PACKET sockets write on the interfaces to the processes that write them (scapy, arping, DHCP clients), by one more eBPF program on each interface, which runs for every packet sent there; without it they are \"(no socket)\"."`
		MaxFlows      string `default:"${maxFlows}" placeholder:"${maxFlows}" group:"proc" help:"proc, conn: flows kept at once, each end of a connection one (about 300 bytes each); new flows past it count as flow_table_full."`
		By            string `placeholder:"KEYS" group:"proc" help:"proc, conn: one row per group of rows with the same program, user, container, netns or remote (address); several: --by user,program."`
		Resolve       toggle `group:"proc" help:"conn, --by remote: remote hosts by name, from reverse DNS in the background; the address until the name is known."`
		Pid           string `placeholder:"PIDS" group:"proc" help:"proc, conn: only the rows of these pids (comma-separated; 0: traffic of no process)."`
		Program       string `placeholder:"GLOBS" group:"proc" help:"proc, conn: only processes whose name matches one of these shell globs (comma-separated)."`
		User          string `placeholder:"USERS" group:"proc" help:"proc, conn: only processes of these users (names, comma-separated)."`
		Port          string `placeholder:"PORTS" group:"proc" help:"proc, conn: only connections with one of these ports at either end (comma-separated)."`
		Remote        string `placeholder:"CIDRS" group:"proc" help:"proc, conn: only connections whose remote address is in one of these networks (CIDR or address, comma-separated)."`
	}
)

// helpCmd is netuse help [command].
type helpCmd struct {
	Command string `arg:"" optional:"" help:"The command to describe."`
}

// procOnly are the long names of captureFlags's flags, proc's and conn's.
var procOnly = []string{"owners", "source", "packet-senders", "max-flows", "by", "resolve", "pid", "program", "user", "port", "remote"}

// serveToo are those of procOnly that serve has too (serveCmd's own).
var serveToo = []string{"owners", "source", "packet-senders", "max-flows", "by"}

// commandOf returns the name of kong's command, "" if none was chosen
// (--help alone).
func commandOf(kctx *kong.Context) string {
	if cmd := kctx.Selected(); cmd != nil {
		return cmd.Name
	}
	return ""
}
