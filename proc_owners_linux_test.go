package main

// Privileged end-to-end tests of the cases that a search for owners after
// the fact loses, and that the kernel's owner records must not: one-shot
// UDP clients, a server that lives for one connection, a process that
// execs under a new name, UDP datagrams larger than the MTU. Each states
// the target and asserts it.

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcUDPOneShot runs 200 one-shot UDP clients one after the other,
// each a process that sends a 1,000-byte query and reads a 4,000-byte
// answer, like a DNS lookup, and exits. The target: at least 99%
// of the bytes credited to the clients.
func TestProcUDPOneShot(t *testing.T) {
	n := newTestNet(t)
	server := startHelper(t, n.b, "udp-answer", "192.0.2.2:7030", "4000")
	server.expect(t, "listening")
	veth := markIface(t, n.a, "veth-a")
	p := startProc(t, n.a, "--iface", "veth-a")
	loop := inNS(n.a, append([]string{"sh", "-c", `for i in $(seq 200); do "$@" & echo $!; wait $! || exit 1; done`, "sh"},
		childArgv("traffic", "udp-query", "192.0.2.2:7030", "1000", "4000")...)...)
	out, err := loop.Output()
	if err != nil {
		t.Fatalf("client loop: %v", err)
	}
	pids := pidsOf(out)
	p.finish(t)
	rx, tx := veth.moved(t)
	var credited uint64
	rows := map[int]bool{}
	for _, r := range p.procs {
		if pids[r.Pid] {
			rows[r.Pid] = true
			credited += r.RxBytes + r.TxBytes
		}
	}
	t.Logf("%d clients, %d with rows", len(pids), len(rows))
	p.near(t, "one-shot UDP clients, rx+tx against veth-a's", credited, rx+tx, 0.99, 1.001)
	for _, c := range p.capts {
		if c.InferredBytes != 0 {
			t.Errorf("interval %d: %d bytes inferred; the kernel's records leave nothing to guess", c.Seq, c.InferredBytes)
		}
	}
}

// TestProcServerForOneConnection runs a server that accepts one
// connection, sends 8 MiB and exits at once, to a client in the other
// namespace: the target is 99.9% for both ends.
func TestProcServerForOneConnection(t *testing.T) {
	n := newTestNet(t)
	veth := markIface(t, n.a, "veth-a")
	p := startProc(t, n.a, "--iface", "veth-a")
	server := startHelper(t, n.a, "serve-send-exit", "192.0.2.1:7031", strconv.Itoa(transfer))
	server.expect(t, "listening")
	client := startHelper(t, n.b, "recv", "192.0.2.1:7031")
	client.expect(t, fmt.Sprintf("got %d", transfer))
	server.cmd.Wait() // it exits by itself once the connection is done
	p.finish(t)
	rx, tx := veth.moved(t)
	p.creditNear(t, "the server, which exited, rx+tx", server, rx+tx, 0.999, 1.001)
	p.creditNear(t, "the client in the other namespace, rx+tx", client, rx+tx, 0.999, 1.001)
}

// TestProcExecRename runs a process that moves 2 MiB as "barpre", then
// execs a program that names itself "nu-after" and moves 4 MiB more on
// the same connection: each name must carry the bytes it moved.
func TestProcExecRename(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a")
	remote := startHelper(t, n.b, "serve-recv", "tcp", "192.0.2.2:7032")
	remote.expect(t, "listening")
	t.Setenv("NETUSE_TEST_COMM", "barpre")
	local := startHelper(t, n.a, "send-exec", "192.0.2.2:7032", strconv.Itoa(2<<20), strconv.Itoa(4<<20), "nu-after")
	local.expect(t, "phase1")
	p.intervals(t, 2) // the first 2 MiB reported under the first name
	io.WriteString(local.stdin, "go\n")
	local.expect(t, "sent")
	remote.expect(t, fmt.Sprintf("got %d", 6<<20))
	p.finish(t)
	byName := map[string]uint64{}
	for _, r := range p.procs {
		if r.Pid == local.cmd.Process.Pid {
			byName[r.Name] += r.TxBytes
		}
	}
	t.Logf("tx by name: %v", byName)
	// Headers add up to 4.4% (66 bytes a 1,514-byte frame); the other
	// name's share would add 100% or more.
	if b := byName["barpre"]; b < 2<<20 || b > 2<<20+2<<20/10 {
		t.Errorf("barpre sent %d bytes, want 2 MiB and its headers", b)
	}
	if b := byName["nu-after"]; b < 4<<20 || b > 4<<20+4<<20/10 {
		t.Errorf("nu-after sent %d bytes, want 4 MiB and its headers", b)
	}
}

// TestProcUDPFragments moves UDP datagrams larger than the MTU between two
// long-lived processes: 3,000 bytes up, 6,000 down, each in IP fragments.
// The target: 99.9% credited to each end, IPv4 and IPv6.
func TestProcUDPFragments(t *testing.T) {
	for _, c := range []struct{ name, addr string }{{"ipv4", "192.0.2.2:7033"}, {"ipv6", "[2001:db8::2]:7034"}} {
		t.Run(c.name, func(t *testing.T) {
			n := newTestNet(t)
			server := startHelper(t, n.b, "udp-answer", c.addr, "6000")
			server.expect(t, "listening")
			veth := markIface(t, n.a, "veth-a")
			p := startProc(t, n.a, "--iface", "veth-a")
			client := startHelper(t, n.a, "udp-exchange", c.addr, "300", "3000", "6000")
			client.expect(t, "done")
			p.finish(t)
			rx, tx := veth.moved(t)
			p.creditNear(t, "the client, rx+tx", client, rx+tx, 0.999, 1.001)
			p.creditNear(t, "the server in the other namespace, rx+tx", server, rx+tx, 0.999, 1.001)
		})
	}
}

// ownerHelper runs the helpers of these tests (see trafficChild):
//
//	udp-answer ADDR SIZE          answer each datagram with SIZE bytes; say "listening ADDR"
//	udp-query ADDR UP DOWN        send UP bytes, read an answer of DOWN bytes, exit
//	udp-exchange ADDR N UP DOWN   N times udp-query on one socket; say "done"
//	serve-send-exit ADDR N        serve one client N bytes, then exit at once
//	send-exec ADDR N1 N2 NAME     send N1 bytes, say "phase1", wait for a line,
//	                              then exec send-fd with the connection, as NAME
//	send-fd FD N                  send N bytes on connection FD; say "sent N"
func ownerHelper(args []string) (bool, error) {
	num := func(i int) int { v, _ := strconv.Atoi(args[i]); return v }
	switch args[0] {
	case "udp-answer":
		c, err := net.ListenPacket("udp", args[1])
		if err != nil {
			return true, err
		}
		fmt.Println("listening", c.LocalAddr())
		answer := make([]byte, num(2))
		buf := make([]byte, 65536)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return true, err
			}
			if _, err := c.WriteTo(answer, from); err != nil {
				return true, err
			}
		}
	case "udp-query":
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return true, err
		}
		if err := exchange(c, num(2), num(3)); err != nil {
			return true, err
		}
		os.Exit(0) // without waiting for standard input: it is a one-shot
	case "udp-exchange":
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return true, err
		}
		for range num(2) {
			if err := exchange(c, num(3), num(4)); err != nil {
				return true, err
			}
		}
		fmt.Println("done")
		return true, nil
	case "serve-send-exit":
		_, c, err := acceptOne(args[1])
		if err != nil {
			return true, err
		}
		if _, err := c.Write(make([]byte, num(2))); err != nil {
			return true, err
		}
		c.Close()
		os.Exit(0)
	case "send-exec":
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			return true, err
		}
		if _, err := c.Write(make([]byte, num(2))); err != nil {
			return true, err
		}
		fmt.Println("phase1")
		// One byte at a time: what follows the line stays in the pipe
		// for the program exec'd.
		for b := make([]byte, 1); b[0] != '\n'; {
			if _, err := os.Stdin.Read(b); err != nil {
				return true, err
			}
		}
		f, err := c.(*net.TCPConn).File() // a dup without close-on-exec
		if err != nil {
			return true, err
		}
		if err := syscall.Dup2(int(f.Fd()), 3); err != nil {
			return true, err
		}
		env := []string{"NETUSE_TEST_COMM=" + args[4]}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "NETUSE_TEST_COMM=") {
				env = append(env, kv)
			}
		}
		return true, syscall.Exec(os.Args[0], childArgv("traffic", "send-fd", "3", args[3]), env)
	case "send-fd":
		c, err := net.FileConn(os.NewFile(uintptr(num(1)), "conn"))
		if err != nil {
			return true, err
		}
		return true, sendAll(c, num(2))
	}
	return false, nil
}

// exchange sends up bytes on c and reads an answer of down bytes.
func exchange(c net.Conn, up, down int) error {
	if _, err := c.Write(make([]byte, up)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n != down {
		return fmt.Errorf("answer of %d bytes, want %d", n, down)
	}
	return nil
}
