package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// pageHostile is a program's name that is markup: the page must show it
// as text, and the script it carries must not run.
const pageHostile = "<img src=x onerror=window.__pwned=1>"

// pagePrograms are the seeded history's programs: more than the page's
// chart shows (8), so that some fold into (other); one name is markup,
// one holds control characters, one a right-to-left override.
var pagePrograms = []struct {
	name, user, container string
	rx, tx                uint64 // bytes per 5 minutes, before the bucket's own factor
}{
	{"firefox", "alice", "", 900_000, 90_000},
	{pageHostile, "mallory", "", 700_000, 300_000},
	{"apt", "root", "apt.service", 600_000, 10_000},
	{"ssh", "alice", "", 50_000, 400_000},
	{"rsync", "backup", "backup.service", 20_000, 350_000},
	{"dockerd", "root", "docker-3f2a.scope", 200_000, 100_000},
	{"spotify", "bob", "", 250_000, 5_000},
	{"git\u202eabc", "bob", "", 120_000, 30_000},
	{"ctl\x01\x1b[31mred", "bob", "", 80_000, 20_000},
	{"python3", "alice", "", 40_000, 20_000},
	{"curl", "root", "", 30_000, 2_000},
	{"node", "bob", "", 10_000, 10_000},
}

// pageFixture writes a history file that ends at now: every 5 minutes of
// the last 24 hours, every hour of the 30 days before, every day of the
// year before; eth0 and wlan0 carry the programs' traffic. It returns
// the file.
func pageFixture(t testing.TB, now time.Time) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{now}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2}}}
	s := &histServe{e: newExporter(hc.read, nil, []string{"program"})}
	if _, err := s.e.sampler.sample(); err != nil {
		t.Fatal(err)
	}
	if err := s.e.openHistory(path, defaultKeep, clk.now, "b", &s.stderr); err != nil {
		t.Fatal(err)
	}
	s.e.hist.loc = time.Local
	n := 0
	add := func(at time.Time, scale uint64) {
		n++
		var eth, wlan traffic
		for i, p := range pagePrograms {
			if (n+i)%5 == 0 { // a program is not always on
				continue
			}
			f := scale * uint64(1+(n*(i+3))%7)
			tr := traffic{rxBytes: p.rx * f, txBytes: p.tx * f, rxPackets: p.rx * f / 1000, txPackets: p.tx * f / 1000}
			s.e.hist.add(at, histKey{kind: "app", name: p.name, user: p.user, container: p.container}, tr)
			if i%3 == 0 {
				wlan.add(tr)
			} else {
				eth.add(tr)
			}
		}
		s.e.hist.add(at, histKey{kind: "iface", name: "eth0"}, eth)
		s.e.hist.add(at, histKey{kind: "iface", name: "wlan0"}, wlan)
		s.e.hist.add(at, histKey{kind: "reason", name: "no_socket"}, traffic{txBytes: 5000 * scale, txPackets: 5})
	}
	end := bucketStart(level5m, now, time.Local)
	for at := end.Add(-24 * time.Hour); !at.After(end); at = at.Add(5 * time.Minute) {
		add(at, 1)
	}
	for at := end.Add(-31 * 24 * time.Hour); at.Before(end.Add(-24 * time.Hour)); at = at.Add(time.Hour) {
		add(at, 12)
	}
	for at := end.Add(-366 * 24 * time.Hour); at.Before(end.Add(-31 * 24 * time.Hour)); at = at.Add(24 * time.Hour) {
		add(at, 288)
	}
	s.e.closeHistory()
	return path
}

// pageServe runs netuse serve with args on fake interfaces, without
// capture, its clock stopped at now; it returns its address.
func pageServe(t *testing.T, now time.Time, args ...string) (*serving, *fakeIfaces) {
	t.Helper()
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20), ifc("wlan0", 3, 500, 100, 5, 1))
	a, _, stderr := serveApp(ifs, noCapture())
	a.clock.now = func() time.Time { return now }
	return startServe(t, a, stderr, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...), ifs
}

// historyStdout is netuse history --json's output for args, at now.
func historyStdout(t *testing.T, now time.Time, args ...string) string {
	t.Helper()
	a, stdout, stderr := historyApp(&histClock{now})
	if code := a.main(append([]string{"history", "--json"}, args...)); code != 0 {
		t.Fatalf("netuse history --json %s: exit %d, %s", strings.Join(args, " "), code, stderr)
	}
	return stdout.String()
}

// get GETs url, with basic auth if user is not "", and returns the
// response and its body.
func get(t *testing.T, url, user, password string) (*http.Response, string) {
	t.Helper()
	return getWith(t, http.DefaultClient, url, user, password)
}

// getWith is get through client.
func getWith(t *testing.T, client *http.Client, url, user, password string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s as %q: %v", url, user, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// pageCases are the history API's queries and the flags of netuse
// history that ask the same.
var pageCases = []struct{ query, args string }{
	{"", ""},
	{"since=24h&every=5m&by=program", "--since 24h --every 5m --by program"},
	{"since=30d&every=day&by=user", "--since 30d --every day --by user"},
	{"since=1y&every=month&by=container", "--since 1y --every month --by container"},
	{"since=1y&every=month&by=iface", "--since 1y --every month --by iface"},
	{"since=7d&by=user,program&top=3", "--since 7d --by user,program --top 3"},
	{"since=48h&until=24h&by=reason", "--since 48h --until 24h --by reason"},
	{"since=90d&by=program&program=a*,ss*&sort=name", "--since 90d --by program --program a*,ss* --sort name"},
	{"since=30d&by=iface&iface=wl*&every=hour", "--since 30d --by iface --iface wl* --every hour"},
}

func TestPageAPIHistory(t *testing.T) {
	now := time.Date(2026, 11, 30, 14, 7, 0, 0, time.Local)
	path := pageFixture(t, now)
	s, _ := pageServe(t, now, "--db", path)
	for _, c := range pageCases {
		t.Run(c.query, func(t *testing.T) {
			resp, body := get(t, "http://"+s.addr+"/api/v1/history?"+c.query, "", "")
			args := append([]string{"--db", path}, strings.Fields(c.args)...)
			want := historyStdout(t, now, args...)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("GET /api/v1/history?%s: %s, %s: %s", c.query, resp.Status, resp.Header.Get("Content-Type"), body)
			}
			if want == "" {
				t.Fatalf("netuse history --json %s wrote nothing: the fixture should cover it", c.args)
			}
			if body != want {
				t.Errorf("GET /api/v1/history?%s:\n%s\nnetuse history --json %s:\n%s", c.query, body, c.args, want)
			}
		})
	}
}

// TestPageAPIUnflushed: the API answers up to serve's last report, not
// its last write: what the interfaces moved a moment ago is there.
func TestPageAPIUnflushed(t *testing.T) {
	now := time.Date(2026, 11, 30, 14, 7, 0, 0, time.Local)
	path := pageFixture(t, now)
	s, ifs := pageServe(t, now, "--db", path)
	before := historyStdout(t, now, "--db", path, "--since", "5m", "--by", "iface")
	ifs.set(ifc("eth0", 2, 1000+123_456, 2000+654, 10, 20), ifc("wlan0", 3, 500, 100, 5, 1))
	get(t, "http://"+s.addr+"/api/v1/now", "", "") // a report, as a scrape's
	_, body := get(t, "http://"+s.addr+"/api/v1/history?since=5m&by=iface", "", "")
	after := historyStdout(t, now, "--db", path, "--since", "5m", "--by", "iface")
	if body != after || before == after {
		t.Fatalf("GET /api/v1/history?since=5m&by=iface:\n%s\nnetuse history before:\n%s\nafter:\n%s\nwant the second, 123456 bytes more on eth0", body, before, after)
	}
	eth0 := func(recs []historyRecord) (rx, tx uint64) {
		for _, r := range recs {
			if *r.Iface == "eth0" {
				return r.RxBytes, r.TxBytes
			}
		}
		return 0, 0
	}
	rx0, tx0 := eth0(parseRecords(t, before))
	rx1, tx1 := eth0(parseRecords(t, after))
	if rx1-rx0 != 123_456 || tx1-tx0 != 654 {
		t.Errorf("eth0 received %d, sent %d, then %d and %d; want 123456 and 654 bytes more", rx0, tx0, rx1, tx1)
	}
}

func TestPageAPIBadParameters(t *testing.T) {
	now := time.Date(2026, 11, 30, 14, 7, 0, 0, time.Local)
	path := pageFixture(t, now)
	s, _ := pageServe(t, now, "--db", path)
	for _, c := range []struct{ query, param string }{
		{"since=yesterday", "since"},
		{"since=24h&until=2x", "until"},
		{"since=1h&until=2h", "since"},
		{"by=pid", "by"},
		{"by=iface,program", "by"},
		{"every=week", "every"},
		{"top=-1", "top"},
		{"top=ten", "top"},
		{"sort=size", "sort"},
		{"program=[", "program"},
		{"user=,root", "user"},
		{"bye=program", "bye"},
	} {
		resp, body := get(t, "http://"+s.addr+"/api/v1/history?"+c.query, "", "")
		var e struct{ Error string }
		err := json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != http.StatusBadRequest || err != nil || strings.Count(body, "\n") != 1 ||
			!(strings.HasPrefix(e.Error, c.param+" ") || strings.HasPrefix(e.Error, fmt.Sprintf("%q", c.param))) {
			t.Errorf("GET /api/v1/history?%s: %s %q; want 400 and one line of JSON whose error begins with %q", c.query, resp.Status, body, c.param)
		}
	}
}

func TestPageAPINow(t *testing.T) {
	s, ifs := pageServe(t, time.Date(2026, 11, 30, 14, 7, 0, 0, time.UTC))
	ifs.set(ifc("eth0", 2, 2000, 2500, 20, 25), ifc("wlan0", 3, 600, 200, 6, 2))
	resp, body := get(t, "http://"+s.addr+"/api/v1/now", "", "")
	var n nowJSON
	if err := json.Unmarshal([]byte(body), &n); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/now: %s %q: %v", resp.Status, body, err)
	}
	if n.Schema != nowSchema || n.TS != "2026-11-30T14:07:00.000Z" || n.History || n.Capture || n.Off != "no CAP_NET_RAW" ||
		len(n.Ifaces) != 2 || n.Ifaces[0].Iface != "eth0" || n.Ifaces[0].RxTotal != 1000 || n.Ifaces[1].TxTotal != 100 {
		t.Errorf("GET /api/v1/now: %s; want eth0 and wlan0's totals, no capture, no history", body)
	}
	// --db off: the page's history says so, and the API says how to turn it on.
	resp, body = get(t, "http://"+s.addr+"/api/v1/history", "", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "--db off") {
		t.Errorf("GET /api/v1/history with --db off: %s %q; want 404 saying history is off", resp.Status, body)
	}
}

func TestPageCSP(t *testing.T) {
	s, _ := pageServe(t, time.Now())
	for _, c := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/page/page.js", "text/javascript; charset=utf-8"},
		{"/page/page.css", "text/css; charset=utf-8"},
		{"/page/favicon.svg", "image/svg+xml"},
		{"/api/v1/now", "application/json"},
		{"/api/v1/history", "application/json"},
	} {
		resp, body := get(t, "http://"+s.addr+c.path, "", "")
		if got := resp.Header.Get("Content-Security-Policy"); got != pageCSP || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: Content-Security-Policy %q, X-Content-Type-Options %q; want %q, nosniff", c.path, got, resp.Header.Get("X-Content-Type-Options"), pageCSP)
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q; want %q", c.path, got, c.ctype)
		}
		if gz := resp.Uncompressed; gz != (len(body) >= 1024) {
			t.Errorf("GET %s: %d bytes, gzipped %v; want gzip for 1 kB or more, as the client asks", c.path, len(body), gz)
		}
		if c.path == "/" && (strings.Contains(body, "<script>") || strings.Contains(body, "style=") || !strings.Contains(body, `<script src="page/page.js"`)) {
			t.Errorf("GET /: inline script or style, or no page.js:\n%s", body)
		}
	}
	// A reload asks with the ETag, and gets 304.
	resp, _ := get(t, "http://"+s.addr+"/page/page.js", "", "")
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/page/page.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if again, err := http.DefaultClient.Do(req); err != nil || again.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") == "" {
		t.Errorf("GET /page/page.js with If-None-Match %q: %v %v; want 304", resp.Header.Get("ETag"), again.Status, err)
	} else {
		again.Body.Close()
	}
	for _, p := range []string{"/page/nothing.js", "/page/", "/page/index.html", "/index.html", "/favicon.ico"} {
		if resp, body := get(t, "http://"+s.addr+p, "", ""); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "page.js") {
			t.Errorf("GET %s: %s %q; want 404, and no listing of the page's files", p, resp.Status, body)
		}
	}
}

// pageAuthConfig writes a --web-config of basic auth and returns it.
func pageAuthConfig(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "web.yml", fmt.Sprintf("basic_auth_users:\n  %s: %s\n", user, hash))
}

func TestPageAPIBasicAuth(t *testing.T) {
	now := time.Date(2026, 11, 30, 14, 7, 0, 0, time.Local)
	path := pageFixture(t, now)
	const user, password = "alice", "s3cret"
	s, _ := pageServe(t, now, "--db", path, "--web-config", pageAuthConfig(t, user, password))
	for _, p := range []string{"/", "/page/page.js", "/api/v1/now", "/api/v1/history", "/api/v1/history?by=iface"} {
		u := "http://" + s.addr + p
		if resp, body := get(t, u, "", ""); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "rx_bytes") || strings.Contains(body, "netuse") {
			t.Errorf("GET %s without credentials: %s %q; want 401 and nothing of the page", p, resp.Status, body)
		}
		if resp, _ := get(t, u, user, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %s; want 401", p, resp.Status)
		}
		if resp, body := get(t, u, user, password); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the password: %s %q; want 200", p, resp.Status, body)
		}
	}
}

// basicAuth is the credentials of an Authorization: Basic header.
func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// parseRecords reads netuse history --json's records.
func parseRecords(t *testing.T, text string) []historyRecord {
	t.Helper()
	var recs []historyRecord
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var r historyRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}
