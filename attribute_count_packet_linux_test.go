package main

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// TestPacketProgramAllow proves, without privileges, that the packet
// senders' tcx program returns TCX_NEXT on every path (anything else
// would pass a frame past the programs after it, or drop it), and that
// the check sees a path that does not.
func TestPacketProgramAllow(t *testing.T) {
	off := kernelOffsets{groupLeader: 2000, startBoottime: 1800, comm: 3000}
	bad, err := exitsOtherThan(packetProgram(off), tcxNext)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("exits at %v may return other than TCX_NEXT", bad)
	}
	for _, wrong := range []asm.Instruction{asm.FnKtimeGetNs.Call(), asm.Mov.Imm(asm.R0, 0)} { // unknown; TCX_PASS
		insns := packetProgram(off)
		for i := range insns {
			if insns[i].Symbol() == "allow" {
				insns[i] = wrong.WithSymbol("allow")
			}
		}
		if bad, err := exitsOtherThan(insns, tcxNext); err != nil || len(bad) == 0 {
			t.Errorf("a program that returns %v was passed: %v, %v", wrong, bad, err)
		}
	}
}

// newPacketSenders loads the packet senders' program and maps, attached
// nowhere; the test's end closes them.
func newPacketSenders(t testing.TB) *packetSenders {
	t.Helper()
	off, err := loadKernelOffsets()
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadPacketSenders(off)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// TestPacketProgramRun loads the program through the verifier and runs it
// with BPF_PROG_TEST_RUN, whose skb's socket is an IP one: it must go on
// (TCX_NEXT) and count nothing. Its count of packet sockets' frames is
// TestProcSourceKernelInjected's, on a veth of the test's own.
func TestPacketProgramRun(t *testing.T) {
	needRoot(t)
	s := newPacketSenders(t)
	for _, v6 := range []bool{false, true} {
		ret, err := s.prog.Run(&ebpf.RunOptions{Data: ipPacket(v6, unix.IPPROTO_UDP, 100, 8), Context: make([]byte, 192)})
		if err != nil {
			t.Fatal(err)
		}
		if int32(ret) != tcxNext {
			t.Errorf("v6 %v: returned %d, want TCX_NEXT (%d)", v6, int32(ret), tcxNext)
		}
	}
	got, err := s.collect(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("counted %+v of an IP socket's packets, want nothing", got)
	}
	if n, err := s.lostFrames(); err != nil || n != 0 {
		t.Errorf("lost %d frames (%v), want 0", n, err)
	}
}
