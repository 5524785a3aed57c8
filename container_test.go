package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// containerCases are cgroup paths as /proc/<pid>/cgroup shows them, with
// the name containerOf gives each. Ids are 64 hex digits, as runtimes
// write them; pod UIDs are UUIDs, or an MD5 for a static pod.
var containerCases = []struct{ name, in, want string }{
	// The host.
	{"empty", "", ""},
	{"root", "/", ""},
	{"root-doubled", "//", ""},
	{"slice-only", "/system.slice", ""},
	{"user-slice", "/user.slice/user-1000.slice", ""},

	// Docker.
	{"docker-systemd", "/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope", "docker:4f3c2a1b0e9d"},
	{"docker-cgroupfs", "/docker/8a7b6c5d4e3faef6ddb85502ef8cfadb293d5f87741e5f1bdb065b5000ac7b32", "docker:8a7b6c5d4e3f"},
	{"docker-rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope", "docker:4f3c2a1b0e9d"},
	{"docker-systemd-inside", "/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope/system.slice/nginx.service", "docker:4f3c2a1b0e9d"},
	{"docker-in-docker", "/docker/8a7b6c5d4e3faef6ddb85502ef8cfadb293d5f87741e5f1bdb065b5000ac7b32/docker/2d1e0f9a8b7cac5b6008c9a2cabde69fcb96dcd68ac667c182f04387c856be65", "docker:2d1e0f9a8b7c"},
	{"docker-other-namespace", "/../../system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope", "docker:4f3c2a1b0e9d"},
	{"docker-systemd-path-by-cgroupfs", "/system.slice:docker:4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82", "docker:4f3c2a1b0e9d"},
	{"dockerd", "/system.slice/docker.service", "docker.service"},
	{"docker-short-id", "/system.slice/docker-4f3c2a1b0e9d.scope", "docker-4f3c2a1b0e9d.scope"},
	{"docker-short-id-cgroupfs", "/docker/4f3c2a1b0e9d", ""},
	{"docker-upper-case-id", "/system.slice/docker-4F3C2A1B0E9D3F583B9D02055E35ADBC2436CD73B8552FF381F37C15E837DD82.scope", "docker-4F3C2A1B0E9D3F583B9D02055E35ADBC2436CD73B8552FF381F37C15E837DD82.scope"},

	// Podman.
	{"podman", "/machine.slice/libpod-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19.scope", "podman:c0ffee15beef"},
	{"podman-subgroup", "/machine.slice/libpod-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19.scope/container", "podman:c0ffee15beef"},
	{"podman-conmon", "/machine.slice/libpod-conmon-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19.scope", "podman:c0ffee15beef"},
	{"podman-rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19.scope/container", "podman:c0ffee15beef"},
	{"podman-pod", "/machine.slice/machine-libpod_pod_5e6f7a8b9c0d57d0e7d7b3aeedef8debdf89ca55b29ac7006a50325dd1af700e.slice/libpod-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19.scope", "podman:c0ffee15beef"},
	{"podman-cgroupfs", "/libpod_parent/libpod-c0ffee15beef014a5fbcd131155f4c3a6bcbbffbeb4d930bc55dbc0965dd5a19", "podman:c0ffee15beef"},
	{"podman-service", "/system.slice/podman.service", "podman.service"},

	// containerd and CRI-O outside Kubernetes, and bare ids.
	{"containerd", "/system.slice/cri-containerd-1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576.scope", "containerd:1a2b3c4d5e6f"},
	{"nerdctl", "/system.slice/nerdctl-9f8e7d6c5b4a2bf8ae00641a96dec2b5f8a28a03cf70b5baf4beb1a6ab8ac026.scope", "nerdctl:9f8e7d6c5b4a"},
	{"crio", "/machine.slice/crio-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656.scope", "crio:7e7e7e0a0b0c"},
	{"crio-conmon", "/machine.slice/crio-conmon-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656.scope", "crio:7e7e7e0a0b0c"},
	{"containerd-namespace", "/default/9f8e7d6c5b4a2bf8ae00641a96dec2b5f8a28a03cf70b5baf4beb1a6ab8ac026", "container:9f8e7d6c5b4a"},
	{"github-actions", "/actions_job/8a7b6c5d4e3faef6ddb85502ef8cfadb293d5f87741e5f1bdb065b5000ac7b32", "container:8a7b6c5d4e3f"},
	{"ecs", "/ecs/a9907b51de322b870e2c848243536746/2d1e0f9a8b7cac5b6008c9a2cabde69fcb96dcd68ac667c182f04387c856be65", "container:2d1e0f9a8b7c"},
	{"containerd-service", "/system.slice/containerd.service", "containerd.service"},

	// Kubernetes, systemd driver.
	{"k8s-burstable", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0e3a4c2b_1f2d_4b8e_9a6c_3d2e1f0a9b8c.slice/cri-containerd-1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576.scope", "pod:0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c"},
	{"k8s-guaranteed-crio", "/kubepods.slice/kubepods-pod2ef98e32_5c8d_479c_be99_f5260a96ea2b.slice/crio-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656.scope", "pod:2ef98e32-5c8d-479c-be99-f5260a96ea2b"},
	{"k8s-crio-subgroup", "/kubepods.slice/kubepods-pod2ef98e32_5c8d_479c_be99_f5260a96ea2b.slice/crio-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656.scope/container", "pod:2ef98e32-5c8d-479c-be99-f5260a96ea2b"},
	{"k8s-besteffort-conmon", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2a841e0c_4855_4316_8468_23304d5d6290.slice/crio-conmon-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656.scope", "pod:2a841e0c-4855-4316-8468-23304d5d6290"},
	{"k8s-cri-dockerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podf360e45c_ea2c_45c6_b8f7_38dcdde8e46f.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope", "pod:f360e45c-ea2c-45c6-b8f7-38dcdde8e46f"},
	{"k8s-pod-level", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0e3a4c2b_1f2d_4b8e_9a6c_3d2e1f0a9b8c.slice", "pod:0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c"},
	{"k8s-systemd-path-by-cgroupfs", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0e3a4c2b_1f2d_4b8e_9a6c_3d2e1f0a9b8c.slice:cri-containerd:1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576", "pod:0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c"},
	{"k8s-qos-level", "/kubepods.slice/kubepods-burstable.slice", ""},
	{"k8s-kind", "/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod2a841e0c_4855_4316_8468_23304d5d6290.slice/cri-containerd-1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576.scope", "pod:2a841e0c-4855-4316-8468-23304d5d6290"},
	{"k8s-kind-kubelet", "/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope/kubelet.slice/kubelet.service", "docker:4f3c2a1b0e9d"},

	// Kubernetes, cgroupfs driver.
	{"k8s-cgroupfs-burstable", "/kubepods/burstable/pod0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c/1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576", "pod:0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c"},
	{"k8s-cgroupfs-guaranteed", "/kubepods/pod2ef98e32-5c8d-479c-be99-f5260a96ea2b/8a7b6c5d4e3faef6ddb85502ef8cfadb293d5f87741e5f1bdb065b5000ac7b32", "pod:2ef98e32-5c8d-479c-be99-f5260a96ea2b"},
	{"k8s-cgroupfs-crio", "/kubepods/besteffort/pod2a841e0c-4855-4316-8468-23304d5d6290/crio-7e7e7e0a0b0cbe52c3d4512435c5dd23d70928d859d77c6482661f3dd9aeb656", "pod:2a841e0c-4855-4316-8468-23304d5d6290"},
	{"k8s-cgroupfs-static-pod", "/kubepods/burstable/poda9907b51de322b870e2c848243536746/1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576", "pod:a9907b51de322b870e2c848243536746"},
	{"k8s-cgroupfs-docker-in-pod", "/kubepods/burstable/pod0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c/1a2b3c4d5e6f72d26be2f6a20aa667ca91586c88ae1008083a5318cb72476576/docker/2d1e0f9a8b7cac5b6008c9a2cabde69fcb96dcd68ac667c182f04387c856be65", "pod:0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c"},
	{"k8s-cgroupfs-qos-level", "/kubepods/burstable", ""},
	{"pod-without-kubepods", "/pod0e3a4c2b-1f2d-4b8e-9a6c-3d2e1f0a9b8c", ""},
	{"pod-slice-without-kubepods", "/system.slice/app-pod0e3a4c2b_1f2d.slice/run.service", "run.service"},
	{"pod-not-a-uid", "/kubepods/burstable/podcast/web.service", "web.service"},

	// LXC and LXD.
	{"lxc-payload", "/lxc.payload.web1", "lxc:web1"},
	{"lxc-payload-service", "/lxc.payload.web1/system.slice/nginx.service", "lxc:web1"},
	{"lxc-attach", "/lxc.payload.web1/.lxc", "lxc:web1"},
	{"lxc-monitor", "/lxc.monitor.web1", "lxc:web1"},
	{"lxd-project", "/lxc.payload.prod_web1/init.scope", "lxc:prod_web1"},
	{"lxc-4.0-early", "/lxc.payload/web1", "lxc:web1"},
	{"lxc-v1", "/lxc/web1", "lxc:web1"},
	{"proxmox", "/lxc/101/ns/init.scope", "lxc:101"},
	{"docker-in-lxc", "/lxc.payload.web1/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope", "docker:4f3c2a1b0e9d"},
	{"lxc-in-docker", "/system.slice/docker-4f3c2a1b0e9d3f583b9d02055e35adbc2436cd73b8552ff381f37c15e837dd82.scope/lxc.payload.web1", "lxc:web1"},
	{"lxc-pivot", "/lxc.pivot", ""},
	{"lxc-dotdot", "/lxc/..", ""},

	// Machines: systemd-nspawn, libvirt.
	{"nspawn-service", "/machine.slice/systemd-nspawn@debian.service/payload/system.slice/ssh.service", "machine:debian"},
	{"nspawn-supervisor", `/machine.slice/systemd-nspawn@my\x2dbox.service/supervisor`, "machine:my-box"},
	{"nspawn-scope", "/machine.slice/machine-fedora.scope", "machine:fedora"},
	{"libvirt-qemu", `/machine.slice/machine-qemu\x2d1\x2dwin11.scope/libvirt/emulator`, "machine:qemu-1-win11"},
	{"machine-control-escape", `/machine.slice/machine-a\x0ab.scope`, `machine:a\x0ab`},
	{"machine-slash-escape", `/machine.slice/machine-a\x2fb.scope`, `machine:a\x2fb`},
	{"machine-empty", "/machine.slice/machine-.scope", "machine-.scope"},

	// systemd units.
	{"service", "/system.slice/nginx.service", "nginx.service"},
	{"service-subgroup", "/system.slice/nginx.service/worker", "nginx.service"},
	{"session", "/user.slice/user-1000.slice/session-3.scope", "session-3.scope"},
	{"desktop-app", "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope", "app-gnome-firefox-1234.scope"},
	{"user-manager", "/user.slice/user-1000.slice/user@1000.service/init.scope", "init.scope"},
	{"pid-1", "/init.scope", "init.scope"},
	{"template", "/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"},
	{"escaped-unit", `/system.slice/system-systemd\x2dfsck.slice/systemd-fsck@dev-disk-by\x2duuid-1a2b.service`, `systemd-fsck@dev-disk-by\x2duuid-1a2b.service`},
	{"mount", "/system.slice/home.mount", "home.mount"},
	{"swap", "/system.slice/dev-sda2.swap", "dev-sda2.swap"},
	{"socket", "/system.slice/sshd.socket", "sshd.socket"},
	{"suffix-only", "/system.slice/.service", ""},

	// Unknown layouts.
	{"relative", "garbage", ""},
	{"custom", "/my cgroup/job", ""},
}

// TestContainerOf checks the name of each kind of cgroup path.
func TestContainerOf(t *testing.T) {
	for _, c := range containerCases {
		t.Run(c.name, func(t *testing.T) {
			if got := containerOf(c.in); got != c.want {
				t.Errorf("containerOf(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// containerPrefixes are the beginnings of the names of containers, pods
// and machines; any other name is a systemd unit's.
var containerPrefixes = []string{"docker:", "podman:", "containerd:", "crio:", "nerdctl:", "container:", "pod:", "lxc:", "machine:"}

// FuzzContainerOf checks that containerOf never panics; that a name is
// never longer than its path, never holds a '/' and never a control
// character or invalid UTF-8 the path did not hold; and that a name is a
// container's, by its prefix, or a systemd unit's, by its suffix.
func FuzzContainerOf(f *testing.F) {
	for _, c := range containerCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := containerOf(in)
		if got == "" {
			return
		}
		if len(got) > len(in) {
			t.Fatalf("containerOf(%q) = %q, longer than the path", in, got)
		}
		if strings.Contains(got, "/") {
			t.Fatalf("containerOf(%q) = %q, holds a '/'", in, got)
		}
		if utf8.ValidString(in) && !utf8.ValidString(got) {
			t.Fatalf("containerOf(%q) = %q, invalid UTF-8", in, got)
		}
		for _, c := range []byte(got) {
			if (c < 0x20 || c == 0x7f) && strings.IndexByte(in, c) < 0 {
				t.Fatalf("containerOf(%q) = %q, with the control character %q", in, got, c)
			}
		}
		for _, p := range containerPrefixes {
			if strings.HasPrefix(got, p) && len(got) > len(p) {
				return
			}
		}
		if unitName(got) != got {
			t.Fatalf("containerOf(%q) = %q, neither a container nor a unit", in, got)
		}
	})
}
