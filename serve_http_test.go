package main

// Tests of serve's HTTP side: content negotiation, TLS and basic auth,
// a bad web configuration or listen address.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestServeContentNegotiation: a scrape that asks for OpenMetrics gets it,
// one that asks for nothing gets the classic text format, with the same
// values; / is a page with a link to /metrics.
func TestServeContentNegotiation(t *testing.T) {
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
	a, _, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0")
	ifs.set(ifc("eth0", 2, 1500, 2600, 15, 26))
	url := "http://" + s.addr + "/metrics"

	resp, classic := scrape(t, http.DefaultClient, url, "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("a plain scrape: %s, Content-Type %q; want 200 and text/plain; version=0.0.4", resp.Status, ct)
	}
	if strings.Contains(classic, "# EOF") {
		t.Errorf("a plain scrape holds OpenMetrics' # EOF:\n%s", classic)
	}
	if !strings.Contains(classic, "# TYPE netuse_interface_receive_bytes_total counter\n") {
		t.Errorf("a plain scrape: no classic TYPE line of netuse_interface_receive_bytes_total:\n%s", classic)
	}
	want, _ := series(t, classic, "netuse_interface_")
	if want[`netuse_interface_receive_bytes_total{device="eth0"}`] != 500 {
		t.Errorf("a plain scrape: eth0 received %v; want 500", want[`netuse_interface_receive_bytes_total{device="eth0"}`])
	}

	resp, om := scrape(t, http.DefaultClient, url, "application/openmetrics-text; version=1.0.0")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("an OpenMetrics scrape: %s, Content-Type %q; want 200 and application/openmetrics-text; version=1.0.0", resp.Status, ct)
	}
	if !strings.HasSuffix(om, "\n# EOF\n") {
		t.Errorf("an OpenMetrics scrape does not end with # EOF:\n%s", om)
	}
	// OpenMetrics names a counter's family without _total, its sample with.
	if !strings.Contains(om, "# TYPE netuse_interface_receive_bytes counter\n") {
		t.Errorf("an OpenMetrics scrape: no TYPE line of the family netuse_interface_receive_bytes:\n%s", om)
	}
	got := map[string]float64{}
	for line := range strings.Lines(om) {
		if !strings.HasPrefix(line, "netuse_interface_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
		if err != nil {
			t.Fatalf("an OpenMetrics sample without a value: %q", line)
		}
		got[line[:i]] = v
	}
	if d := seriesDiff(want, got); d != "" {
		t.Errorf("OpenMetrics and the classic format differ (- classic, + OpenMetrics):\n%s", d)
	}

	resp, page := scrape(t, http.DefaultClient, "http://"+s.addr+"/", "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/html") || !strings.Contains(page, `<a href="metrics">`) {
		// metrics, not /metrics: the page works behind a proxy's path prefix.
		t.Errorf("GET /: %s, Content-Type %q; want 200, an HTML page with a link to metrics:\n%s", resp.Status, ct, page)
	}
	if resp, _ := scrape(t, http.DefaultClient, "http://"+s.addr+"/nothing", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %s; want 404", resp.Status)
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil", err)
	}
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after serve ended", s.addr)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir as name.crt and name.key, and returns a pool that trusts it.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netuse serve test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// writeFile writes text to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeTLSBasicAuth serves with exporter-toolkit's web configuration:
// TLS with a self-signed certificate and one user. The right user and
// password get the metrics over HTTPS; a wrong password, an unknown user
// or none get 401; plain HTTP to the TLS port gets Go's 400.
func TestServeTLSBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir, "netuse")
	const user, password = "prometheus", "s3cret pass"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, dir, "web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n", certFile, keyFile, user, hash))

	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
	a, stdout, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0", "--web-config", config)
	if s.scheme != "https" {
		t.Errorf("serve with TLS says it serves %s://%s; want https", s.scheme, s.addr)
	}
	ifs.set(ifc("eth0", 2, 1500, 2600, 15, 26))

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	metrics := "https://" + s.addr + "/metrics"

	resp, body := getWith(t, client, metrics, user, password)
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET %s with the right password: %s (TLS %v); want 200 over TLS: %s", metrics, resp.Status, resp.TLS != nil, body)
	}
	if got, _ := series(t, body, "netuse_interface_"); got[`netuse_interface_receive_bytes_total{device="eth0"}`] != 500 {
		t.Errorf("GET %s with the right password: eth0 received %v; want 500:\n%s", metrics, got[`netuse_interface_receive_bytes_total{device="eth0"}`], body)
	}
	for _, c := range []struct{ what, url, user, password string }{
		{"a wrong password", metrics, user, "wrong"},
		{"an unknown user", metrics, "root", password},
		{"no credentials", metrics, "", ""},
		{"no credentials, the landing page", "https://" + s.addr + "/", "", ""},
	} {
		resp, body := getWith(t, client, c.url, c.user, c.password)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Basic" || strings.Contains(body, "netuse_") {
			t.Errorf("GET %s with %s: %s, WWW-Authenticate %q; want 401, Basic, and no metrics: %s", c.url, c.what, resp.Status, resp.Header.Get("WWW-Authenticate"), body)
		}
	}

	// Plain HTTP to the TLS port: Go's TLS server sees an HTTP request
	// where a handshake should be, answers 400 and closes the connection.
	plain := "http://" + s.addr + "/metrics"
	resp, body = scrape(t, http.DefaultClient, plain, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Client sent an HTTP request to an HTTPS server") || strings.Contains(body, "netuse_") {
		t.Errorf("GET %s: %s: %q; want 400, client sent an HTTP request to an HTTPS server", plain, resp.Status, body)
	}

	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil", err)
	}
	for _, l := range stderr.lines() {
		if !strings.HasPrefix(l, "netuse: ") {
			t.Errorf("stderr line %q: not netuse's", l)
		}
	}
	if !strings.Contains(stderr.String(), "netuse: serve: http: TLS handshake error from 127.0.0.1:") {
		t.Errorf("stderr = %q; want the line of the plain HTTP request's failed handshake", stderr)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q; want nothing", stdout)
	}
}

// freePort returns a port of 127.0.0.1 that nothing listens on, as the
// kernel hands out for :0.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestServeBadWebConfig: a web configuration that exporter-toolkit
// refuses ends serve before it listens: exit 1, one line that names the
// file, nothing on stdout.
func TestServeBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir, "netuse")
	otherCert, _, _ := selfSigned(t, dir, "other")
	hash, err := bcrypt.GenerateFromPassword([]byte("pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tls := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile)
	for _, tt := range []struct {
		what, config string
		want         string // in the line, after the file's name
	}{
		{"bad YAML", "tls_server_config: [cert_file: " + certFile + "\n", "yaml"},
		{"a certificate file that does not exist", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", filepath.Join(dir, "missing.crt"), keyFile), "missing.crt"},
		{"an unknown field", tls + "basic_auth_user:\n  prometheus: " + string(hash) + "\n", "basic_auth_user"},
		{"a password that is no bcrypt hash", tls + "basic_auth_users:\n  prometheus: pass\n", `the password of "prometheus" is not a bcrypt hash; make one with: htpasswd -nBC 10`},
		{"a key of another certificate", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", otherCert, keyFile), "key"},
		{"no such file", "", "no such file"},
	} {
		t.Run(tt.what, func(t *testing.T) {
			path := filepath.Join(dir, "nonexistent.yml")
			if tt.config != "" {
				path = writeFile(t, dir, "web.yml", tt.config)
			}
			addr := freePort(t)
			ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
			a, stdout, stderr := serveApp(ifs, noCapture())
			code := mainWithin(t, a, "serve", "--listen", addr, "--web-config", path)
			prefix := fmt.Sprintf("netuse: serve --web-config %q: ", path)
			msg := stderr.String()
			if code != 1 || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, prefix) || !strings.Contains(msg[len(prefix):], tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and one line %s...%s...", code, msg, prefix, tt.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
			t.Logf("stderr: %s", msg)
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("something listens on %s after serve failed", addr)
			}
		})
	}
}

// TestServeBadListen: an address serve cannot listen on ends it at once:
// exit 1, one line that names the address and the cause.
func TestServeBadListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// 203.0.113.254 (TEST-NET-3, RFC 5737) is on no interface of this
	// machine: bind(2) refuses it without a packet sent.
	const foreign = "203.0.113.254"
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), foreign+"/") {
			t.Fatalf("%s is an address of this machine: the test needs one that is not", foreign)
		}
	}
	for _, tt := range []struct {
		listen string
		want   string // the cause
	}{
		{taken.Addr().String(), "bind: address already in use"},
		{foreign + ":0", "bind: cannot assign requested address"},
	} {
		t.Run(tt.listen, func(t *testing.T) {
			ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
			a, stdout, stderr := serveApp(ifs, noCapture())
			code := mainWithin(t, a, "serve", "--listen", tt.listen)
			want := fmt.Sprintf("netuse: serve --listen %q: %s; want a free host:port of this machine, such as %s\n", tt.listen, tt.want, defaultListen)
			t.Logf("stderr: %s", stderr)
			if code != 1 || stderr.String() != want {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
		})
	}
}
