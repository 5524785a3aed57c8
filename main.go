// Netuse reports this machine's network usage: for the whole machine, per
// network interface, per process, or per connection; or serves it to
// Prometheus.
//
// Usage:
//
//	netuse [total|iface|proc|conn|serve|history] [flags]
//
// With no command, netuse runs total.
//
//	total   the whole machine: the interfaces at its edge, summed, on one line
//	iface   one row per network interface
//	proc    one row per process, from packet capture (Linux only)
//	conn    one row per connection, from packet capture, with its process (Linux only)
//	serve   a Prometheus exporter: interface and process counters on /metrics, a page on /
//	help    the help, or a command's: netuse help proc
//	version the version, as -V
//	man     the man page, in roff (netuse man | man -l -)
//	completion bash|zsh|fish
//	        the shell's completion script (the README's Install says where it goes)
//
// man and completion are written from the same model as --help, which
// does not list them.
//
// The first read of the counters is a baseline; every interval after it
// netuse writes the bytes and packets moved during that interval, their
// rate over the time that really elapsed, and the totals since it started.
//
// On a terminal the output is a table redrawn in place. Piped, it is plain
// text, one block per interval, without escape sequences. With --json it is
// NDJSON: one object per row per interval, flushed at the end of each
// interval (the README documents the schema).
//
// Flags:
//
//	-i, --interval=1s     sampling period, 10ms to 24h: a Go duration (500ms, 2s) or seconds (0.5)
//	-c, --count=N         report N intervals, then exit; 0 runs until interrupted
//	    --json            write NDJSON instead of a table
//	    --units=bytes     bytes or bits, for the table
//	    --si              powers of 1000 instead of 1024, for the table (the default with --units bits)
//	    --iface=GLOB      interfaces to read (repeatable)
//	    --sort=COLUMN     rx, tx, total or name (proc, conn: also pid)
//	    --top=N           show only the first N rows
//	    --no-clear        on a terminal, print each interval below the last
//	    --format=table    table, json (as --json) or prometheus (text format)
//	    --textfile=PATH   also write the metrics to PATH.prom each interval
//	    --owners=auto     proc: where socket owners come from: auto, bpf or proc
//	    --source=capture  proc: where bytes are counted: capture, kernel (in progress) or auto (capture)
//	    --max-flows=N     proc: flows kept at once (default 65536)
//	    --by=KEYS         proc: one row per group: program, user, container, netns, remote
//	    --resolve         proc: remote hosts by name (conn, and --by remote)
//	    --pid=PIDS        proc: only these processes (0: traffic of none)
//	    --program=GLOBS   proc: only processes whose name matches
//	    --user=USERS      proc: only processes of these users
//	    --port=PORTS      proc: only connections with one of these ports
//	    --remote=CIDRS    proc: only connections to these networks
//	    --state=FILE      total, iface: once, the traffic since the last run with FILE, totals since its first
//	    --listen=ADDR     serve: the address to listen on (default 127.0.0.1:9957)
//	    --web-config=FILE serve: TLS and basic auth (exporter-toolkit's web configuration)
//	    --db=PATH         serve, history: the history file, or off (default under /var/lib/netuse)
//	    --db-keep=SPANS   serve: how long history keeps 5m, hour, day and month buckets
//	    --since=WHEN      history: from this long ago (24h, 7d) or this local date (default 24h)
//	    --until=WHEN      history: up to this long ago or this local date (default now)
//	    --every=LENGTH    history: a row per 5m, hour, day or month bucket
//	-h, --help            print the help (after a command: that command's)
//	-V, --version         print the version
//
// The flags marked proc are proc's and conn's own: they go after the
// command (netuse proc --max-flows 100), and total and iface refuse them;
// --state is total's and iface's; --listen and --web-config are serve's,
// which also takes --by (program, user, container, netns or pid),
// --owners, --max-flows, --iface and --interval (how often it reports
// between scrapes), and refuses the flags of output. history takes --by
// (program, user, container, or iface or reason alone), --program and
// --user, and the flags of output but --count and --format.
// Filters apply before --by groups rows, and both before --sort and --top. The others may stand
// before or after the command.
//
// Every flag but --help and --version can also be set from the environment
// as NETUSE_<FLAG>, for example NETUSE_INTERVAL=5s or NETUSE_IFACE=eth0,wlan0.
//
// SIGINT, SIGTERM and SIGHUP end netuse after the interval being written,
// if any; SIGHUP says so on stderr. Under nohup (SIGHUP ignored) a hangup
// does not stop it.
//
// Exit status: 0 on success, also when interrupted or when stdout is closed;
// 1 when netuse fails at run time; 2 for bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"
)

// memoryLimit is netuse's default soft limit on the Go heap.
const memoryLimit = 48 << 20

// version is set at build time with -ldflags "-X main.version=..."; when
// it is not, versionLine asks the build info (go install, go build).
var version string

func main() {
	// A soft limit on the Go heap, so that the garbage collector works
	// harder before netuse's memory doubles under a flood of new flows
	// (TestProcFlood: a million flows) rather than after. GOMEMLIMIT in the
	// environment overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	a := &app{
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		tty:       isatty.IsTerminal(os.Stdout.Fd()),
		clock:     clock{now: time.Now, sleep: sleepCtx},
		counters:  readCounters,
		termSize:  terminalSize,
		proc:      hostProc(),
		keys:      stdinTerminal,
		bootID:    bootID,
		uptime:    uptime,
		stateWait: stateWait,

		historyPath: defaultHistoryPath,
	}
	os.Exit(a.main(os.Args[1:]))
}

// app is netuse with its access to the operating system in fields, so that
// tests can replace each one.
type app struct {
	stdout, stderr io.Writer
	tty            bool // stdout is a terminal
	clock          clock
	counters       func() ([]counter, error)        // interface counters
	termSize       func() (cols, rows int, ok bool) // stdout's terminal size
	proc           procOS                           // proc mode's capture, socket tables and /proc
	keys           func() (fd int, ok bool)         // the terminal to read keys from; nil or not ok: none
	bootID         func() string                    // the kernel's boot id; "" if not known (--state)
	uptime         func() (time.Duration, bool)     // since the machine booted (--state)
	stateWait      time.Duration                    // how long --state waits for another run's lock
	historyPath    func() string                    // serve's and history's default --db; nil: none (history off)
}

// main runs netuse and returns its exit status.
func (a *app) main(args []string) int {
	// SIGINT and SIGTERM end the run after the interval being written, if
	// any. So does SIGHUP (the terminal went away), saying so; but if
	// netuse started with SIGHUP ignored (nohup), it stays ignored.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, sigs...)
	defer signal.Stop(caught)
	var hangup atomic.Bool
	go func() {
		select {
		case s := <-caught:
			hangup.Store(s == syscall.SIGHUP)
			cancel()
		case <-ctx.Done():
		}
	}()
	// A closed stdout shows up as EPIPE from Write instead of killing netuse,
	// so that the run loop ends quietly and the deferred cleanup runs.
	signal.Ignore(syscall.SIGPIPE)

	err := a.run(ctx, args)
	if hangup.Load() {
		fmt.Fprintln(a.stderr, "netuse: hangup (SIGHUP): stopped; run it under nohup to keep it running")
	}
	switch {
	case err == nil, errors.Is(err, errExit), isClosedPipe(err):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(a.stderr, "netuse: %v; see 'netuse --help'\n", err)
		return 2
	default:
		fmt.Fprintf(a.stderr, "netuse: %v\n", err)
		return 1
	}
}

// errExit reports that kong already printed help or the version.
var errExit = errors.New("exit")

// run parses args and runs the chosen mode until the count is reached or ctx
// is cancelled.
func (a *app) run(ctx context.Context, args []string) error {
	var c cli
	exited := false
	parser, err := newParser(&c, kong.Writers(a.stdout, a.stderr), kong.Exit(func(int) { exited = true }))
	if err != nil {
		return err // a bug in the cli struct
	}
	kctx, err := parser.Parse(args)
	if exited {
		return errExit
	}
	if err != nil {
		if isClosedPipe(err) {
			return err // netuse --help | head -1: the reader had what it wanted
		}
		return usageError{misplaced(err, args, parser.Model)}
	}
	switch commandOf(kctx) {
	case "help":
		return a.run(ctx, append(strings.Fields(c.Help.Command), "--help"))
	case "version":
		_, err := fmt.Fprintln(a.stdout, versionText())
		return err
	case "man":
		return writeMan(a.stdout, kctx.Model)
	case "completion":
		return writeCompletion(a.stdout, kctx.Model, c.Completion.Shell)
	}
	if commandOf(kctx) == "history" {
		return a.runHistory(c.history)
	}
	m := modeOf(kctx.Command())
	o := c.o
	if m == modeServe {
		so := c.serve
		if so.db == "" && a.historyPath != nil {
			so.db = a.historyPath()
		}
		if so.db == "off" {
			so.db = ""
		}
		return a.runServe(ctx, o, so)
	}
	// A --state run is one report: a block of its own, not a table redrawn.
	r, ctx, done := a.newOutput(ctx, c.json || c.prom, c.noClear || o.state != "", c.bits, c.si)
	r.prom, r.textfile = c.prom, c.textfile
	defer done()
	if c.textfile != "" {
		// Before any capture starts, and before the first interval.
		if err := checkTextfile(c.textfile); err != nil {
			return err
		}
	}
	if m.captures() {
		return a.runProc(ctx, m, o, r)
	}
	if o.state != "" {
		return a.runState(m, o, r)
	}
	return runSampler(ctx, a.clock, m, o, newSampler(a.counters), r)
}

// newParser is kong's parser of the command line into c: the one model
// that --help, the man page and the completions are all written from.
func newParser(c *cli, options ...kong.Option) (*kong.Kong, error) {
	return kong.New(c, append([]kong.Option{
		kong.Name("netuse"),
		kong.Description("Report this machine's network usage: total, per interface, or per process."),
		kong.DefaultEnvars("NETUSE"),
		kong.Help(printHelp),
		kong.ExplicitGroups([]kong.Group{{Key: "proc", Title: "Flags of proc and conn:"}, {Key: "counters", Title: "Flags of total and iface:"}, {Key: "serve", Title: "Flags of serve:"}, {Key: "history", Title: "Flags of history:"}}),
		// As getopt does: the word after a flag is its value, even -1,
		// which kong would otherwise take for a flag.
		kong.WithHyphenPrefixedParameters(true),
		kong.Vars{"version": versionText(), "maxFlows": strconv.Itoa(maxFlows), "listen": defaultListen},
	}, options...)...)
}

// mode is what netuse reports on, as its command names it.
// checkTextfile fails unless --textfile's directory takes a new file: it
// makes one, whose name does not end in .prom, and removes it.
func checkTextfile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".netuse-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		dir, why := filepath.Dir(path), "no such directory"
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			why = fmt.Sprintf("it takes no new file: %v", err) // read-only, or /proc
		} else if serr == nil {
			why = "not a directory"
		}
		return fmt.Errorf("--textfile %q: cannot write in %q (%s); want a file in a writable directory, such as node_exporter's --collector.textfile.directory", path, dir, why)
	}
	f.Close()
	return os.Remove(f.Name())
}

type mode uint8

const (
	modeTotal mode = iota // the whole machine, one row
	modeIface             // a row per interface
	modeProc              // a row per process
	modeConn              // a row per connection
	modeServe             // the exporter: no rows, metrics
)

var modeNames = [...]string{modeTotal: "total", modeIface: "iface", modeProc: "proc", modeConn: "conn", modeServe: "serve"}

func (m mode) String() string { return modeNames[m] }

// captures reports whether the mode's rows come from packet capture, and
// are credited to processes.
func (m mode) captures() bool { return m == modeProc || m == modeConn }

// modeOf returns the mode of kong's command, "proc" or "iface <args>".
func modeOf(command string) mode {
	name, _, _ := strings.Cut(command, " ")
	for m, n := range modeNames {
		if n == name {
			return mode(m)
		}
	}
	return modeTotal
}

// options are the flags that every mode shares.
type options struct {
	interval time.Duration // sampling period, > 0
	count    int           // intervals to report; 0 means until interrupted
	globs    []string      // --iface; none means the mode's default interfaces
	sort     string        // column to sort by; "" means the mode's default
	top      int           // rows to show; 0 means all
	maxFlows int           // proc: flow ends the accountant keeps at once
	owners   string        // proc: "bpf", "proc", or "auto" (bpf, else proc)
	source   string        // proc: where bytes are counted: "capture" or "kernel" ("auto" is read as capture)
	by       []string      // proc, conn: --by's keys, in its order; none: no groups
	filter   filter        // proc, conn: the rows to keep
	resolve  bool          // conn, proc --by remote: names for remote addresses
	state    string        // total, iface: --state's file; "" for none
	mode     mode          // proc, conn: the command, for messages
	conns    bool          // proc, conn: the accountant makes connection rows (see view)
	states   bool          // conn: the resolver reads TCP states for them
}
