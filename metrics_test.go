package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics reads Prometheus's text format as Prometheus reads it:
// value by family and the first label's value.
func parseMetrics(t *testing.T, text []byte) map[string]map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, text)
	}
	out := map[string]map[string]float64{}
	for name, mf := range mfs {
		out[name] = map[string]float64{}
		for _, m := range mf.Metric {
			label := ""
			if len(m.Label) > 0 {
				label = m.Label[0].GetValue()
			}
			if m.Counter != nil {
				out[name][label] = m.Counter.GetValue()
			} else {
				out[name][label] = m.Gauge.GetValue()
			}
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp: node_exporter drops the file", name)
			}
		}
	}
	return out
}

// TestFormatPrometheus runs iface over the basic counters with --format
// prometheus and --textfile: each block and the file hold every
// interface's totals, as NDJSON's rx_total and tx_total say.
func TestFormatPrometheus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "netuse.prom")
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "--format", "prometheus", "--textfile", file, "-c", "2"}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	blocks := strings.SplitAfter(stdout.String(), "netuse_build_info{")
	if len(blocks) != 3 {
		t.Fatalf("%d blocks; want one per interval: %s", len(blocks)-1, stdout)
	}
	a, js, _ := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "--json", "-c", "2"}); code != 0 {
		t.Fatal("iface --json failed")
	}
	want := map[string][2]float64{}
	rows, _ := ifaceRowsTotals(t, js.String())
	for name, tot := range rows {
		want[name] = tot
	}
	fileText, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	last := stdout.String()[strings.LastIndex(stdout.String(), "# HELP netuse_build_info"):]
	for what, text := range map[string]string{"the last block": last, "the textfile": string(fileText)} {
		got := parseMetrics(t, []byte(text))
		for name, w := range want {
			if got["netuse_interface_receive_bytes_total"][name] != w[0] || got["netuse_interface_transmit_bytes_total"][name] != w[1] {
				t.Errorf("%s: %s rx %v tx %v; want %v", what, name, got["netuse_interface_receive_bytes_total"][name], got["netuse_interface_transmit_bytes_total"][name], w)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the directory holds %v; want the textfile alone", ents)
	}
}

// ifaceRowsTotals reads the last interval's rx_total and tx_total of each
// interface from iface NDJSON.
func ifaceRowsTotals(t *testing.T, ndjson string) (map[string][2]float64, int) {
	t.Helper()
	out := map[string][2]float64{}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		var r record
		if err := jsonUnmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		out[r.Iface] = [2]float64{float64(r.RxTotal), float64(r.TxTotal)}
		n++
	}
	return out, n
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestFormatPrometheusBy runs proc with --by and --format prometheus (and
// --textfile) on the mixed scenario: the process families carry the keys'
// labels as serve's do (program as groupname), each group's counters equal
// its NDJSON totals, and the groups of no process are the unattributed
// families by reason. With --by, only netuse_build_info was written.
func TestFormatPrometheusBy(t *testing.T) {
	frames := loadScenario(t, "mixed").readFrames(t, filepath.Join("testdata", "capture", "mixed.pcapng"))
	for _, by := range []string{"program", "user,program", "container"} {
		t.Run(by, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "netuse.prom")
			prom := loadScenario(t, "mixed").run(t, frames, "proc", "--count", "2", "--owners", "proc", "--by", by, "--format", "prometheus", "--textfile", file)
			js := loadScenario(t, "mixed").run(t, frames, "proc", "--count", "2", "--owners", "proc", "--by", by, "--json")
			// The groups' totals at the last interval, by label values.
			want, reasons := map[string]float64{}, map[string]float64{}
			for line := range bytes.Lines(js) {
				var r struct {
					Type, Reason  string
					Seq           int
					Program, User *string
					Container     *string
					RxTotal       float64 `json:"rx_total"`
				}
				if err := json.Unmarshal(line, &r); err != nil {
					t.Fatal(err)
				}
				if r.Type != "group" {
					continue // a group's last record has its totals: it may be idle at the last interval
				}
				if r.Reason != "" {
					reasons[r.Reason] = r.RxTotal
					continue
				}
				var key []string
				for _, v := range []*string{r.Container, r.Program, r.User} { // labels in name order: container, groupname, user
					if v != nil {
						key = append(key, *v)
					}
				}
				want[strings.Join(key, "/")] = r.RxTotal
			}
			fileText, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			last := prom[bytes.LastIndex(prom, []byte("# HELP netuse_build_info")):]
			for what, text := range map[string][]byte{"stdout": last, "the textfile": fileText} {
				parser := expfmt.NewTextParser(model.UTF8Validation)
				mfs, err := parser.TextToMetricFamilies(bytes.NewReader(text))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got := map[string]float64{}
				for _, m := range mfs["netuse_process_receive_bytes_total"].GetMetric() {
					var key []string
					for _, l := range m.Label {
						key = append(key, l.GetValue())
					}
					got[strings.Join(key, "/")] = m.Counter.GetValue()
					if len(m.Label) != len(strings.Split(by, ",")) {
						t.Errorf("%s: labels %v; want one per key of %q", what, m.Label, by)
					}
				}
				if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: process series %v; want the groups' totals %v", what, got, want)
				}
				gotReasons := parseMetrics(t, text)["netuse_unattributed_receive_bytes_total"]
				if len(reasons) == 0 || fmt.Sprint(gotReasons) != fmt.Sprint(reasons) {
					t.Errorf("%s: unattributed %v; want %v", what, gotReasons, reasons)
				}
			}
		})
	}
}
