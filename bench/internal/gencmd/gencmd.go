// Package gencmd is what bench's traffic generators (bench/gen for
// run.sh and serve.sh, bench/scorecard/gen for scorecard.sh) share: the
// dispatch of the first argument to a command, the "ready" sign the
// scripts wait for on stderr, the one JSON line of counts on stdout, the
// data written and the signals that end a server.
package gencmd

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// Command runs one generator command: it adds its flags to fs, parses
// args with it, and returns its counts.
type Command[C any] func(fs *flag.FlagSet, args []string) (C, error)

// Counts begins every generator's counts type, which embeds it: the
// command, the process, and the payload bytes it moved, as the system
// calls returned them.
type Counts struct {
	Cmd       string `json:"cmd"`
	Pid       int    `json:"pid"`
	SentBytes int64  `json:"sent_bytes"`
	RecvBytes int64  `json:"recv_bytes"`
}

func (c *Counts) label(cmd string, pid int) { c.Cmd, c.Pid = cmd, pid }

// Labeled is a pointer to a counts type that embeds Counts.
type Labeled[C any] interface {
	*C
	label(cmd string, pid int)
}

// Main runs the command os.Args[1] names with the arguments after it and
// prints its counts as one JSON line on stdout. It exits 2 for a usage
// error (usage is printed), 1 if the command fails.
func Main[C any, P Labeled[C]](usage string, commands map[string]Command[C]) {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	c, err := commands[cmd](flag.NewFlagSet(cmd, flag.ContinueOnError), os.Args[2:])
	if err == nil {
		P(&c).label(cmd, os.Getpid())
		err = json.NewEncoder(os.Stdout).Encode(c)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// Ready tells the script on stderr that the command listens (a server)
// or is connected (a client).
func Ready() { fmt.Fprintln(os.Stderr, "ready") }

// Buf is the data written, 64 KiB as iperf3 writes by default.
var Buf = make([]byte, 64<<10)

// Stopped returns a channel that receives SIGINT or SIGTERM, the
// signals that end a server.
func Stopped() <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	return ch
}

// ReadyUntilStopped says ready, then blocks until SIGINT or SIGTERM.
func ReadyUntilStopped() {
	stop := Stopped()
	Ready()
	<-stop
}

// ListenTCP adds -listen to fs, parses args, and listens there.
func ListenTCP(fs *flag.FlagSet, args []string) (net.Listener, error) {
	listen := fs.String("listen", "", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return net.Listen("tcp", *listen)
}
