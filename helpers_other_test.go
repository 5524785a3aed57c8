//go:build !linux

package main

// testChildren are the children this test binary runs as (runTestChild):
// all of them move traffic or run netuse in a network namespace, on Linux.
var testChildren = map[string]func(args []string) int{}

// platformSeeds are the named seeds of this platform's own fuzz targets:
// none here.
func platformSeeds() map[string]map[string][]any { return nil }
