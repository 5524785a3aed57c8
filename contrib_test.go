package main

// Tests of contrib/, the files a fleet operator copies: Prometheus's
// promtool checks the scrape configuration and the rules and runs the
// rules' unit tests (contrib/netuse-rules.test.yml), systemd-analyze
// verifies the unit, netuse itself runs the unit's command lines, the TLS
// one with the example web configuration, and answers a scrape, and
// contrib/README.md's cron line runs and its series are the rules'.
//
// promtool (Debian: prometheus) and systemd-analyze (Debian: systemd) are
// outside Go: a test that needs one skips without it, except under CI (the
// environment variable CI set), where it fails instead, as a skip there
// would hide that the files went unchecked.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// contribTool returns the path of a program the test needs, or skips
// (fails under CI) if it is not installed; pkg is Debian's package of it.
func contribTool(t *testing.T, name, pkg string) string {
	t.Helper()
	return needTool(t, name, name+" (Debian: apt-get install "+pkg+")")
}

// readContrib returns a file of contrib/ as text.
func readContrib(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("contrib", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runTool runs a program and fails the test, with its output, if it fails.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestContribPrometheusConfig(t *testing.T) {
	promtool := contribTool(t, "promtool", "prometheus")
	// The rules file is named relative to the configuration: promtool
	// checks it too, and fails if it is not found.
	out := runTool(t, promtool, "check", "config", "contrib/prometheus.yml")
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("promtool check config did not check the rules file:\n%s", out)
	}

	// The commented TLS job, in place of the plain one, with the files it
	// names made (promtool checks that they exist).
	dir := t.TempDir()
	conf := tlsScrapeJob(t, readContrib(t, "prometheus.yml"))
	conf = strings.ReplaceAll(conf, "/etc/prometheus/", dir+"/")
	selfSigned(t, dir, "netuse-ca")
	writeFile(t, dir, "netuse.password", "contrib-test-password\n")
	writeFile(t, dir, "netuse-rules.yml", readContrib(t, "netuse-rules.yml"))
	writeFile(t, dir, "prometheus.yml", conf)
	runTool(t, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))

	// Prometheus logs in as the user web-config.yml lets in.
	user := regexp.MustCompile(`(?m)^\s+username: (\S+)$`).FindStringSubmatch(conf)
	if user == nil || !strings.Contains(readContrib(t, "web-config.yml"), "\n  "+user[1]+": ") {
		t.Errorf("the TLS job's username %q is not a user of contrib/web-config.yml", user)
	}
}

// tlsScrapeJob turns prometheus.yml into its TLS variant, as its comment
// says: the commented job uncommented, the plain job of the same name
// taken out.
func tlsScrapeJob(t *testing.T, conf string) string {
	t.Helper()
	var b strings.Builder
	plain, variant := false, 0
	for line := range strings.Lines(conf) {
		switch {
		case line == "  - job_name: netuse\n":
			plain = true
			continue
		case plain && strings.TrimSpace(line) == "":
			plain = false
		case plain:
			continue
		case strings.HasPrefix(line, "  #- ") || strings.HasPrefix(line, "  #  "):
			// The job's lines; "  # " followed by a word is prose.
			line = "  " + line[3:]
			variant++
		}
		b.WriteString(line)
	}
	if variant == 0 || !strings.Contains(b.String(), "scheme: https") {
		t.Fatalf("no commented TLS job in contrib/prometheus.yml:\n%s", b.String())
	}
	return b.String()
}

func TestContribRules(t *testing.T) {
	promtool := contribTool(t, "promtool", "prometheus")
	runTool(t, promtool, "check", "rules", "contrib/netuse-rules.yml")
	// Each recording rule's output on synthetic series, and each alert's.
	runTool(t, promtool, "test", "rules", "contrib/netuse-rules.test.yml")

	// Every rule has a test: a record named in the tests, an alert tested.
	rules, tests := readContrib(t, "netuse-rules.yml"), readContrib(t, "netuse-rules.test.yml")
	for _, m := range regexp.MustCompile(`(?m)^\s+- (record|alert): (\S+)$`).FindAllStringSubmatch(rules, -1) {
		want := "- expr: " + m[2] + "\n"
		if m[1] == "alert" {
			want = "- alertname: " + m[2] + "\n"
		}
		if !strings.Contains(tests, want) {
			t.Errorf("contrib/netuse-rules.test.yml has no %q", strings.TrimSpace(want))
		}
	}
}

// The unit's settings, as systemd reads them: "Section.Key" -> values, in
// order. It knows no line continuations, and fails on one.
func unitSettings(t *testing.T, unit string) map[string][]string {
	t.Helper()
	set := map[string][]string{}
	section := ""
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("unitSettings reads no continued lines: %q", line)
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("not a setting: %q", line)
			}
			set[section+"."+k] = append(set[section+"."+k], v)
		}
	}
	return set
}

// tlsUnit turns netuse.service into its TLS variant, as its comment says:
// the commented LoadCredential and ExecStart lines in place of ExecStart.
func tlsUnit(t *testing.T, unit string) string {
	t.Helper()
	var b strings.Builder
	for line := range strings.Lines(unit) {
		switch {
		case strings.HasPrefix(line, "ExecStart="):
			continue
		case strings.HasPrefix(line, "#ExecStart="), strings.HasPrefix(line, "#LoadCredential="):
			line = line[1:]
		}
		b.WriteString(line)
	}
	set := unitSettings(t, b.String())
	if len(set["Service.ExecStart"]) != 1 || len(set["Service.LoadCredential"]) != 3 {
		t.Fatalf("contrib/netuse.service's TLS variant: ExecStart %q, LoadCredential %q; want one, and three", set["Service.ExecStart"], set["Service.LoadCredential"])
	}
	return b.String()
}

func TestContribUnitCapabilities(t *testing.T) {
	set := unitSettings(t, readContrib(t, "netuse.service"))
	// Exactly proc's capabilities, as setcap names them in its hint.
	var want []string
	for _, c := range strings.Split(setcapCaps, ",") {
		want = append(want, strings.ToUpper(c))
	}
	slices.Sort(want)
	for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		var got []string
		for _, v := range set["Service."+key] {
			got = append(got, strings.Fields(v)...)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s=%s; want %s (setcapCaps)", key, strings.Join(got, " "), strings.Join(want, " "))
		}
	}
	// Settings that would blind netuse, which the unit's comments explain
	// leaving out.
	for key, bad := range map[string]string{
		"PrivateNetwork": "yes", // the host's interfaces and sockets
		"PrivateUsers":   "yes", // capabilities in a namespace of the unit's
		"ProtectProc":    "invisible",
		"ProcSubset":     "pid", // /proc/net/dev
	} {
		if v := set["Service."+key]; len(v) > 0 && v[len(v)-1] == bad {
			t.Errorf("%s=%s hides what netuse reads", key, bad)
		}
	}
}

func TestContribUnitVerify(t *testing.T) {
	analyze := contribTool(t, "systemd-analyze", "systemd")
	// systemd-analyze verify wants the binary to exist; any executable
	// will do, as it does not run it. It exits 0 on an unknown key or a
	// bad value, saying so: any line about the unit fails the test.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.ReplaceAll(readContrib(t, "netuse.service"), "/usr/local/bin/netuse ", self+" ")
	for name, unit := range map[string]string{"plain": plain, "tls": tlsUnit(t, plain)} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "netuse.service")
			writeFile(t, filepath.Dir(path), filepath.Base(path), unit)
			out, err := exec.Command(analyze, "verify", path).CombinedOutput()
			for line := range strings.Lines(string(out)) {
				if strings.Contains(line, "netuse.service") {
					t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
				}
			}
			if err != nil {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}

	// The sandbox as systemd scores it, 0 (safe) to 10 (exposed). Packet
	// capture, BPF and the capabilities keep it above 0; it was 2.8 (OK)
	// with systemd 252. Offline analysis is systemd 250's.
	t.Run("security", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "netuse.service")
		writeFile(t, filepath.Dir(path), filepath.Base(path), plain)
		out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
		if err != nil && strings.Contains(string(out), "offline") {
			privSkip(t, "systemd-analyze security --offline, of systemd 250 or later: "+string(out))
		}
		m := regexp.MustCompile(`Overall exposure level for netuse.service: ([0-9.]+) (\w+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("systemd-analyze security: no overall exposure: %v\n%s", err, out)
		}
		if level, _ := strconv.ParseFloat(m[1], 64); level > 4 {
			t.Errorf("systemd-analyze security: exposure %s %s, want 4 or less:\n%s", m[1], m[2], out)
		}
	})
}

// TestContribUnitServes runs netuse serve with the unit's command lines,
// on a port of the test's own and without capture: the plain one serves
// /metrics, the TLS one only over TLS and to the user web-config.yml lets
// in, and not at all with web-config.yml as shipped, whose hash is a
// placeholder.
func TestContribUnitServes(t *testing.T) {
	unit := readContrib(t, "netuse.service")
	t.Run("plain", func(t *testing.T) {
		addr, stop := serveUnit(t, unit, "")
		defer stop()
		resp, err := http.Get("http://" + addr + "/metrics")
		checkScrape(t, resp, err, http.StatusOK)
	})

	creds := t.TempDir() // the unit's %d
	_, _, pool := selfSigned(t, creds, "netuse")
	web := readContrib(t, "web-config.yml")
	const placeholder = "REPLACE-with-the-bcrypt-hash-of-the-password"
	if !strings.Contains(web, placeholder) {
		t.Fatalf("contrib/web-config.yml has no %q", placeholder)
	}
	t.Run("placeholder", func(t *testing.T) {
		writeFile(t, creds, "web-config.yml", web)
		err := unitApp(t, nil).run(context.Background(), unitArgs(t, tlsUnit(t, unit), creds))
		if err == nil || !strings.Contains(err.Error(), "bcrypt") {
			t.Errorf("netuse serve with the placeholder hash: %v; want a bcrypt error", err)
		}
	})
	t.Run("tls", func(t *testing.T) {
		// bcrypt of "contrib-test-password", cost 4 (the least) to be quick.
		const hash = "$2a$04$Zc0ngcVMlNfx4vNyfilnz.7K.VE5H.zHhIM6ph8kRDDQWZaEPz.oe"
		writeFile(t, creds, "web-config.yml", strings.ReplaceAll(web, placeholder, hash))
		addr, stop := serveUnit(t, tlsUnit(t, unit), creds)
		defer stop()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		get := func(user, pass string) (*http.Response, error) {
			req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			return client.Do(req)
		}
		resp, err := get("", "")
		checkScrape(t, resp, err, http.StatusUnauthorized)
		resp, err = get("prometheus", "wrong")
		checkScrape(t, resp, err, http.StatusUnauthorized)
		resp, err = get("prometheus", "contrib-test-password")
		checkScrape(t, resp, err, http.StatusOK)
		resp, err = http.Get("http://" + addr + "/metrics")
		checkScrape(t, resp, err, http.StatusBadRequest) // Go's answer to HTTP on a TLS port
	})
}

// serveUnit runs the unit's netuse serve until the test calls stop, and
// returns the address it listens on.
func serveUnit(t *testing.T, unit, creds string) (addr string, stop func()) {
	t.Helper()
	args := unitArgs(t, unit, creds)
	r, w := io.Pipe()
	a := unitApp(t, w)
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- a.run(ctx, args)
		w.Close()
	}()
	stop = func() {
		cancel()
		if err := <-ended; err != nil {
			t.Errorf("netuse %s: %v", strings.Join(args, " "), err)
		}
	}
	for line := range lines {
		if a, ok := strings.CutPrefix(line, "netuse: serve: metrics on "); ok {
			go func() {
				for range lines {
				}
			}()
			_, a, _ = strings.Cut(a, "://") // http or https: the caller knows which it asked for
			return strings.TrimSuffix(a, "/metrics"), stop
		}
	}
	stop()
	t.Fatalf("netuse %s ended before it listened", strings.Join(args, " "))
	return "", nil
}

// unitArgs returns the arguments of the unit's ExecStart, %d made creds,
// with --listen on a free loopback port.
func unitArgs(t *testing.T, unit, creds string) []string {
	t.Helper()
	cmd := unitSettings(t, unit)["Service.ExecStart"]
	if len(cmd) != 1 {
		t.Fatalf("ExecStart %q; want one", cmd)
	}
	if strings.ContainsAny(cmd[0], `'"\$`) {
		t.Fatalf("ExecStart=%s: unitArgs splits at spaces only", cmd[0])
	}
	args := strings.Fields(strings.ReplaceAll(cmd[0], "%d", creds))
	if len(args) < 2 || args[0] != "/usr/local/bin/netuse" || args[1] != "serve" {
		t.Fatalf("ExecStart=%s; want /usr/local/bin/netuse serve", cmd[0])
	}
	args = args[1:]
	i := slices.Index(args, "--listen")
	if i < 0 || i+1 == len(args) {
		t.Fatalf("ExecStart=%s: no --listen", cmd[0])
	}
	args[i+1] = "127.0.0.1:0"
	return args
}

// unitApp is netuse with stderr to w (nil: discarded), the interfaces of
// testdata/counters/basic, and a capture that CAP_NET_RAW refuses, so that
// serve needs no privilege.
func unitApp(t *testing.T, w io.Writer) *app {
	a, _, _ := testApp(loadCounters(t, "basic"), false)
	if w != nil {
		a.stderr = w
	}
	a.clock = clock{now: time.Now, sleep: sleepCtx}
	a.proc = procOS{
		tables:  func(func(string)) socketTables { return scenarioTables{&scenario{}} },
		records: func(*registry, socketTables) (*ownerRecords, error) { return nil, errors.New("no records in a test") },
		capture: func([]string) (frameSource, error) { return nil, errNoCapRaw },
	}
	return a
}

// checkScrape checks a response's status, and that a 200 is netuse's
// metrics.
func checkScrape(t *testing.T, resp *http.Response, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s; want %d", resp.Request.URL, resp.Status, want)
	}
	if want == http.StatusOK && !strings.Contains(string(body), `netuse_process_metrics_enabled{reason="no CAP_NET_RAW"} 0`) {
		t.Errorf("GET %s: no netuse_process_metrics_enabled in:\n%s", resp.Request.URL, body)
	}
}

// TestContribReadme checks contrib/README.md against what it describes:
// its cron line is docs/cron.md's and writes node_exporter's file from its
// second run on, and each series it names is one the rules record.
func TestContribReadme(t *testing.T) {
	text := readContrib(t, "README.md")
	cron, err := os.ReadFile(filepath.Join("docs", "cron.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^    (\*/5 \* \* \* \* /usr/local/bin/netuse (iface .*) > /dev/null)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("contrib/README.md has no cron line")
	}
	if !strings.Contains(string(cron), "    "+m[1]+"\n") {
		t.Errorf("contrib/README.md's cron line is not docs/cron.md's: %q", m[1])
	}

	// The cron line's runs, with its files in a directory of the test's.
	s := newStateRig(t)
	args := strings.Fields(m[2])
	i := slices.Index(args, "--state")
	j := slices.Index(args, "--textfile")
	if i < 0 || j < 0 || i+1 == len(args) || j+1 == len(args) {
		t.Fatalf("cron line %q: want --state and --textfile", m[1])
	}
	prom := filepath.Join(filepath.Dir(s.path), filepath.Base(args[j+1]))
	args[j+1] = prom
	args = slices.Delete(args, i, i+2) // stateRig gives --state
	s.cs = []counter{iface("eth0", 2, 1000, 500)}
	if code, out, errs := s.run(args...); code != 0 || out != "" || !strings.Contains(errs, "took the baseline") {
		t.Fatalf("first run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	s.now, s.cs = s.now.Add(5*time.Minute), []counter{iface("eth0", 2, 4000, 900)}
	if code, _, errs := s.run(args...); code != 0 || errs != "" {
		t.Fatalf("second run: exit %d, stderr %q", code, errs)
	}
	b, err := os.ReadFile(prom)
	if err != nil || !strings.Contains(string(b), `netuse_interface_receive_bytes_total{device="eth0"} 3000`+"\n") {
		t.Errorf("second run's %s: %v\n%s\nwant eth0's 3000 bytes since the first", filepath.Base(prom), err, b)
	}

	rules := readContrib(t, "netuse-rules.yml")
	for _, name := range regexp.MustCompile("`(\\w+:netuse_\\w+:\\w+)").FindAllStringSubmatch(text, -1) {
		if !strings.Contains(rules, "- record: "+name[1]+"\n") {
			t.Errorf("contrib/README.md names %s, which netuse-rules.yml does not record", name[1])
		}
	}
}
