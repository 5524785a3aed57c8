package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// keyReader reads keys from a terminal in cbreak mode until stop, which
// ends its goroutine, waits for it and puts the terminal back as it was.
type keyReader struct {
	fd      int
	saved   unix.Termios // the terminal's mode before cbreak
	wake    [2]int       // a pipe that stop writes to, to end the goroutine's poll
	running sync.WaitGroup
	once    sync.Once
}

// startKeys puts the terminal in, whose file descriptor is fd, in cbreak
// mode (each key read as it is pressed, not echoed, Ctrl-C still a
// signal) and hands each key to r; quit is called for a key that asks to
// quit. The caller must call stop on every way out.
func startKeys(fd int, r *renderer, quit func()) (*keyReader, error) {
	// In the background (netuse &) reading the terminal, or changing its
	// mode, would stop netuse (SIGTTIN, SIGTTOU): keys only in the
	// foreground.
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || fg != unix.Getpgrp() {
		return nil, errors.New("not the terminal's foreground process group")
	}
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal mode: %w", err)
	}
	k := &keyReader{fd: fd, saved: *saved}
	if err := unix.Pipe2(k.wake[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cbreak := *saved
	cbreak.Lflag &^= unix.ICANON | unix.ECHO
	cbreak.Cc[unix.VMIN], cbreak.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &cbreak); err != nil {
		unix.Close(k.wake[0])
		unix.Close(k.wake[1])
		return nil, fmt.Errorf("set terminal mode: %w", err)
	}
	r.mu.Lock()
	r.keys = true
	r.mu.Unlock()
	k.running.Add(1)
	go k.read(r, quit)
	return k, nil
}

// read hands keys to r until stop wakes it or the terminal goes away.
func (k *keyReader) read(r *renderer, quit func()) {
	defer k.running.Done()
	fds := []unix.PollFd{{Fd: int32(k.fd), Events: unix.POLLIN}, {Fd: int32(k.wake[0]), Events: unix.POLLIN}}
	var buf [64]byte
	var dec keyDecoder
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		n, err := unix.Read(k.fd, buf[:])
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return
		}
		for _, b := range buf[:max(n, 0)] {
			if k, ok := dec.feed(b); ok && r.key(k) {
				quit()
			}
		}
		if n == 0 {
			return // end of input
		}
	}
}

// stop ends the reader, waits for it and restores the terminal's mode.
// It may be called more than once.
func (k *keyReader) stop() {
	k.once.Do(func() {
		unix.Write(k.wake[1], []byte{0})
		k.running.Wait()
		unix.IoctlSetTermios(k.fd, unix.TCSETS, &k.saved)
		unix.Close(k.wake[0])
		unix.Close(k.wake[1])
	})
}

// stdinTerminal returns stdin's file descriptor if it is a terminal.
func stdinTerminal() (int, bool) {
	_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
	return int(os.Stdin.Fd()), err == nil
}
