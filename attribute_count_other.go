//go:build !linux

package main

import "errors"

// startKernelSource counts bytes per socket in the kernel: Linux only.
func startKernelSource(globs []string, rec *ownerRecords, find owners, conns, packets bool, warn func(string)) (kernelCounts, error) {
	return nil, errors.New("counting in the kernel is supported on Linux only")
}
