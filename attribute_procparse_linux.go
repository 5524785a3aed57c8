package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ticksPerSecond is USER_HZ, the unit of start times in /proc/<pid>/stat:
// 100 on every Linux architecture.
const ticksPerSecond = 100

// bootTicks returns the time since boot in clock ticks, the unit of
// process start times.
func bootTicks() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return uint64(ts.Sec)*ticksPerSecond + uint64(ts.Nsec)/(1e9/ticksPerSecond)
}

// socketInode parses the target of a /proc/<pid>/fd link, "socket:[12345]".
func socketInode(link []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	ino, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	return ino, err == nil
}

// parseCgroup picks the path from /proc/<pid>/cgroup: the unified
// hierarchy's ("0::/system.slice/docker-3f2a.scope"), else systemd's, else
// the first.
func parseCgroup(b []byte) string {
	first, systemd := "", ""
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			return parts[2]
		case parts[1] == "name=systemd":
			systemd = parts[2]
		case first == "":
			first = parts[2]
		}
	}
	if systemd != "" {
		return systemd
	}
	return first
}

// parseStatName reads field 2 of /proc/<pid>/stat, the name between the
// first '(' and the last ')': the name itself may hold parentheses.
func parseStatName(stat []byte) string {
	i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return ""
	}
	return string(stat[i+1 : j])
}

// parseStartTime reads field 22 of /proc/<pid>/stat, the start time in
// clock ticks after boot. The name in field 2 may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStartTime(stat []byte) (uint64, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	const startField = 22 - 3 // fields after ')' start at field 3, state
	if len(fields) <= startField {
		return 0, false
	}
	v, err := strconv.ParseUint(string(fields[startField]), 10, 64)
	return v, err == nil
}

// parseEffectiveUID reads the effective uid from /proc/<pid>/status, the
// user that ps shows: "Uid:\treal\teffective\tsaved\tfs".
func parseEffectiveUID(status []byte) (uint32, bool) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return 0, false
		}
		uid, err := strconv.ParseUint(string(f[1]), 10, 32)
		return uint32(uid), err == nil
	}
	return 0, false
}

// netnsOf reads a namespace link, "net:[4026531840]", as its inode number.
func netnsOf(link string) (uint64, bool) {
	target, err := os.Readlink(link)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(target, "net:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n, err == nil
}
