package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
		privSkip(t, "no pseudo-terminals here: "+err.Error())
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

// TestReadmeSummaryRecipe runs docs/ndjson.md's recipe for the run's totals
// per process, stopped with Ctrl-C, as written but for netuse's path, a
// namespace of the test's and NETUSE_INTERVAL=100ms: bash runs the
// pipeline in a process group of its own, and the test sends SIGINT to
// the whole group, as a terminal does, once netuse has written several
// intervals of traffic. Written without the trap, jq died with
// netuse and printed nothing.
func TestReadmeSummaryRecipe(t *testing.T) {
	n := newTestNet(t)
	jq := needTool(t, "jq", "jq")
	doc, err := os.ReadFile(filepath.Join("docs", "ndjson.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "# the run's totals per process, once it is stopped (Ctrl-C)")
	if !ok {
		t.Fatal("docs/ndjson.md has no recipe for the run's totals per process")
	}
	var recipe string
	for _, line := range strings.Split(after, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "sudo netuse ") {
			recipe = line
			break
		}
	}
	if !strings.Contains(recipe, "| ") {
		t.Fatalf("recipe %q: no pipeline", recipe)
	}
	line := strings.Replace(recipe, "sudo netuse ", "ip netns exec "+n.a+" "+netuseBinary(t)+" ", 1)
	line = strings.ReplaceAll(line, " jq ", " "+jq+" ")
	// UDP over the namespace's loopback all along, so that every interval
	// has rows; paced, so as to cost nothing.
	sender := exec.Command("ip", "netns", "exec", n.a, "bash", "-c", "while :; do echo x > /dev/udp/127.0.0.1/9; sleep 0.05; done")
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Process.Kill(); sender.Wait() })
	cmd := exec.Command("bash", "-c", line)
	cmd.Env = append(os.Environ(), "NETUSE_INTERVAL=100ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	// The sign of intervals written: the bytes netuse wrote (wchar of
	// /proc/PID/io), a frame being a capture record of some 400 bytes and
	// more. Its other writes are the Go runtime's 8-byte wakeups: 4 KiB
	// is several frames, whatever they add.
	written := func() int {
		for _, pid := range groupPids(cmd.Process.Pid) {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != netuseBinary(t) {
				continue
			}
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "wchar: "); ok {
					n, _ := strconv.Atoi(v)
					return n
				}
			}
		}
		return 0
	}
	waitWritten := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for written() < want {
			if time.Now().After(deadline) {
				t.Fatalf("netuse wrote %d bytes in 20 s; want %d (stderr %q)", written(), want, errs.String())
			}
			time.Sleep(20 * time.Millisecond) // polls for the sign: each turn reads /proc anew
		}
	}
	waitWritten(4096)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the pipeline still runs 20 s after SIGINT; stdout %q", out.String())
	}
	if out.Len() == 0 {
		t.Fatalf("the recipe printed nothing after Ctrl-C; stderr %q", errs.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"rx_bytes"`) {
			t.Errorf("not a summary record: %q", l)
		}
	}
}

// groupPids returns the processes of process group pgid.
func groupPids(pgid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}
