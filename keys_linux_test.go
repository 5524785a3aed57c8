package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// screen collects what netuse writes to the terminal.
type screen struct {
	lockedBuffer
	done chan struct{} // closed when the terminal is closed and all was read; nil: not told
}

func (s *screen) read(ptm *os.File) {
	if s.done != nil {
		defer close(s.done)
	}
	s.fill(ptm)
}

// waitFor waits until the screen holds want after from bytes, and returns
// the length it had then.
func (s *screen) waitFor(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out := s.String(); len(out) > from {
			if i := strings.Index(out[from:], want); i >= 0 {
				return from + i + len(want)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the terminal never showed %q; it shows:\n%q", want, s.String())
	return 0
}

// startOnTerminal runs argv (netuse iface every 200 ms if none) with pts
// as its controlling terminal, stdin and stdout, and collects its screen.
func startOnTerminal(t *testing.T, ptm, pts *os.File, argv ...string) (*exec.Cmd, *screen) {
	t.Helper()
	if len(argv) == 0 {
		argv = []string{netuseBinary(t), "iface", "--interval", "200ms"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	scr := &screen{}
	go scr.read(ptm)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, scr
}

// TestLiveKeys runs netuse iface in a pseudo-terminal, as a person at a
// terminal would, and presses keys: Enter and a key netuse does not know
// must leave no trace on the screen (before, each Enter left a stale
// header line: the terminal echoed it into the table); s must change the
// sort column the hint names; q must quit with status 0 after a summary;
// and the terminal must be back in the mode it was in.
func TestLiveKeys(t *testing.T) {
	ptm, pts := openPTY(t, 120, 30)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	before, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd, scr := startOnTerminal(t, ptm, pts)
	at := scr.waitFor(t, 0, "keys: q quit  s sort (name)")
	ptm.Write([]byte("\r\r\rZ"))
	at = scr.waitFor(t, at, "keys: q quit") // a frame drawn after the keys
	ptm.Write([]byte("s"))
	at = scr.waitFor(t, at, "s sort (total)")
	ptm.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("q: netuse ended with %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("netuse did not quit on q")
	}
	// The screen's reader may be behind netuse's end: wait for the summary.
	scr.waitFor(t, at, "netuse iface summary")
	out := scr.String()
	if plain := escapes.ReplaceAllString(out, ""); strings.Contains(plain, "Z") {
		t.Errorf("a key was echoed into the table:\n%q", plain)
	}
	after, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Cc[unix.VMIN] != before.Cc[unix.VMIN] {
		t.Errorf("terminal mode after netuse: lflag %#x, want %#x as before", after.Lflag, before.Lflag)
	}
}

// TestLiveKeysRestoredOnSignal: the terminal's mode comes back when netuse
// is ended by SIGTERM, as by q.
func TestLiveKeysRestoredOnSignal(t *testing.T) {
	ptm, pts := openPTY(t, 80, 24)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	before, _ := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	cmd, scr := startOnTerminal(t, ptm, pts)
	scr.waitFor(t, 0, "keys: q quit")
	if mid, _ := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS); mid.Lflag&unix.ICANON != 0 {
		t.Errorf("while the table is live the terminal is in canonical mode: keys would wait for Enter")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v, want status 0", err)
	}
	after, _ := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag {
		t.Errorf("terminal mode after SIGTERM: lflag %#x, want %#x", after.Lflag, before.Lflag)
	}
}

// TestInterruptedPromptOnItsOwnLine: Ctrl-C with --no-clear, before the
// first block, leaves the shell's prompt on a line of its own (before, it
// followed the ^C the terminal echoed, and nothing was written): the
// interval so far comes on a line of its own, and the output ends one.
func TestInterruptedPromptOnItsOwnLine(t *testing.T) {
	ptm, pts := openPTY(t, 100, 30)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	cmd := exec.Command(netuseBinary(t), "iface", "--no-clear", "--interval", "10s")
	cmd.Stdout, cmd.Stderr = pts, pts
	scr := &screen{done: make(chan struct{})}
	go scr.read(ptm)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	// The sign that netuse runs, its signal handler set: the line that
	// says when the first interval ends.
	scr.waitFor(t, 0, "measuring the first interval")
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("interrupted: %v", err)
	}
	pts.Close()
	<-scr.done // EIO: netuse is gone, every byte it wrote is read
	out := scr.String()
	// After the waiting line, the partial block starts on a line of its
	// own, past the ^C the terminal echoed, and the output ends a line.
	rest := out[strings.Index(out, "measuring the first interval"):]
	if !strings.Contains(rest, "\r\n\r\n\r\nnetuse iface") || !strings.HasSuffix(out, "\r\n") {
		t.Errorf("interrupted before the first block: output %q, want the partial block on a line of its own and a final new line", out)
	}
}

// TestBackgroundNoKeys: netuse started in the background of an
// interactive shell (netuse &) must not touch the terminal's mode or read
// it: either would stop it (SIGTTOU, SIGTTIN), where it should draw on.
func TestBackgroundNoKeys(t *testing.T) {
	ptm, pts := openPTY(t, 100, 30)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	_, scr := startOnTerminal(t, ptm, pts, "sh", "-c", `set -m; "$0" iface --interval 200ms & echo "pid=$!"; wait`, netuseBinary(t))
	at := scr.waitFor(t, 0, "pid=")
	out := scr.String()
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(out[at:], "\r", 2)[0]))
	if err != nil {
		t.Fatalf("no pid in %q", out)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	at = scr.waitFor(t, at, "IFACE") // the first frame
	scr.waitFor(t, at, "IFACE")      // and another: it goes on
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); f[0] == "T" {
		t.Errorf("netuse in the background was stopped (state %s)", f[0])
	}
	if strings.Contains(scr.String(), "keys: q quit") {
		t.Errorf("netuse in the background offers keys it cannot read")
	}
}

// TestLiveQuitErasesKeys: q on a live table leaves the last frame without
// the line that names the keys (before, it stayed above the summary,
// offering keys that nothing read any more).
func TestLiveQuitErasesKeys(t *testing.T) {
	ptm, pts := openPTY(t, 120, 30)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	cmd, scr := startOnTerminal(t, ptm, pts)
	scr.waitFor(t, 0, "keys: q quit")
	ptm.Write([]byte("q"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("q: %v, want status 0", err)
	}
	scr.waitFor(t, 0, "netuse iface summary")
	tm := newTerm(120, 30)
	tm.write(scr.String())
	if all := strings.Join(tm.screen(), "\n"); strings.Contains(all, "keys:") || !strings.Contains(all, "IFACE") {
		t.Errorf("after q the screen still names the keys, or lost the last frame:\n%s", all)
	}
}

// TestLiveScroll runs netuse iface on a terminal of 8 lines in a network
// namespace of 13 interfaces, and scrolls with the keys a terminal sends
// as escape sequences: ↓, PgDn, End (in the application mode's form), Home;
// ← does nothing and types nothing; q still quits.
func TestLiveScroll(t *testing.T) {
	ns := newNamespaces(t, "nu", "scroll")[0]
	for i := 0; i < 12; i += 2 {
		run(t, "ip", "-n", ns, "link", "add", fmt.Sprintf("veth%02d", i), "type", "veth", "peer", "name", fmt.Sprintf("veth%02d", i+1))
	}
	ptm, pts := openPTY(t, 80, 8)
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	cmd, scr := startOnTerminal(t, ptm, pts, "ip", "netns", "exec", ns, netuseBinary(t), "iface", "--interval", "200ms")
	// 8 lines: the header, the column names, 2 rows, (all), the line of
	// the rows not shown, the keys, the cursor's.
	at := scr.waitFor(t, 0, "… 11 more rows (1-2 of 13 shown)")
	for _, step := range []struct{ keys, want string }{
		{"\x1b[B", "(2-3 of 13 shown)"},
		{"\x1b[6~", "(4-5 of 13 shown)"},
		{"\x1bOF", "(12-13 of 13 shown)"},
		{"\x1b[H", "(1-2 of 13 shown)"},
	} {
		ptm.Write([]byte(step.keys))
		at = scr.waitFor(t, at, step.want)
	}
	ptm.Write([]byte("\x1b[Dq"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("q: %v, want status 0", err)
	}
	scr.waitFor(t, at, "netuse iface summary")
	tm := newTerm(80, 8)
	tm.write(scr.String())
	for _, o := range tm.overflow {
		t.Errorf("%s", o)
	}
	if plain := escapes.ReplaceAllString(scr.String(), ""); strings.Contains(plain, "[D") || strings.Contains(plain, "[B") {
		t.Errorf("a key's sequence reached the screen:\n%q", plain)
	}
}
