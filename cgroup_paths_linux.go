package main

import (
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cgroupPaths names cgroups by their id, as the kernel's records give it
// (bpf_get_current_cgroup_id): in the cgroup2 hierarchy a cgroup's id is
// its directory's inode number. A process that exited before netuse read
// /proc/<pid>/cgroup keeps its cgroup, and its container, this way.
//
// It walks the hierarchy from the root the owner programs were attached
// to, which it keeps open (under `ip netns exec` a mount of netuse's own,
// detached at once, reachable only through the open directory): on a
// miss, at most every walkGap, and it keeps only what the last walk saw,
// so that it is bounded by the cgroups that exist.
type cgroupPaths struct {
	mu     sync.Mutex // guards every field
	root   *os.File   // nil once closed
	byID   map[uint64]string
	walked time.Time
}

// walkGap is the least time between two walks of the hierarchy; maxCgroups
// bounds what one walk keeps.
const (
	walkGap    = time.Second
	maxCgroups = 1 << 16
)

func newCgroupPaths(root *os.File) *cgroupPaths {
	return &cgroupPaths{root: root, byID: map[uint64]string{}}
}

// path returns the path of cgroup id, as /proc/<pid>/cgroup writes it
// ("/system.slice/nginx.service"), or "" if it is not (or no longer) in
// the hierarchy.
func (c *cgroupPaths) path(id uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.byID[id]; ok {
		return p
	}
	if c.root == nil || time.Since(c.walked) < walkGap {
		return ""
	}
	c.walked = time.Now()
	c.byID = walkCgroups(os.DirFS("/proc/self/fd/" + strconv.Itoa(int(c.root.Fd()))))
	return c.byID[id]
}

// walkCgroups maps the inode number of every directory of a cgroup2
// hierarchy to its path from the root, at most maxCgroups of them.
func walkCgroups(root fs.FS) map[uint64]string {
	byID := map[uint64]string{}
	fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed meanwhile; files
		}
		if len(byID) >= maxCgroups {
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			path := "/"
			if name != "." {
				path += name
			}
			byID[st.Ino] = path
		}
		return nil
	})
	return byID
}

// close closes the root; path names no cgroup after. A nil c has
// nothing to close (the benchmarks' kernelOwners name no cgroups).
func (c *cgroupPaths) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.root != nil {
		c.root.Close()
		c.root = nil
	}
}
