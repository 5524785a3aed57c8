package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsContract holds serve's /metrics, --format prometheus and
// --textfile to the one contract (metrics.go): fed the same rows, each
// writes the families the contract gives it, every family with the
// contract's type, help and label names, and the families both serve
// and the file write carry the same series with the same values.
func TestMetricsContract(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range contract() {
		if seen[f.name] {
			t.Errorf("the contract has %s twice", f.name)
		}
		seen[f.name] = true
		if !slices.IsSorted(f.labels) {
			t.Errorf("%s: labels %v, want them sorted as a registry writes them", f.name, f.labels)
		}
	}

	curl := &process{pid: 100, start: 1, name: "curl", user: "alice"}
	sshd := &process{pid: 200, start: 2, name: "sshd", user: "root"}
	traffic1 := traffic{rxBytes: 1000, txBytes: 200, rxPackets: 10, txPackets: 2}
	procRows := []usage{
		{name: "curl", proc: curl, interval: traffic1, total: traffic1},
		{name: "sshd", proc: sshd, interval: traffic{rxBytes: 5}, total: traffic{rxBytes: 5}},
		{name: reasonName[noSocket], proc: &process{reason: noSocket}, interval: traffic{rxBytes: 7, txBytes: 3}, total: traffic{rxBytes: 7, txBytes: 3}},
	}
	eth0 := ifc("eth0", 2, 4000, 3000, 40, 30)
	ifaceRows := []usage{{name: "eth0", total: eth0.traffic, interval: eth0.traffic}}

	// The file's outputs, one run of each mode: stdout and the textfile
	// must be the same bytes.
	file, fileBy := map[string]*dto.MetricFamily{}, map[string]*dto.MetricFamily{}
	for _, tc := range []struct {
		m    mode
		by   []string
		rows []usage
	}{{modeTotal, nil, ifaceRows}, {modeIface, nil, ifaceRows}, {modeProc, nil, procRows}, {modeProc, []string{"user", "program"}, procRows}} {
		rows := tc.rows
		if tc.by != nil {
			rows = newView(modeProc, tc.by, filter{}).apply(1, rows, nil)
		}
		var out bytes.Buffer
		r := newRenderer(&out, true, false, false, false)
		r.prom, r.textfile = true, filepath.Join(t.TempDir(), "netuse.prom")
		if err := r.render(report{mode: tc.m, seq: 1, rows: rows, by: tc.by}, options{}); err != nil {
			t.Fatal(err)
		}
		text, err := os.ReadFile(r.textfile)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(text, out.Bytes()) {
			t.Errorf("%s --by %v: --textfile holds\n%s\n--format prometheus wrote\n%s", tc.m, tc.by, text, out.Bytes())
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("%s: not the text format: %v\n%s", tc.m, err, text)
		}
		for name, mf := range mfs {
			if tc.by != nil {
				fileBy[name] = mf
			} else {
				file[name] = mf
			}
		}
	}

	// serve's, of the same interface and the same processes.
	for _, by := range [][]string{{"program"}, {"user", "program"}} {
		// The interface's counters from zero, as serve counts them.
		cs := []counter{ifc("eth0", 2, 0, 0, 0, 0)}
		e := newExporter(func() ([]counter, error) { return cs, nil }, nil, by)
		for _, c := range []counter{cs[0], eth0} {
			cs[0] = c
			if _, err := e.sampler.sample(); err != nil {
				t.Fatal(err)
			}
		}
		e.view = newView(modeServe, by, filter{})
		e.add(procRows, captured{byIface: map[string]traffic{"eth0": traffic1}, dropsBy: map[string]uint64{"eth0": 1}})
		serve := map[string]*dto.MetricFamily{}
		for _, mf := range e.collect() {
			serve[mf.GetName()] = mf
		}
		for _, f := range contract() {
			sf, fileF := serve[f.name], file[f.name]
			if len(by) > 1 && fileBy[f.name] != nil {
				fileF = fileBy[f.name]
			}
			switch {
			case f.serve && sf == nil && f.name != famHistoryErrors.name && f.name != famHistoryWrite.name: // no --db
				t.Errorf("serve --by %v wrote no %s", by, f.name)
			case !f.serve && sf != nil:
				t.Errorf("serve wrote %s, which the contract keeps for the file", f.name)
			case f.file && fileF == nil:
				t.Errorf("--format prometheus --by %v wrote no %s", by, f.name)
			case !f.file && file[f.name] != nil:
				t.Errorf("--format prometheus wrote %s, which the contract keeps for serve", f.name)
			}
			want := f
			if slices.ContainsFunc(famProcess[:], func(p family) bool { return p.name == f.name }) {
				fams, _ := processFamilies(by)
				want.labels = fams[0].labels
			}
			for what, mf := range map[string]*dto.MetricFamily{"serve": sf, "the file": fileF} {
				if mf == nil {
					continue
				}
				if mf.GetType() != want.typ || mf.GetHelp() != want.help {
					t.Errorf("%s --by %v: %s is a %s of help %q; the contract says a %s of help %q", what, by, f.name, mf.GetType(), mf.GetHelp(), want.typ, want.help)
				}
				for _, m := range mf.Metric {
					var names []string
					for _, l := range m.Label {
						names = append(names, l.GetName())
					}
					if !slices.Equal(names, want.labels) {
						t.Errorf("%s --by %v: a series of %s has labels %v; the contract says %v", what, by, f.name, names, want.labels)
					}
				}
			}
			if sf == nil || fileF == nil || f.name == famBuildInfo.name {
				continue
			}
			// The file's series are serve's (serve has every reason,
			// from zero).
			values := map[string]float64{}
			for _, m := range sf.Metric {
				values[labelsOf(m)] = valueOf(m)
			}
			for _, m := range fileF.Metric {
				if got, ok := values[labelsOf(m)]; !ok || got != valueOf(m) {
					t.Errorf("--by %v: %s{%s} is %v in the file, %v (present %v) in serve's", by, f.name, labelsOf(m), valueOf(m), got, ok)
				}
			}
		}
	}
}

// labelsOf is a series' labels, name=value, in order.
func labelsOf(m *dto.Metric) string {
	s := ""
	for _, l := range m.Label {
		s += l.GetName() + "=" + l.GetValue() + ","
	}
	return s
}

func valueOf(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
