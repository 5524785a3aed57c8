package main

// The page in a real browser: Debian's chromium, headless, driven from go
// test through github.com/chromedp/chromedp (the Chrome DevTools
// Protocol from Go, no Node). The test serves a seeded history file, and
// checks what a person would see against netuse history --json.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var screenshot = flag.Bool("screenshot", false, "save the browser test's page as docs/page.png")

// browser is a headless chromium tab and what it saw: console messages,
// exceptions and log entries, the URLs it requested, and the bytes it
// received.
type browser struct {
	ctx context.Context

	mu       sync.Mutex // guards the fields below, which the listener writes
	problems []string   // console errors and warnings, exceptions, log errors
	urls     []string   // every request's URL
	received float64    // bytes received over the network, headers included
	statuses map[string]int64
	byURL    map[string]float64           // bytes received, by request URL
	ids      map[network.RequestID]string // request URLs, by id
}

// newBrowser starts chromium with a profile of its own, or skips the test
// where there is none (fails it under CI, which installs it).
// With ns not "", chromium runs in that network namespace.
func newBrowser(t *testing.T, ns string) *browser {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		privSkip(t, "no chromium on PATH: apt-get install chromium (.ci/run installs it)")
	}
	exe := path
	if ns != "" {
		// ip netns exec execs chromium, which keeps chromedp's pipe (fds 3, 4).
		exe = filepath.Join(t.TempDir(), "chromium-in-"+ns)
		if err := os.WriteFile(exe, []byte("#!/bin/sh\nexec ip netns exec "+ns+" "+path+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium's sandbox refuses root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx, statuses: map[string]int64{}, byURL: map[string]float64{}, ids: map[network.RequestID]string{}}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "warning" || ev.Type == "assert" {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			b.problems = append(b.problems, "exception: "+text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				b.problems = append(b.problems, fmt.Sprintf("log %s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			b.urls = append(b.urls, ev.Request.URL)
			b.ids[ev.RequestID] = ev.Request.URL
		case *network.EventResponseReceived:
			b.statuses[ev.Response.URL] = ev.Response.Status
		case *network.EventLoadingFinished:
			b.received += ev.EncodedDataLength
			b.byURL[b.ids[ev.RequestID]] += ev.EncodedDataLength
		}
	})
	if err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return b
}

// checkSeen checks what a browser saw (seen): no problem, and no request
// to another origin than origin.
func checkSeen(t *testing.T, problems, urls []string, origin string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("chromium: %s", p)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, origin+"/") {
			t.Errorf("the page requested %s, outside its origin %s", u, origin)
		}
	}
}

// seen returns what the browser saw so far, and forgets it.
func (b *browser) seen() (problems, urls []string, received float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	problems, urls, received = b.problems, b.urls, b.received
	b.problems, b.urls, b.received = nil, nil, 0
	return problems, urls, received
}

// weights returns the bytes received by URL so far, and forgets them.
func (b *browser) weights() map[string]float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.byURL
	b.byURL = map[string]float64{}
	return w
}

func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page into v.
func (b *browser) eval(t *testing.T, expr string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("evaluate %s: %v in %s", expr, err, raw)
	}
}

// waitLoaded waits until the page drew the history of these switches
// (page.js sets body's data-loaded when it has).
func (b *browser) waitLoaded(t *testing.T, want string) {
	t.Helper()
	b.do(t, "wait for the page to draw "+want,
		chromedp.Poll[chromedp.Void](fmt.Sprintf("document.body.dataset.loaded === %q && document.querySelectorAll('#now-ifaces tbody tr').length > 0", want)))
}

// choose sets a switch as a person would, and waits for the page to draw.
func (b *browser) choose(t *testing.T, id, value, loaded string) {
	t.Helper()
	b.do(t, "choose "+value+" in #"+id,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event('change')); })()", id, value)))
	b.waitLoaded(t, loaded)
}

// drawn is what the page shows of a chart and its table.
type drawn struct {
	Rows []struct {
		Name   string
		Rx, Tx uint64
	}
	Rects []struct {
		Name, From string
		Rx, Tx     uint64
	}
	Legend []string
}

const drawnJS = `(() => { const box = document.getElementById(%q);
  return {
    rows: [...box.querySelector('tbody').rows].filter((r) => r.cells.length === 4).map((r) => ({name: r.cells[0].textContent, rx: +r.cells[1].dataset.bytes, tx: +r.cells[2].dataset.bytes})),
    rects: [...box.querySelectorAll('svg rect')].map((r) => ({name: r.dataset.name, from: r.dataset.from, rx: +r.dataset.rx, tx: +r.dataset.tx})),
    legend: [...box.querySelectorAll('.legend li')].map((l) => l.textContent),
  }; })()`

// pageFold is the page's chart of records, as the page should draw it:
// the 8 keys of most traffic (or all, if one more), then (other).
func pageFold(recs []historyRecord, by string) drawn {
	key := func(r historyRecord) string {
		p := map[string]*string{"program": r.Program, "user": r.User, "container": r.Container, "iface": r.Iface}[by]
		if p == nil || *p == "" {
			return "(none)"
		}
		return visible(*p, 0) // as the CLI's table shows it
	}
	totals := map[string][2]uint64{}
	for _, r := range recs {
		t := totals[key(r)]
		totals[key(r)] = [2]uint64{t[0] + r.RxBytes, t[1] + r.TxBytes}
	}
	var names []string
	for k := range totals {
		if k != "(other)" {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		x, y := totals[a][0]+totals[a][1], totals[b][0]+totals[b][1]
		if x != y {
			if x > y {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(names) > 9 {
		names = names[:8]
	}
	series := slices.Clone(names)
	if len(names) < len(totals) {
		series = append(series, "(other)")
	}
	var d drawn
	sums := map[string][2]uint64{}
	type cell struct{ from, name string }
	cells := map[cell][2]uint64{}
	var order []cell
	for _, r := range recs {
		s := key(r)
		if !slices.Contains(names, s) {
			s = "(other)"
		}
		c := cell{r.From, s}
		if _, ok := cells[c]; !ok {
			order = append(order, c)
		}
		cells[c] = [2]uint64{cells[c][0] + r.RxBytes, cells[c][1] + r.TxBytes}
		sums[s] = [2]uint64{sums[s][0] + r.RxBytes, sums[s][1] + r.TxBytes}
	}
	for _, s := range series {
		d.Rows = append(d.Rows, struct {
			Name   string
			Rx, Tx uint64
		}{s, sums[s][0], sums[s][1]})
	}
	// The chart stacks each bucket's cells in the series' order.
	slices.SortStableFunc(order, func(a, b cell) int {
		if a.from != b.from {
			return 0
		}
		return slices.Index(series, a.name) - slices.Index(series, b.name)
	})
	for _, c := range order {
		d.Rects = append(d.Rects, struct {
			Name, From string
			Rx, Tx     uint64
		}{c.name, c.from, cells[c][0], cells[c][1]})
	}
	d.Legend = series
	return d
}

// checkDrawn compares the chart and table in box with netuse history
// --json args's records.
func (b *browser) checkDrawn(t *testing.T, box, by string, now time.Time, args ...string) {
	t.Helper()
	want := pageFold(parseRecords(t, historyStdout(t, now, args...)), by)
	var got drawn
	b.eval(t, fmt.Sprintf(drawnJS, box), &got)
	if len(want.Rows) == 0 {
		t.Fatalf("netuse history --json %s: no records; the fixture should cover it", strings.Join(args, " "))
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{{"table", got.Rows, want.Rows}, {"legend", got.Legend, want.Legend}, {"chart", got.Rects, want.Rects}} {
		g, _ := json.Marshal(c.got)
		w, _ := json.Marshal(c.want)
		if string(g) != string(w) {
			t.Errorf("#%s's %s:\n%s\nwant, from netuse history --json %s:\n%s", box, c.what, g, strings.Join(args, " "), w)
		}
	}
}

func TestBrowserPage(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	path := pageFixture(t, now)
	const user, password = "alice", "s3cret"
	s, _ := pageServe(t, now, "--db", path, "--web-config", pageAuthConfig(t, user, password))
	origin := "http://" + s.addr
	b := newBrowser(t, "")

	// Without credentials: 401 (headless chromium, which has no one to ask
	// for a password, then ends the navigation with an error).
	for _, p := range []string{"/", "/api/v1/now", "/api/v1/history"} {
		_, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(origin+p))
		b.mu.Lock()
		status := b.statuses[origin+p]
		b.mu.Unlock()
		if status != 401 {
			t.Errorf("GET %s in chromium without credentials: status %d (%v); want 401", p, status, err)
		}
	}
	b.do(t, "leave the error page", chromedp.Navigate("about:blank"))
	b.seen()
	b.weights()

	// With them: the page, from its own origin alone, with no error.
	auth := "Basic " + basicAuth(user, password)
	if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	b.do(t, "load the page", chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.ID("controls")))
	b.waitLoaded(t, "program day bytes iec")
	problems, urls, received := b.seen()
	t.Logf("first load: %d requests, %.0f bytes received (headers included)", len(urls), received)
	for u, n := range b.weights() {
		t.Logf("  %6.0f  %s", n, strings.TrimPrefix(u, origin))
	}
	checkSeen(t, problems, urls, origin)

	// The hostile name is text, and its script never ran.
	var hostile struct {
		Pwned  bool
		Imgs   int
		Names  []string
		Hidden bool
	}
	b.eval(t, `({pwned: window.__pwned !== undefined, imgs: document.querySelectorAll('main img').length,
		names: [...document.querySelectorAll('#apps tbody th')].map((th) => th.textContent)})`, &hostile)
	if hostile.Pwned || hostile.Imgs != 0 {
		t.Errorf("window.__pwned set: %v, <img> elements in the page: %d; want neither: the name %q ran as markup", hostile.Pwned, hostile.Imgs, pageHostile)
	}
	// Control characters as the CLI's table writes them: visible escapes.
	for _, name := range []string{pageHostile, `ctl\x01\x1b[31mred`, `git\u202eabc`} {
		if !slices.Contains(hostile.Names, name) {
			t.Errorf("the table's programs %q; want %q among them, as text", hostile.Names, name)
		}
	}

	// Each switch: the chart and the table say what netuse history --json says.
	db := []string{"--db", path}
	b.checkDrawn(t, "apps", "program", now, append(db, "--since", "24h", "--every", "5m", "--by", "program")...)
	b.checkDrawn(t, "ifaces", "iface", now, append(db, "--since", "24h", "--every", "5m", "--by", "iface")...)
	b.choose(t, "by", "user", "user day bytes iec")
	b.checkDrawn(t, "apps", "user", now, append(db, "--since", "24h", "--every", "5m", "--by", "user")...)
	b.choose(t, "range", "month", "user month bytes iec")
	b.checkDrawn(t, "apps", "user", now, append(db, "--since", "30d", "--every", "day", "--by", "user")...)
	b.checkDrawn(t, "ifaces", "iface", now, append(db, "--since", "30d", "--every", "day", "--by", "iface")...)
	b.choose(t, "by", "container", "container month bytes iec")
	b.choose(t, "range", "year", "container year bytes iec")
	b.checkDrawn(t, "apps", "container", now, append(db, "--since", "1y", "--every", "month", "--by", "container")...)
	b.checkDrawn(t, "ifaces", "iface", now, append(db, "--since", "1y", "--every", "month", "--by", "iface")...)

	// Units as the CLI's: bits and SI.
	b.choose(t, "units", "bits", "container year bits iec")
	b.choose(t, "prefix", "si", "container year bits si")
	var cell struct {
		Text  string
		Bytes uint64
	}
	b.eval(t, `(() => { const td = document.querySelector('#apps tbody tr td:nth-child(4)'); return {text: td.textContent, bytes: +td.dataset.bytes}; })()`, &cell)
	if want := (units{si: true, bits: true}).size(float64(cell.Bytes), true); cell.Text != want {
		t.Errorf("the first row's total in bits, SI: %q; want %q, as netuse --units bits --si writes %d bytes", cell.Text, want, cell.Bytes)
	}

	// A header sorts its column.
	b.do(t, "sort by received", chromedp.Click(chromedp.CSS("#apps thead th:nth-child(2) button")))
	var rx []uint64
	b.eval(t, `[...document.querySelectorAll('#apps tbody tr td:nth-child(2)')].map((td) => +td.dataset.bytes)`, &rx)
	if !slices.IsSortedFunc(rx, func(a, b uint64) int { return int(int64(b) - int64(a)) }) || len(rx) < 2 {
		t.Errorf("sorted by received: %v; want largest first", rx)
	}

	problems, urls, _ = b.seen()
	checkSeen(t, problems, urls, origin)
}

// TestBrowserLive serves live traffic: netuse serve in namespace a of a
// test network, capturing veth-a, with the seeded history; chromium in a
// too; a program named rsync sends to b, and one named curl receives
// from it. The page's "now" shows them and veth-a moving. -screenshot
// saves this page as docs/page.png.
func TestBrowserLive(t *testing.T) {
	n := newTestNet(t)
	now := time.Now()
	file := pageFixture(t, now)
	_, addr := startServeNS(t, n.a, childArgv("netuse", "serve", "--listen", "127.0.0.1:0", "--db", file, "--iface", "veth-a", "--by", "program", "--interval", "1s")...)
	origin := "http://" + addr

	// rsync uploads to b at 4 MB/s; curl downloads from b at 1 MB/s.
	startStream(t, n.b, "backupd", "sink", "192.0.2.2:7301", 0)
	startStream(t, n.a, "rsync", "send", "192.0.2.2:7301", 4_000_000)
	startStream(t, n.b, "nginx", "serve", "192.0.2.2:7302", 1_000_000)
	startStream(t, n.a, "curl", "recv", "192.0.2.2:7302", 0)

	b := newBrowser(t, n.a)
	b.do(t, "load the page", chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.ID("controls")))
	b.waitLoaded(t, "program day bytes iec")
	// Rates need two polls; wait for rsync's and veth-a's.
	b.do(t, "wait for rates", chromedp.Poll[chromedp.Void](`(() => {
		const moving = (id, name) => [...document.querySelectorAll('#' + id + ' tbody tr')].some((r) => r.cells[0].textContent === name && +r.cells[2].dataset.bytes > 100000);
		return moving('now-ifaces', 'veth-a') && moving('now-groups', 'rsync');
	})()`, chromedp.WithPollingTimeout(20*time.Second)))
	// The history goes up to serve's last report: veth-a's traffic of the
	// last seconds is in it, though serve has not written it on its own.
	b.choose(t, "range", "month", "program month bytes iec")
	var vethA uint64
	b.eval(t, `(() => { const r = [...document.querySelectorAll('#ifaces tbody tr')].find((r) => r.cells[0].textContent === 'veth-a');
		return r ? +r.cells[3].dataset.bytes : 0; })()`, &vethA)
	if vethA < 1_000_000 {
		t.Errorf("veth-a in the history of the last 30 days: %d bytes; want the streams' megabytes of the last seconds", vethA)
	}
	b.choose(t, "range", "day", "program day bytes iec")
	problems, urls, _ := b.seen()
	checkSeen(t, problems, urls, origin)
	if *screenshot {
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", "page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startStream runs a program named comm in ns that moves rate bytes a
// second over TCP until the test ends: "send" dials addr and writes,
// "serve" listens on addr and writes to the one who dials; "recv" dials
// and reads, "sink" listens and reads.
func startStream(t *testing.T, ns, comm, how, addr string, rate int) {
	t.Helper()
	cmd := inNS(ns, childArgv("stream", how, addr, fmt.Sprint(rate))...)
	cmd.Env = append(os.Environ(), "NETUSE_TEST_COMM="+comm)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if sc := bufio.NewScanner(out); !sc.Scan() || !strings.HasPrefix(sc.Text(), "ready") {
		t.Fatalf("%s in %s: no ready line", comm, ns)
	}
}

// streamChild is startStream's program, a test child: HOW ADDR RATE.
func streamChild(args []string) int {
	if comm := os.Getenv("NETUSE_TEST_COMM"); comm != "" {
		os.WriteFile("/proc/self/comm", []byte(comm), 0)
	}
	how, addr := args[0], args[1]
	var rate int
	fmt.Sscan(args[2], &rate)
	var c net.Conn
	var err error
	if how == "serve" || how == "sink" {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			fmt.Println("ready")
			c, err = ln.Accept()
		}
	} else if c, err = net.Dial("tcp", addr); err == nil {
		fmt.Println("ready")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stream:", err)
		return 1
	}
	if how == "recv" || how == "sink" {
		io.Copy(io.Discard, c)
		return 0
	}
	// Pacing, not waiting: 20 writes a second of rate/20 bytes.
	buf := make([]byte, rate/20)
	for range time.Tick(50 * time.Millisecond) {
		if _, err := c.Write(buf); err != nil {
			return 0
		}
	}
	return 0
}

// TestBrowserHistoryOff: under --db off the page shows now, and says
// history is off and how to turn it on.
func TestBrowserHistoryOff(t *testing.T) {
	s, _ := pageServe(t, time.Now())
	origin := "http://" + s.addr
	b := newBrowser(t, "")
	b.do(t, "load the page", chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.ID("history-off")))
	var got struct {
		Off          string
		Ifaces       int
		Apps, Charts bool
	}
	b.eval(t, `({off: document.getElementById('history-off').textContent,
		ifaces: document.querySelectorAll('#now-ifaces tbody tr').length,
		apps: !document.getElementById('apps').hidden, charts: document.querySelectorAll('svg').length > 0})`, &got)
	if !strings.Contains(got.Off, "--db off") || !strings.Contains(got.Off, "--db PATH") || got.Ifaces != 2 || got.Apps || got.Charts {
		t.Errorf("the page under --db off: %+v; want it to say history is off and how to turn it on, eth0 and wlan0 now, no chart", got)
	}
	problems, _, _ := b.seen()
	for _, p := range problems {
		t.Errorf("chromium: %s", p)
	}
}
