package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// kernelBTF returns the kernel's BTF, or skips where there is none (never
// with CI set).
func kernelBTF(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(kernelBTFPath)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the kernel's BTF: %v", err)
		}
		t.Skipf("the kernel's BTF: %v", err)
	}
	return b
}

// TestKernelBTFOffsets: every member of the structs the owner programs
// read is where cilium/ebpf's full decoding of the kernel's BTF says, the
// members of anonymous structs and unions too; and the offsets the
// programs use are those.
func TestKernelBTFOffsets(t *testing.T) {
	b := kernelBTF(t)
	ours, err := parseBTF(b)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"task_struct", "sock_common", "sock", "socket_alloc", "inode"}
	ids := ours.structs(names...)
	checked := 0
	for _, name := range names {
		var s *btf.Struct
		if err := spec.TypeByName(name, &s); err != nil {
			t.Fatalf("cilium/ebpf: struct %s: %v", name, err)
		}
		var walk func(ms []btf.Member, base uint32)
		walk = func(ms []btf.Member, base uint32) {
			for _, m := range ms {
				off := base + m.Offset.Bytes()
				if m.Name == "" {
					switch u := btf.UnderlyingType(m.Type).(type) {
					case *btf.Struct:
						walk(u.Members, off)
					case *btf.Union:
						walk(u.Members, off)
					}
					continue
				}
				got, ok := ours.memberOffset(ids[name], m.Name)
				if !ok || got != off {
					// A name may repeat in another anonymous member of a
					// union; the first is the one both find.
					t.Errorf("%s.%s: at %d (%v), cilium/ebpf says %d", name, m.Name, got, ok, off)
				}
				checked++
			}
		}
		walk(s.Members, 0)
	}
	if checked < 100 {
		t.Errorf("%d members checked, want the structs' every member (hundreds)", checked)
	}
	o, err := kernelOffsetsOf(ours)
	if err != nil {
		t.Fatal(err)
	}
	var task, sc *btf.Struct
	spec.TypeByName("task_struct", &task)
	spec.TypeByName("sock_common", &sc)
	for _, c := range []struct {
		s      *btf.Struct
		member string
		got    uint32
	}{{task, "group_leader", o.groupLeader}, {task, "comm", o.comm}, {sc, "skc_v6_daddr", o.v6Daddr}} {
		for _, m := range c.s.Members {
			if m.Name == c.member && m.Offset.Bytes() != c.got {
				t.Errorf("%s: %d, want %d", c.member, c.got, m.Offset.Bytes())
			}
		}
	}
}

// TestParseBTFBroken: a blob cut short, or with a type of an unknown
// kind, is an error, not a panic or a wrong offset.
func TestParseBTFBroken(t *testing.T) {
	b := kernelBTF(t)
	for _, n := range []int{0, 4, 23, 24, 4096, len(b) / 2, len(b) - 1} {
		if _, err := parseBTF(b[:n]); err == nil {
			t.Errorf("the first %d bytes of %d: no error", n, len(b))
		}
	}
	ours, err := parseBTF(b)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), b...)
	hdr := ours.bo.Uint32(b[4:]) + ours.bo.Uint32(b[8:])
	info := hdr + ours.at[1] + 4 // type 1's info
	ours.bo.PutUint32(bad[info:], ours.bo.Uint32(bad[info:])|31<<24)
	if _, err := parseBTF(bad); err == nil {
		t.Error("a type of kind 31: no error")
	}
	if _, ok := ours.memberOffset(uint32(len(ours.at)), "comm"); ok {
		t.Error("a type past the last: found")
	}
}
