// Netuse reports this machine's network usage: for the whole machine, per
// network interface, or per process.
//
// Usage:
//
//	netuse [total|iface|proc] [flags]
//
// With no command, netuse runs total.
//
//	total   the whole machine: the interfaces at its edge, summed, on one line
//	iface   one row per network interface
//	proc    one row per process, from packet capture (Linux only)
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
//	    --si              powers of 1000 instead of 1024, for the table
//	    --iface=GLOB      interfaces to read (repeatable)
//	    --sort=COLUMN     rx, tx, total or name (proc: also pid)
//	    --top=N           show only the first N rows
//	    --no-clear        on a terminal, print each interval below the last
//	    --owners=auto     proc: where socket owners come from: auto, bpf or proc
//	    --max-flows=N     proc: flows kept at once (default 65536)
//	-h, --help            print the help (after a command: that command's)
//	-V, --version         print the version
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
	"math"
	"os"
	"os/signal"
	"path"
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

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cli is the command line. Flags live on the root so that they may stand
// before or after the command.
type cli struct {
	Total struct{} `cmd:"" default:"withargs" help:"The whole machine: traffic across its edge interfaces, summed."`
	Iface struct{} `cmd:"" help:"One row per network interface."`
	Proc  struct{} `cmd:"" help:"One row per process, from packet capture (Linux only)."`

	Interval string    `short:"i" default:"1s" placeholder:"1s" help:"Sampling period, from 10ms to 24h: a Go duration (500ms, 2s) or seconds (0.5)."`
	Count    int       `short:"c" default:"0" help:"Report this many intervals, then exit; 0 runs until interrupted."`
	JSON     bool      `name:"json" help:"Write NDJSON, one object per row per interval."`
	Units    string    `default:"bytes" enum:"bytes,bits" help:"Units of the table: bytes or bits."`
	SI       bool      `name:"si" help:"Powers of 1000 instead of 1024 in the table."`
	Ifaces   []string  `name:"iface" placeholder:"GLOB" help:"Interfaces to read, as shell globs (repeatable)."`
	Sort     string    `enum:",rx,tx,total,name,pid" default:"" help:"Sort rows by rx, tx, total or name (proc: also pid); default name for iface, total for proc."`
	Top      int       `default:"0" help:"Show only the first N rows; 0 shows all."`
	NoClear  bool      `help:"On a terminal, print each interval below the last instead of redrawing."`
	Owners   string    `default:"auto" enum:"auto,bpf,proc" help:"proc: where socket owners come from: bpf (recorded by the kernel as sockets are born), proc (searched for in /proc), auto (bpf, else proc)."`
	MaxFlows int       `default:"${maxFlows}" help:"proc: flows kept at once, each end of a connection one (about 270 bytes each); new flows past it count as flow_table_full."`
	Version  versionOK `short:"V" env:"-" help:"Print the version and exit."`

	interval time.Duration // Interval, read by Validate
}

// versionOK is kong's version flag; the name keeps it apart from the
// version variable.
type versionOK = kong.VersionFlag

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

// parseInterval accepts "500ms", "2s", "2" and "0.5"; plain numbers are seconds.
func parseInterval(s string) (time.Duration, error) {
	const want = "want a duration like 500ms or 2s, or seconds like 0.5"
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			return 0, fmt.Errorf("%q is not an interval: %s", s, want)
		}
		// Compare in float: a huge number of seconds would overflow the conversion.
		if f*1e9 > float64(1<<62) {
			return 0, errTooSlow(s)
		}
		d = time.Duration(math.Round(f * float64(time.Second))) // to the nearest ns: 1.001 is not 1.000999999s
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not an interval: it must be more than 0, %s", s, want)
	}
	return d, nil
}

// errTooSlow is the error for an interval above maxInterval.
func errTooSlow(s string) error {
	return fmt.Errorf("%q: netuse cannot sample slower than every %v; want %v or less", s, fmtDuration(maxInterval), fmtDuration(maxInterval))
}

// fmtDuration writes a bound as a person would: 24h, not 24h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (c *cli) Validate() error {
	var iv interval
	if err := iv.UnmarshalText([]byte(c.Interval)); err != nil {
		return fmt.Errorf("--interval %w", err)
	}
	switch d := time.Duration(iv); {
	case d < minInterval:
		return fmt.Errorf("--interval %q: netuse cannot sample faster than every %v; want %v or more", c.Interval, minInterval, minInterval)
	case d > maxInterval:
		return fmt.Errorf("--interval %w", errTooSlow(c.Interval))
	}
	c.interval = time.Duration(iv)
	if c.Count < 0 {
		return fmt.Errorf("--count %d: want 0 (run until interrupted) or more", c.Count)
	}
	if c.MaxFlows < 16 {
		return fmt.Errorf("--max-flows %d: want 16 or more", c.MaxFlows)
	}
	if c.Top < 0 {
		return fmt.Errorf("--top %d: want 0 (all rows) or more", c.Top)
	}
	for _, g := range c.Ifaces {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("--iface %q is not a valid glob: %v", g, err)
		}
	}
	return nil
}

func main() {
	// A soft limit on the Go heap, so that the garbage collector works
	// harder before netuse's memory doubles under a flood of new flows
	// (TestProcFlood: a million flows) rather than after. GOMEMLIMIT in the
	// environment overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	a := &app{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		tty:      isatty.IsTerminal(os.Stdout.Fd()),
		clock:    clock{now: time.Now, sleep: sleepCtx},
		counters: readCounters,
		termSize: terminalSize,
		proc:     hostProc(),
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
	parser, err := kong.New(&c,
		kong.Name("netuse"),
		kong.Description("Report this machine's network usage: total, per interface, or per process."),
		kong.Writers(a.stdout, a.stderr),
		kong.Exit(func(int) { exited = true }),
		kong.DefaultEnvars("NETUSE"),
		kong.Vars{"version": "netuse " + version, "maxFlows": strconv.Itoa(maxFlows)},
	)
	if err != nil {
		return err // a bug in the cli struct
	}
	kctx, err := parser.Parse(args)
	if exited {
		return errExit
	}
	if err != nil {
		return usageError{err}
	}
	m := modeOf(kctx.Command())
	if c.Sort == "pid" && m != modeProc {
		return usageError{fmt.Errorf("--sort pid: %s has no pid column; sort by rx, tx, total or name", m)}
	}
	o := options{
		interval: c.interval,
		count:    c.Count,
		globs:    c.Ifaces,
		sort:     c.Sort,
		top:      c.Top,
		maxFlows: c.MaxFlows,
		owners:   c.Owners,
	}
	r := newRenderer(a.stdout, c.JSON, a.tty && !c.NoClear, c.Units == "bits", c.SI)
	r.termSize = a.termSize
	if m == modeProc {
		return a.runProc(ctx, o, r)
	}
	return runSampler(ctx, a.clock, m, o, newSampler(a.counters), r)
}

// mode is what netuse reports on, as its command names it.
type mode uint8

const (
	modeTotal mode = iota // the whole machine, one row
	modeIface             // a row per interface
	modeProc              // a row per process
)

var modeNames = [...]string{modeTotal: "total", modeIface: "iface", modeProc: "proc"}

func (m mode) String() string { return modeNames[m] }

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

// usageError marks an error that is the caller's fault: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// options are the flags that every mode shares.
type options struct {
	interval time.Duration // sampling period, > 0
	count    int           // intervals to report; 0 means until interrupted
	globs    []string      // --iface; none means the mode's default interfaces
	sort     string        // column to sort by; "" means the mode's default
	top      int           // rows to show; 0 means all
	maxFlows int           // proc: flow ends the accountant keeps at once
	owners   string        // proc: "bpf", "proc", or "auto" (bpf, else proc)
}
