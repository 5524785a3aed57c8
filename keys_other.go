//go:build !linux

package main

import "errors"

// keyReader reads keys from a terminal: Linux only, for now; elsewhere the
// live table has no keys (Ctrl-C still ends it).
type keyReader struct{}

func startKeys(fd int, r *renderer, quit func()) (*keyReader, error) {
	return nil, errors.New("keys are read on Linux only")
}

func (k *keyReader) stop() {}

func stdinTerminal() (int, bool) { return 0, false }
