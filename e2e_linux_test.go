package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal's controlling side and its terminal,
// 100 columns by 30 rows.
func openPTY(t *testing.T, cols, rows int) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals here:", err)
	}
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal("unlockpt:", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal("ptsname:", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}); err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

// TestTerminalInterrupt runs netuse on a terminal, interrupts it as Ctrl-C
// would, and checks that it redrew in place and left the terminal clean.
func TestTerminalInterrupt(t *testing.T) {
	for _, mode := range []string{"iface", "total"} {
		t.Run(mode, func(t *testing.T) {
			ptm, pts := openPTY(t, 100, 30)
			defer ptm.Close()
			cmd := exec.Command(netuseBinary(t), mode, "--interval", "100ms")
			cmd.Stdout, cmd.Stderr = pts, pts
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pts.Close()
			var screen bytes.Buffer
			buf := make([]byte, 4096)
			deadline := time.Now().Add(10 * time.Second)
			// Read until three frames are drawn, then interrupt. Each redraw
			// of the table clears below the cursor; each total line clears
			// to the end of the line.
			redraw := escClearDown
			if mode == "total" {
				redraw = escClearLine
			}
			for strings.Count(screen.String(), redraw) < 2 && time.Now().Before(deadline) {
				ptm.SetReadDeadline(deadline)
				n, err := ptm.Read(buf)
				screen.Write(buf[:n])
				if err != nil {
					break
				}
			}
			cmd.Process.Signal(os.Interrupt)
			for {
				ptm.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := ptm.Read(buf)
				screen.Write(buf[:n])
				if err != nil {
					break // EIO once netuse has exited and closed the terminal
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("interrupted netuse %s: %v, want status 0; screen %q", mode, err, screen.String())
			}
			out := screen.String()
			if !strings.HasPrefix(out, escHideCursor) {
				t.Errorf("netuse %s on a terminal: output starts %q, want the cursor hidden first", mode, out[:min(len(out), 20)])
			}
			// After the last frame: a new line, the cursor shown, then the
			// run's summary as a plain block.
			last := out[strings.LastIndex(out, escClearDown)+1:]
			if mode == "total" {
				last = out[strings.LastIndex(out, escClearLine)+1:]
			}
			if !strings.Contains(last, "\r\n"+escShowCursor+"netuse "+mode+" summary") || !strings.HasSuffix(out, "\r\n") || strings.Count(last, escHideCursor) > 0 {
				t.Errorf("netuse %s interrupted: after the last frame %q, want a new line, the cursor shown, and the summary", mode, last)
			}
			if strings.Count(out, redraw) < 2 {
				t.Errorf("netuse %s: no redraw in place (%q) in %q", mode, redraw, out)
			}
			if strings.Contains(out, "netuse: ") {
				t.Errorf("netuse %s wrote an error: %q", mode, out)
			}
		})
	}
}
