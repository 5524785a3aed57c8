//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

// uploadFlags adds -addr and -bytes: the TCP server to upload to, and
// how much.
func uploadFlags(fs *flag.FlagSet) (addr *string, n *int64) {
	return fs.String("addr", "", "TCP server address"), fs.Int64("bytes", 1<<20, "TCP payload bytes")
}

func forkCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr, n := uploadFlags(fs)
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	fd, err := dialFd("tcp", *addr)
	if err != nil {
		return counts{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return counts{}, err
	}
	f := os.NewFile(uintptr(fd), "conn")
	child := exec.Command(self, "forkchild", "-bytes", fmt.Sprint(*n))
	child.ExtraFiles = []*os.File{f}
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		return counts{}, err
	}
	f.Close() // the child's copy is the connection's last
	gencmd.Ready()
	return counts{}, child.Wait()
}

func forkChild(fs *flag.FlagSet, args []string) (counts, error) {
	n := fs.Int64("bytes", 1<<20, "payload bytes")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	s, r, err := transfer(3, "up", *n, 0, "write")
	unix.Close(3)
	return counts{Counts: gencmd.Counts{SentBytes: s, RecvBytes: r}}, err
}

// init keeps thread's main goroutine on the main thread, the thread group's
// leader, so that the goroutine that renames its thread is on another one.
// Without it the runtime could run that goroutine on the leader while main
// waited, and the process's own name (/proc/PID/comm, ps) became -name.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "thread" {
		runtime.LockOSThread()
	}
}

func threadCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr, n := uploadFlags(fs)
	name := fs.String("name", "xfer-thread", "the sending thread's name")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	type result struct {
		c   counts
		err error
	}
	ch := make(chan result)
	go func() {
		// Locked and never unlocked: the thread ends with the goroutine,
		// and no other goroutine runs on it under its new name.
		runtime.LockOSThread()
		b := append([]byte(*name), 0)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
			ch <- result{err: err}
			return
		}
		fd, err := dialFd("tcp", *addr)
		if err != nil {
			ch <- result{err: err}
			return
		}
		gencmd.Ready()
		s, r, err := transfer(fd, "up", *n, 0, "write")
		unix.Close(fd)
		ch <- result{counts{Counts: gencmd.Counts{SentBytes: s, RecvBytes: r}}, err}
	}()
	r := <-ch
	return r.c, r.err
}

func exitFast(fs *flag.FlagSet, args []string) (counts, error) {
	addr, n := uploadFlags(fs)
	udpAddr := fs.String("udp", "", "UDP receiver address")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	u, err := dialFd("udp", *udpAddr)
	if err != nil {
		return counts{}, err
	}
	for i := 0; i < 100; i++ {
		if _, err := unix.Write(u, buf[:1000]); err != nil {
			return counts{}, err
		}
	}
	fd, err := dialFd("tcp", *addr)
	if err != nil {
		return counts{}, err
	}
	gencmd.Ready()
	if err := writeAll(fd, header("up", *n, 0)); err != nil {
		return counts{}, err
	}
	for m := int64(0); m < *n; m += int64(len(buf)) {
		if err := writeAll(fd, buf[:min(int64(len(buf)), *n-m)]); err != nil {
			return counts{}, err
		}
	}
	// Gone with the data still queued: the kernel closes the socket
	// at exit and sends the rest, and the FIN, for no process.
	os.Exit(0)
	return counts{}, nil
}

func sctpCheck(fs *flag.FlagSet, args []string) (counts, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
	if err != nil {
		return counts{}, fmt.Errorf("no SCTP in this kernel: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): %w", err)
	}
	unix.Close(fd)
	return counts{}, nil
}
