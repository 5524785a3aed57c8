package main

import (
	"context"
	"io"
	"os"
)

// newOutput makes the renderer of stdout. On a terminal the table is
// redrawn in place, unless --no-clear asks for one block after another or
// TERM=dumb says the terminal moves no cursor; with stdin a terminal too,
// keys change the view (keys.go) and q cancels the returned context.
// NDJSON and piped output neither draw in place nor read stdin. done
// stops the keys, puts the terminal back and, if the run was interrupted
// before anything was drawn, moves past the echoed ^C.
func (a *app) newOutput(ctx context.Context, json, noClear, bits, si bool) (*renderer, context.Context, func()) {
	dumb := os.Getenv("TERM") == "dumb"
	r := newRenderer(a.stdout, json, a.tty && !noClear && !dumb, bits, si)
	r.termSize = a.termSize
	r.tty = a.tty && !json
	ctx, cancel := context.WithCancel(ctx)
	var k *keyReader
	if r.live && a.keys != nil {
		if fd, ok := a.keys(); ok {
			k, _ = startKeys(fd, r, cancel) // without keys the table still works
		}
	}
	return r, ctx, func() {
		if k != nil {
			k.stop()
		}
		r.mu.Lock()
		tab, ok := r.out.(*table)
		started := r.started || ok && tab.onScreen // a live table's close ends its line
		r.mu.Unlock()
		if r.tty && ctx.Err() != nil && !started {
			io.WriteString(a.stdout, "\n")
		}
		cancel()
	}
}
