// Netuse reports this machine's network usage: for the whole machine, per
// network interface, per process, or per connection; or serves it to
// Prometheus and a web page, keeping each app's history. The README and
// netuse --help say how to run it; this says how it works.
//
// main parses the command line (cli*.go) into options and runs one loop
// until its count is reached or a signal cancels its context; a tick
// (tick.go) ends each interval, and each interval makes one report, which
// goes to exactly one sink (render*.go): a table, NDJSON or Prometheus text.
// model.go says the vocabulary the stages share.
//
// total and iface read the kernel's interface counters (sample*.go) and
// turn them into per-interval usage; --state (state*.go) does it once,
// against the counters a previous run saved.
//
// proc and conn count packets. The pipeline (proc.go) owns every
// goroutine it starts and stops each before it closes the descriptors
// they use:
//
//   - the capture goroutine reads frames from the kernel's rings and decodes
//     them where they are read (sniff*.go) into small packet records, which
//     it hands to the accountant (attribute_flows.go) a block at a time;
//   - the resolver's loop credits each flow to the process that owns its
//     socket (attribute*.go), from the kernel's owner records (eBPF) or from
//     the socket tables and /proc, and its openings goroutine takes each TCP
//     connection as it opens;
//   - the run loop asks the pipeline for each interval's rows, groups and
//     filters them (view.go) and renders them.
//
// Around them: reverse DNS workers (dns.go) for conn --resolve, which the
// renderer asks and never waits for; a key reader on a terminal
// (keys*.go).
//
// serve runs the same stages without an end: an HTTP server goroutine
// answers /metrics and the page (serve*.go) from what a tick goroutine
// refreshes each interval, and writes the history file (history_store.go)
// that netuse history reads (history_cmd.go).
//
// Data goes to stdout, everything else to stderr as "netuse: ...". Exit
// status: 0 on success, also when interrupted or when stdout is closed; 1
// when netuse fails at run time; 2 for bad usage.
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

// gcPercent is netuse's default GOGC: a collection each time the heap
// grows by half of what was live after the last one, not by all of it:
// the peak RSS of a report of 10,000 sockets is mostly heap (BENCHMARKS.md).
const gcPercent = 50

// version is set at build time with -ldflags "-X main.version=..."; when
// it is not, versionLine asks the build info (go install, go build).
var version string

func main() {
	// A soft limit on the Go heap, so that the garbage collector works
	// harder before netuse's memory doubles under a flood of new flows
	// (TestProcFlood: a million flows) rather than after. GOMEMLIMIT in the
	// environment overrides it, as GOGC overrides gcPercent.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
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
