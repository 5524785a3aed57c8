package main

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procfs finds socket owners in /proc/<pid>/fd and keeps what it found:
// which process holds which inode, and each process's name, user and
// command line, read once.
type procfs struct {
	reg       *registry           // the process records, shared with other finders
	recent    bool                // look among the newest processes only
	root      string              // "/proc"
	byInode   map[uint64]*process // socket inode -> holder, as of the last scan
	procs     map[int]*process    // pid -> process, as of the last scan
	users     map[uint32]string   // uid -> user name
	lastFull  time.Time           // the last scan of every process
	fullTook  time.Duration       // how long it took
	fullGap   time.Duration       // at least this long between two full scans, and 10 times fullTook
	self      int                 // netuse's own pid: its capture sockets are not traffic
	capable   bool                // netuse may read every process: a refusal means the process is exiting
	hostNetns uint64              // the host's network namespace (pid 1's, else netuse's); 0 if unknown
	newcomers []newcomer          // recent mode: processes the last find saw for the first time
	now       func() time.Time
	ticks     func() uint64 // clock ticks since boot (bootTicks)
	boot      time.Time     // when the machine booted, for processes' start times
	execs     *execWatch    // recent mode: programs started, from the kernel; nil: none
	execHist  []execEvent   // the execs of the last execAge
}

func newProcfs(reg *registry, recent bool) *procfs {
	host := hostNetns("/proc")
	return &procfs{
		hostNetns: host,
		reg:       reg,
		recent:    recent,
		root:      "/proc",
		byInode:   map[uint64]*process{},
		procs:     map[int]*process{},
		users:     map[uint32]string{},
		fullGap:   200 * time.Millisecond,
		self:      os.Getpid(),
		capable:   capable(),
		now:       time.Now,
		ticks:     bootTicks,
		boot:      time.Now().Add(-time.Duration(bootTicks()) * (time.Second / ticksPerSecond)),
	}
}

// find resolves want from the cache, then from the processes that started
// since the last scan, newest first (a new flow's owner almost always is
// one of them), then, at most every fullGap, from every process.
func (p *procfs) find(want map[uint64]*process) (denied bool) {
	p.keepExecs()
	// With nothing to find, the quick finder still looks at every recent
	// process, so that soleNewcomer knows who is new.
	if len(want) > 0 && p.fill(want) {
		return false
	}
	denied, done := p.findNewest(want)
	if done || p.recent {
		return denied
	}
	pids, err := p.pids()
	if err != nil {
		return denied
	}
	d, done := p.findUnknown(want, pids)
	denied = denied || d
	if done || p.now().Sub(p.lastFull) < max(p.fullGap, 10*p.fullTook) {
		return denied
	}
	d = p.scanAll(pids)
	p.fill(want)
	return denied || d
}

// findNewest looks at the newest processes, counting down from the last
// pid the kernel gave out: no need to list /proc to find a process that
// just started. done: every inode of want was found.
func (p *procfs) findNewest(want map[uint64]*process) (denied, done bool) {
	p.newcomers = p.newcomers[:0]
	last, ok := p.lastPid()
	if !ok {
		return false, false
	}
	if p.recent && len(p.procs) > 4*recentPids {
		p.forget(last)
	}
	seen := map[int]bool{}
	for id := last; id > max(last-recentPids, 0); id-- {
		// Threads take ids from the same counter, and /proc/<tid>
		// answers for them though /proc does not list them: look at
		// the thread's process instead.
		pid, ok := p.tgid(id)
		if !ok || seen[pid] {
			continue
		}
		seen[pid] = true
		// The quick finder looks again at processes it saw without
		// sockets: they are the ones about to open one.
		_, known := p.procs[pid]
		if (known && !p.recent) || pid == p.self {
			continue
		}
		d, stat := p.scan(pid, p.byInode)
		denied = denied || d
		if !known && stat != nil && !d {
			// A process whose descriptors netuse may not read is no
			// newcomer to guess with: it is never known, so it would be
			// new at every look.
			p.noteNewcomer(pid, stat)
		}
		if len(want) > 0 && p.fill(want) {
			return denied, true
		}
	}
	return denied, false
}

// findUnknown looks at the processes of pids not seen before, newest
// first. done: every inode of want was found.
func (p *procfs) findUnknown(want map[uint64]*process, pids []int) (denied, done bool) {
	var fresh []int
	for _, pid := range pids {
		if _, ok := p.procs[pid]; !ok {
			fresh = append(fresh, pid)
		}
	}
	// Pids grow until they wrap: the highest are the newest.
	slices.SortFunc(fresh, func(a, b int) int { return b - a })
	for _, pid := range fresh {
		d, _ := p.scan(pid, p.byInode)
		denied = denied || d
		if p.fill(want) {
			return denied, true
		}
	}
	return denied, false
}

// scanAll reads every process of pids and rebuilds the cache from them, so
// that the inodes of processes that are gone are forgotten.
func (p *procfs) scanAll(pids []int) (denied bool) {
	p.lastFull = p.now()
	byInode := make(map[uint64]*process, len(p.byInode))
	alive := make(map[int]bool, len(pids))
	for _, pid := range pids {
		alive[pid] = true
		d, _ := p.scan(pid, byInode)
		denied = denied || d
	}
	for pid := range p.procs {
		if !alive[pid] {
			delete(p.procs, pid)
		}
	}
	p.byInode = byInode
	p.fullTook = p.now().Sub(p.lastFull)
	return denied
}

// forget keeps only the processes of the pids the kernel gave out most
// recently (up to last), and the inodes they hold. The quick finder looks
// at no others and never scans all of /proc, which is what forgets exited
// processes for the other finder; without this its cache would grow with
// every process that ever started.
func (p *procfs) forget(last int) {
	keep := func(pid int) bool { return pid <= last && pid > last-4*recentPids }
	for pid := range p.procs {
		if !keep(pid) {
			delete(p.procs, pid)
		}
	}
	byInode := make(map[uint64]*process, len(p.byInode))
	for ino, proc := range p.byInode {
		if keep(proc.pid) && p.procs[proc.pid] == proc {
			byInode[ino] = proc
		}
	}
	p.byInode = byInode
}

// tgid returns the process (thread group) of a thread id.
func (p *procfs) tgid(id int) (int, bool) {
	status, err := os.ReadFile(p.root + "/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return pid, err == nil
		}
	}
	return 0, false
}

// recentPids is how many of the newest pids find tries before it lists /proc.
const recentPids = 32

// lastPid reads the pid the kernel gave out last: the last field of
// /proc/loadavg.
func (p *procfs) lastPid() (int, bool) {
	b, err := os.ReadFile(p.root + "/loadavg")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 5 {
		return 0, false
	}
	pid, err := strconv.Atoi(string(f[4]))
	return pid, err == nil
}

// fill sets the holders of want that the cache knows, and reports whether
// it knows them all.
func (p *procfs) fill(want map[uint64]*process) bool {
	all := true
	for ino, got := range want {
		if got != nil {
			continue
		}
		if want[ino] = p.byInode[ino]; want[ino] == nil {
			all = false
		}
	}
	return all
}

// pids lists the processes in /proc.
func (p *procfs) pids() ([]int, error) {
	d, err := os.Open(p.root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid != p.self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// scan records the socket inodes that pid holds in into, and reports
// whether its descriptors could not be read for want of permission.
func (p *procfs) scan(pid int, into map[uint64]*process) (denied bool, stat []byte) {
	dir := p.root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return errors.Is(err, os.ErrPermission) && !p.capable, nil
	}
	fds, _ := d.Readdirnames(-1)
	d.Close()
	var proc *process
	if p.recent {
		// A process that just started may be gone in a moment: take its
		// stat (name and start time) before its descriptors, and the rest
		// after.
		if stat, err = os.ReadFile(p.root + "/" + strconv.Itoa(pid) + "/stat"); err != nil {
			return false, nil
		}
	}
	found := false
	buf := make([]byte, 64)
	for _, fd := range fds {
		n, err := unix.Readlink(dir+"/"+fd, buf)
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			// The directory was readable (CAP_DAC_READ_SEARCH) but its links
			// are not: they need ptrace access (CAP_SYS_PTRACE). With both,
			// this is a process on its way out.
			return !p.capable, stat
		}
		if err != nil {
			continue
		}
		ino, ok := socketInode(buf[:n])
		if !ok {
			continue
		}
		if proc == nil {
			if proc = p.process(pid, stat); proc == nil {
				return false, nil // exited while we looked
			}
		}
		found = true
		if _, taken := into[ino]; !taken {
			into[ino] = proc // a socket shared after fork goes to the first holder found
		}
	}
	if !found {
		p.procs[pid] = nil // no sockets: known, so that it is not "new" again
	}
	return false, stat
}

// capable reports whether netuse may read every process's descriptors:
// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH in its effective set.
// readableUsers returns resolver.readable: nil with both capabilities,
// else a test for netuse's own effective user.
func readableUsers() func(uid uint32) bool {
	if capable() {
		return nil
	}
	me := uint32(os.Geteuid())
	return func(uid uint32) bool { return uid == me }
}

func capable() bool {
	return len(missingCaps(map[int]string{unix.CAP_SYS_PTRACE: "", unix.CAP_DAC_READ_SEARCH: ""})) == 0
}

// missingCaps returns the names of the capabilities in want (number ->
// name) that netuse's effective set lacks, in order of number; all of
// them if the set cannot be read.
func missingCaps(want map[int]string) []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	err := unix.Capget(&hdr, &data[0])
	var missing []string
	for _, c := range slices.Sorted(maps.Keys(want)) {
		if err != nil || data[c/32].Effective&(1<<(c%32)) == 0 {
			missing = append(missing, want[c])
		}
	}
	return missing
}

// process returns pid's process, read from /proc once: a pid whose start
// time changed is a new process. stat is its stat file if read already.
func (p *procfs) process(pid int, stat []byte) *process {
	base := p.root + "/" + strconv.Itoa(pid)
	if stat == nil {
		var err error
		if stat, err = os.ReadFile(base + "/stat"); err != nil {
			return nil
		}
	}
	start, ok := parseStartTime(stat)
	if !ok {
		return nil
	}
	if old := p.procs[pid]; old != nil && old.start == start {
		return old
	}
	proc := p.reg.get(pid, start, func(proc *process) { p.read(proc, base, stat, nil) })
	p.procs[pid] = proc
	return proc
}

// read fills in proc's name, command line, user, namespace and cgroup from
// /proc/<pid> (base), whose stat file is read already; the user and
// namespace from exec, if it is not nil and /proc no longer has them.
func (p *procfs) read(proc *process, base string, stat []byte, exec *execEvent) {
	proc.started = p.boot.Add(time.Duration(proc.start) * (time.Second / ticksPerSecond))
	// The name comes from stat, read already: one file fewer to read
	// while a short-lived process may be exiting.
	proc.name = parseStatName(stat)
	if cmd, err := os.ReadFile(base + "/cmdline"); err == nil {
		proc.cmdline = strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " ")
	}
	if status, err := os.ReadFile(base + "/status"); err == nil {
		if uid, ok := parseEffectiveUID(status); ok {
			proc.user = p.userName(uid)
		}
	}
	proc.netns, _ = netnsOf(base + "/ns/net")
	if exec != nil && proc.user == "" && proc.netns == 0 {
		proc.user, proc.netns = p.userName(exec.uid), exec.netns // gone: its exec event says
	}
	proc.foreign = p.inContainer(proc.netns)
	if cg, err := os.ReadFile(base + "/cgroup"); err == nil {
		proc.cgroup = parseCgroup(cg)
	}
}

func (p *procfs) userName(uid uint32) string {
	if name, ok := p.users[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	p.users[uid] = name
	return name
}

// newFinder returns the finder of socket owners: with recent, the quick
// one for connections just opened, which also hears of every exec.
func newFinder(reg *registry, recent bool) owners {
	p := newProcfs(reg, recent)
	if recent {
		p.execs = watchExecs(p.root)
	}
	return p
}

// hostNetns returns the host's network namespace, as an inode number:
// pid 1's, or where its link may not be read (a sandbox's init, or no
// CAP_SYS_PTRACE) kthreadd's, pid 2 with no parent, as every kernel thread
// lives in the first namespace; else netuse's own.
func hostNetns(root string) uint64 {
	if ino, ok := netnsOf(root + "/1/ns/net"); ok {
		return ino
	}
	if stat, err := os.ReadFile(root + "/2/stat"); err == nil && parseStatName(stat) == "kthreadd" {
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 1 && f[1] == "0" {
			if ino, ok := netnsOf(root + "/2/ns/net"); ok {
				return ino
			}
		}
	}
	ino, _ := netnsOf(root + "/self/ns/net")
	return ino
}

// inContainer reports whether the network namespace netns (an inode
// number) is another than the host's: the process is in a container. Not
// netuse's own: netuse itself may run in a container or a namespace, and
// the host's processes are no container's.
func (p *procfs) inContainer(netns uint64) bool {
	return netns != 0 && p.hostNetns != 0 && netns != p.hostNetns
}

// close ends the exec watch, if there is one.
func (p *procfs) close() {
	if p.execs != nil {
		p.execs.close()
	}
}
