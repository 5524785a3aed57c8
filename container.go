package main

// Container names. The CONTAINER column and --by container name what a
// process runs in by its cgroup path; the first rule that matches wins:
//
//   - A Kubernetes pod names everything inside it (pause, app containers,
//     a runtime nested in the pod): "pod:<uid>". Both cgroup drivers:
//     systemd's "kubepods-burstable-pod0e3a4c2b_1f2d_....slice" (the
//     UID's dashes, written as underscores, restored) and cgroupfs's
//     "/kubepods/burstable/pod0e3a4c2b-1f2d-...".
//   - Else the innermost container or machine. A runtime's container is
//     named by the runtime and its id cut to the 12 hex digits that
//     "docker ps" shows; a runtime's monitor (conmon) counts as its
//     container:
//     "docker:<id>" for docker-<id>.scope and /docker/<id>;
//     "podman:<id>" for libpod-<id>.scope and libpod-conmon-<id>.scope;
//     "containerd:<id>" for cri-containerd-<id>.scope;
//     "crio:<id>" for crio-<id>.scope and crio-conmon-<id>.scope;
//     "nerdctl:<id>" for nerdctl-<id>.scope;
//     "container:<id>" for a bare id under any other parent
//     (/actions_job/<id>, /ecs/<task>/<id>);
//     "lxc:<name>" for LXC and LXD's /lxc.payload.<name>,
//     /lxc.monitor.<name> and /lxc/<name>;
//     "machine:<name>" for machine-<name>.scope (nspawn, libvirt) and
//     systemd-nspawn@<name>.service, "\x2d" read as "-".
//   - Else the innermost systemd unit that holds processes (.service,
//     .scope, .socket, .mount, .swap), named as systemctl takes it:
//     "nginx.service", "session-3.scope", "app-gnome-firefox-1234.scope".
//   - Else "": the root cgroup "/", or a layout not known here.

import (
	"slices"
	"strings"
)

// idDigits is the length of a container id in a cgroup path: 64 hex
// digits, a SHA-256 (Docker, Podman, containerd and CRI-O all use them).
// shortID is what "docker ps", "podman ps" and "crictl ps" show of it.
const (
	idDigits = 64
	shortID  = 12
)

// runtimes maps the prefix of a container's cgroup name to the name of
// its runtime, longest prefix first where one prefix begins another.
// The systemd cgroup driver names a container's scope
// "<prefix>-<id>.scope"; the cgroupfs driver of Podman and CRI-O drops
// ".scope".
var runtimes = []struct{ prefix, name string }{
	{"docker-", "docker"},
	{"libpod-conmon-", "podman"},
	{"libpod-", "podman"},
	{"cri-containerd-", "containerd"},
	{"crio-conmon-", "crio"},
	{"crio-", "crio"},
	{"nerdctl-", "nerdctl"},
}

// unitSuffixes are the systemd unit types whose cgroups hold processes.
// A .slice only groups other units.
var unitSuffixes = []string{".service", ".scope", ".socket", ".mount", ".swap"}

// containerOf returns a short name for the container or service of a
// cgroup path, by the rules at the top of this file; "" for the root
// cgroup or a path it does not recognise.
func containerOf(cgroup string) string {
	// Walk from the innermost cgroup out: a pod names everything inside
	// it, so it ends the walk; else the innermost container wins, else
	// the innermost unit. Where "kubepods" first appears is found once,
	// so that the walk stays linear in the length of the path.
	parts := strings.Split(cgroup, "/")
	kubepods := slices.IndexFunc(parts, func(c string) bool { return strings.Contains(c, "kubepods") })
	container, unit := "", ""
	for i := len(parts) - 1; i >= 0; i-- {
		if uid := podUID(parts[i], kubepods >= 0 && kubepods < i); uid != "" {
			return "pod:" + uid
		}
		parent := ""
		if i > 0 {
			parent = parts[i-1]
		}
		if container == "" {
			container = containerName(parent, parts[i])
		}
		if unit == "" {
			unit = unitName(parts[i])
		}
	}
	if container != "" {
		return container
	}
	return unit
}

// podUID returns the UID of the Kubernetes pod whose cgroup is c, or "";
// underKubepods says whether an ancestor's name holds "kubepods". The
// systemd driver names a pod's cgroup "kubepods-<qos>-pod<uid>.slice"
// (kind adds "kubelet-" in front) and
// writes the UID's dashes as underscores, since a dash in a slice name
// separates its ancestors; the cgroupfs driver names it "pod<uid>" below
// a "kubepods" cgroup. A runtime whose systemd driver is off writes the
// container into "<pod slice>:<prefix>:<id>", so a ':' ends the name.
// The UID is a UUID, or for a static pod the MD5 of its manifest in hex.
func podUID(c string, underKubepods bool) string {
	c, _, _ = strings.Cut(c, ":")
	if slice, ok := strings.CutSuffix(c, ".slice"); ok {
		i := strings.LastIndexByte(slice, '-')
		uid, ok := strings.CutPrefix(slice[i+1:], "pod")
		if i < 0 || !ok || !strings.Contains(slice[:i], "kubepods") || !isUID(uid) {
			return ""
		}
		return strings.ReplaceAll(uid, "_", "-")
	}
	uid, ok := strings.CutPrefix(c, "pod")
	if !ok || !underKubepods || !isUID(uid) {
		return ""
	}
	return strings.ReplaceAll(uid, "_", "-")
}

// isUID reports whether s could be a pod UID: lowercase hex digits and
// separators, '-' or the systemd driver's '_'.
func isUID(s string) bool {
	hex := false
	for _, c := range []byte(s) {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			hex = true
		case c == '-', c == '_':
		default:
			return false
		}
	}
	return hex
}

// containerName returns the name of the container whose cgroup is c,
// below parent, or "" if c is not a container's.
func containerName(parent, c string) string {
	// "system.slice:docker:<id>": a runtime given a systemd-style path
	// while its systemd driver is off creates the cgroup by that name.
	if _, rest, ok := strings.Cut(c, ":"); ok {
		if prefix, id, ok := strings.Cut(rest, ":"); ok {
			c = prefix + "-" + id
		}
	}
	for _, r := range runtimes {
		if rest, ok := strings.CutPrefix(c, r.prefix); ok {
			if id := strings.TrimSuffix(rest, ".scope"); isID(id) {
				return r.name + ":" + id[:shortID]
			}
		}
	}
	switch parent {
	case "lxc", "lxc.payload", "lxc.monitor": // LXC before 4.0: /lxc/<name>, /lxc.payload/<name>
		if c != "" && c != "." && c != ".." {
			return "lxc:" + c
		}
	}
	for _, prefix := range []string{"lxc.payload.", "lxc.monitor."} {
		if name, ok := strings.CutPrefix(c, prefix); ok && name != "" {
			return "lxc:" + name
		}
	}
	if isID(c) {
		if parent == "docker" {
			return "docker:" + c[:shortID]
		}
		return "container:" + c[:shortID]
	}
	if name := machineName(c); name != "" {
		return "machine:" + name
	}
	return ""
}

// isID reports whether s is a container id: 64 lowercase hex digits.
func isID(s string) bool {
	if len(s) != idDigits {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// machineName returns the machine name of a machined scope,
// "machine-<name>.scope" (systemd-nspawn, libvirt's
// "machine-qemu\x2d1\x2dvm.scope"), or of an nspawn service,
// "systemd-nspawn@<name>.service", unescaped; else "".
func machineName(c string) string {
	name, ok := strings.CutPrefix(c, "machine-")
	if ok {
		name, ok = strings.CutSuffix(name, ".scope")
	} else if name, ok = strings.CutPrefix(c, "systemd-nspawn@"); ok {
		name, ok = strings.CutSuffix(name, ".service")
	}
	if !ok {
		return ""
	}
	return unescapeUnit(name)
}

// unescapeUnit undoes systemd's escaping of a unit name, "\xHH" for a byte
// that may not stand in one ('-' is "\x2d"). It decodes only printable
// ASCII other than space and '/', so a name never gains a control
// character, a space or a path separator; other escapes stay as written.
func unescapeUnit(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if c, ok := unhex(s[i+2], s[i+3]); ok && c > ' ' && c < 0x7f && c != '/' {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unhex returns the byte of two hex digits.
func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := hexDigit(hi)
	l, ok2 := hexDigit(lo)
	return h<<4 | l, ok1 && ok2
}

// hexDigit returns the value of one hex digit, either case.
func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unitName returns c if it names a systemd unit that holds processes,
// else "".
func unitName(c string) string {
	for _, suffix := range unitSuffixes {
		if stem, ok := strings.CutSuffix(c, suffix); ok && stem != "" {
			return c
		}
	}
	return ""
}
