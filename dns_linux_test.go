package main

// Privileged tests of reverse DNS: a DNS server the test controls, on the
// loopback of a network namespace of its own, is the only server that
// netuse's resolver can reach there; no query leaves the namespace.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// dnsServer is a DNS server on 127.0.0.1:53 of a network namespace that
// answers PTR queries from a map and NXDOMAIN to every other (startDNS).
type dnsServer struct {
	conn    net.PacketConn
	answers map[string]dnsmessage.Name // by query name in lower case, "7.2.0.192.in-addr.arpa."
	done    chan struct{}              // closed when serve returns

	mu    sync.Mutex     // guards asked
	asked map[string]int // queries by name in lower case
}

// startDNS runs a PTR-answering DNS server inside network namespace ns on 127.0.0.1:53 and writes /etc/netns/<ns>/resolv.conf pointing at it; both go away at cleanup.
//
// ns must exist (newNamespaces makes one) and have its loopback up;
// ip netns exec mounts the resolv.conf only in commands started after
// startDNS returns. The server goes away before the namespace does if ns
// was made before startDNS was called (cleanups run last first).
func startDNS(t *testing.T, ns string, answers map[netip.Addr]string) *dnsServer {
	t.Helper()
	if ns == "" || ns == "." || ns == ".." || strings.ContainsAny(ns, "/\x00") {
		t.Fatalf("startDNS: bad namespace name %q", ns)
	}
	s := &dnsServer{answers: map[string]dnsmessage.Name{}, done: make(chan struct{}), asked: map[string]int{}}
	for a, name := range answers {
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		n, err := dnsmessage.NewName(name)
		if err != nil {
			t.Fatalf("startDNS: answer for %v: %v", a, err)
		}
		s.answers[reverseName(a)] = n
	}
	conn, err := listenInNS(ns, "127.0.0.1:53")
	if err != nil {
		t.Fatalf("startDNS: %v", err)
	}
	s.conn = conn
	go s.serve()
	t.Cleanup(func() {
		conn.Close()
		<-s.done
	})

	// Remove what startDNS made: /etc/netns if it made it and it is
	// empty again, the directory of ns if it made it, else only the file,
	// which the caller may keep others beside.
	_, parentErr := os.Stat("/etc/netns")
	dir := filepath.Join("/etc/netns", ns)
	_, dirErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("startDNS: %v", err)
	}
	file := filepath.Join(dir, "resolv.conf")
	t.Cleanup(func() {
		if errors.Is(dirErr, os.ErrNotExist) {
			os.RemoveAll(dir)
		} else {
			os.Remove(file)
		}
		if errors.Is(parentErr, os.ErrNotExist) {
			os.Remove("/etc/netns") // fails if another test uses it: fine
		}
	})
	// One try of one second: a test that fails for want of an answer
	// fails in a second rather than after the default 2 tries of 5.
	if err := os.WriteFile(file, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatalf("startDNS: %v", err)
	}
	return s
}

// listenInNS opens a UDP socket on addr inside network namespace ns (a
// name under /var/run/netns). A socket belongs to the namespace of the
// thread that made it, so a locked thread goes into ns, makes the socket
// and comes back; a thread that cannot come back is left locked and the
// runtime ends it, so that no other goroutine runs in ns.
func listenInNS(ns, addr string) (net.PacketConn, error) {
	type result struct {
		conn net.PacketConn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, err, back := listenOnThread(ns, addr)
		ch <- result{conn, err}
		if back {
			runtime.UnlockOSThread()
		}
	}()
	r := <-ch
	return r.conn, r.err
}

// listenOnThread is listenInNS on a locked thread; back says whether the
// thread is in its own namespace again.
func listenOnThread(ns, addr string) (conn net.PacketConn, err error, back bool) {
	// The thread's namespace, not the process's: /proc/self is the main
	// thread, which may be elsewhere.
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err, true
	}
	defer own.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		return nil, fmt.Errorf("open namespace %q: %w", ns, err), true
	}
	defer target.Close()
	var st1, st2 unix.Stat_t
	if err := unix.Fstat(int(own.Fd()), &st1); err != nil {
		return nil, err, true
	}
	if err := unix.Fstat(int(target.Fd()), &st2); err != nil {
		return nil, err, true
	}
	if st1.Dev == st2.Dev && st1.Ino == st2.Ino {
		return nil, fmt.Errorf("namespace %q is the test's own: no server there", ns), true
	}
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter namespace %q: %w", ns, err), true
	}
	conn, err = net.ListenPacket("udp4", addr)
	if err != nil {
		err = fmt.Errorf("listen on %s in namespace %q: %w", addr, ns, err)
	}
	if backErr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); backErr != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave namespace %q: %w", ns, backErr), false
	}
	return conn, err, true
}

// serve answers queries until the socket is closed.
func (s *dnsServer) serve() {
	defer close(s.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			s.conn.WriteTo(resp, from)
		}
	}
}

// answer returns the response to one query; ok is false for a message
// that is no query, which gets none.
func (s *dnsServer) answer(msg []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	key := strings.ToLower(q.Name.String())
	s.mu.Lock()
	s.asked[key]++
	s.mu.Unlock()

	ptr, found := s.answers[key]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !found {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if found && q.Type == dnsmessage.TypePTR && q.Class == dnsmessage.ClassINET {
		if err := b.StartAnswers(); err != nil {
			return nil, false
		}
		err := b.PTRResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.PTRResource{PTR: ptr})
		if err != nil {
			return nil, false
		}
	}
	resp, err = b.Finish()
	return resp, err == nil
}

// queries returns how many queries the server has had.
func (s *dnsServer) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.asked {
		n += c
	}
	return n
}

// queriesFor returns how many PTR queries for a the server has had.
func (s *dnsServer) queriesFor(a netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[reverseName(a)]
}

// reverseName returns the name of a's PTR record, lower case with the final
// dot: 7.2.0.192.in-addr.arpa. (RFC 1035 3.5), or the 32 nibbles of an IPv6
// address backwards under ip6.arpa. (RFC 3596 2.5).
func reverseName(a netip.Addr) string {
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		v := a.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(v[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa.")
		return b.String()
	}
	const hex = "0123456789abcdef"
	v := a.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[v[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[v[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}

func TestReverseName(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.7", "7.2.0.192.in-addr.arpa."},
		{"::ffff:192.0.2.7", "7.2.0.192.in-addr.arpa."},
		{"2001:db8::7", "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
	} {
		if got := reverseName(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("reverseName(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestResolveReal runs systemLookup in a namespace whose only DNS server is
// the test's: the names it finds are the server's, the server saw the
// queries, and an address the server does not know has no name.
func TestResolveReal(t *testing.T) {
	ns := newNamespaces(t, "nu", "dns")[0] // only its loopback, up
	peer4 := netip.MustParseAddr("192.0.2.7")
	peer6 := netip.MustParseAddr("2001:db8::7")
	unknown := netip.MustParseAddr("192.0.2.8")
	srv := startDNS(t, ns, map[netip.Addr]string{peer4: "peer.test.", peer6: "peer6.test"})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	argv := append([]string{"ip", "netns", "exec", ns}, childArgv("resolve", peer4.String(), peer6.String(), unknown.String())...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper in %s: %v\nstdout:\n%s\nstderr:\n%s", ns, err, out, stderr.Bytes())
	}

	got := map[string]string{}
	helperNS := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "netns "); ok {
			helperNS = v
		}
		rest, ok := strings.CutPrefix(sc.Text(), "resolved ")
		if !ok {
			continue
		}
		addr, quoted, _ := strings.Cut(rest, " ")
		name, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("helper line %q: %v", sc.Text(), err)
		}
		got[addr] = name
	}
	if want := nsInode(t, filepath.Join("/var/run/netns", ns)); helperNS != want {
		t.Fatalf("helper in network namespace %q, want %s's, %s", helperNS, ns, want)
	}
	for a, want := range map[netip.Addr]string{peer4: "peer.test", peer6: "peer6.test", unknown: ""} {
		name, ok := got[a.String()]
		if !ok {
			t.Errorf("helper said nothing of %v; its output:\n%s", a, out)
			continue
		}
		if name != want {
			t.Errorf("name of %v = %q, want %q", a, name, want)
		}
		if c := srv.queriesFor(a); c == 0 {
			t.Errorf("the server had no query for %v (%s): the answer came from elsewhere", a, reverseName(a))
		}
	}
	if q := srv.queries(); q < 3 {
		t.Errorf("the server had %d queries, want at least 3", q)
	}
}

// resolveChild is the child of TestResolveReal, a test child inside its
// namespace: it resolves the addresses of its words with systemLookup
// and prints "resolved ADDR "NAME"" for each, once the lookup has ended.
func resolveChild(args []string) int {
	ino, err := statInode("/proc/self/ns/net")
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		return 1
	}
	fmt.Printf("netns %s\n", ino)
	n := makeNames(systemLookup, 5*time.Second, 16)
	ch := make(chan netip.Addr, 100)
	n.stored = func(a netip.Addr, _ string) { ch <- a }
	n.start()
	defer n.close()
	want := map[netip.Addr]bool{}
	var addrs []netip.Addr
	for _, f := range args {
		a := netip.MustParseAddr(f)
		addrs = append(addrs, a)
		want[a] = true
		n.name(a)
	}
	deadline := time.After(patience)
	for len(want) > 0 {
		select {
		case a := <-ch:
			delete(want, a)
		case <-deadline:
			fmt.Fprintf(os.Stderr, "resolve: no answer for %v after %v\n", want, patience)
			return 1
		}
	}
	for _, a := range addrs {
		fmt.Printf("resolved %v %q\n", a, n.name(a))
	}
	return 0
}

// nsInode returns the device and inode of the namespace file at path, which
// say which namespace it is.
func nsInode(t *testing.T, path string) string {
	t.Helper()
	ino, err := statInode(path)
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// statInode is nsInode's answer, or the error of stat.
func statInode(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}
