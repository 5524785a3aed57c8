package main

// The run loop's schedule and the terminal it may draw on.

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/term"
)

// clock is the time source of the run loop; tests replace it.
type clock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tick calls step once per interval, count times (forever if count is 0),
// on a schedule that does not drift: the k-th call is due at start+k*interval.
// A cancelled ctx ends it without error, before a partial interval is reported.
func tick(ctx context.Context, clk clock, o options, step func(seq int) error) error {
	_, err := schedule(ctx, clk, o, func(seq int, partial bool) error {
		if partial {
			return nil
		}
		return step(seq)
	})
	return err
}

// schedule is tick, except that a cancelled ctx in the middle of an
// interval reports that partial interval, step(seq, true), if any time of
// it passed: a run of -i 10s stopped after 3 s does not lose those 3 s. It
// returns the number of intervals reported, the partial one included.
func schedule(ctx context.Context, clk clock, o options, step func(seq int, partial bool) error) (int, error) {
	next := clk.now()
	last := next // when the interval being measured began
	for seq := 1; o.count == 0 || seq <= o.count; seq++ {
		next = next.Add(o.interval)
		now := clk.now()
		wait := next.Sub(now)
		if wait < 0 {
			// Behind (suspend, a stopped process, a blocked stdout): skip
			// the slots missed rather than fire a burst of intervals a few
			// milliseconds long, and leave at least half an interval.
			next = next.Add((-wait/o.interval + 1) * o.interval)
			if next.Sub(now) < o.interval/2 {
				next = next.Add(o.interval)
			}
			wait = next.Sub(now)
		}
		if err := clk.sleep(ctx, wait); err != nil {
			if clk.now().After(last) {
				return seq, step(seq, true)
			}
			return seq - 1, nil
		}
		last = clk.now()
		if err := step(seq, false); err != nil {
			return seq, err
		}
	}
	return o.count, nil
}

// terminalSize returns stdout's size when it is a terminal.
func terminalSize() (cols, rows int, ok bool) {
	cols, rows, err := term.GetSize(int(os.Stdout.Fd()))
	return cols, rows, err == nil && cols > 0 && rows > 0
}

// isClosedPipe reports whether err came from writing to a closed stdout.
func isClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
