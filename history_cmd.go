package main

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// netuse history: what serve kept (history_store.go), summed over a span
// of time, per interface, per group of processes or per reason, as a
// table or as JSON records (historyRecord, whose schema historyJSON
// versions). It opens the file read-only and reads while serve writes.

// historyCmd holds history's own flags; --iface, --top, --sort, --json,
// --units and --si are every command's.
type historyCmd struct {
	Since   string `default:"24h" placeholder:"24h" group:"history" help:"history: from this long ago (24h, 7d, 2w, 1y) or this local date or time (2026-11-01, '2026-11-01 08:00')."`
	Until   string `placeholder:"now" group:"history" help:"history: up to this long ago or this local date or time, as --since; default now."`
	By      string `default:"program" placeholder:"KEYS" group:"history" help:"history: one row per program, user, container (several joined by commas: user,program), or per iface or reason alone."`
	Every   string `placeholder:"LENGTH" group:"history" help:"history: a row per bucket of this length too: 5m, hour, day or month (local time), as vnstat -d and -m."`
	Program string `placeholder:"GLOBS" group:"history" help:"history: only programs whose name matches one of these shell globs (comma-separated)."`
	User    string `placeholder:"USERS" group:"history" help:"history: only processes of these users (names, comma-separated)."`
	Db      string `placeholder:"PATH" group:"history" help:"history: the file serve keeps history in; default /var/lib/netuse/history.db for root, else $XDG_STATE_HOME/netuse/history.db."`
}

func (historyCmd) Help() string {
	return `What netuse serve kept: the traffic of each program (or user, container,
interface, or reason no process was credited) over a span of time, from
serve's history file, summed, or a row per 5 minutes, hour, day or month
with --every. It reads while serve writes (SQLite's WAL), and never
writes the file.

Examples:

	netuse history --since 24h --by program
	netuse history --since 2026-11-01 --by iface --every day
	netuse history --since 7d --by user,program --top 10 --json`
}

// historyJSON is the version of history's JSON records: a record's keys
// change meaning only with a new version.
const historyJSON = 1

// historyKeys are the keys --by takes; iface and reason go alone.
var historyKeys = []string{"program", "user", "container", "iface", "reason"}

// historyOptions are history's flags, read.
type historyOptions struct {
	db           string // "" for the default
	since, until string // as given; read against the clock when history runs
	by           []string
	every        level // numLevels: no --every
	programs     []string
	users        []string
	ifaces       []string
	top          int
	sort         string
	json         bool
	units        units  // the table's: --units and --si
	none         string // the table's line when no row came; "" for the usual one
}

// readHistoryFlags reads history's flags into c.history.
func (c *cli) readHistoryFlags(kctx *kong.Context) error {
	if err := refuseFlags(kctx, "history reads a span of time once and writes a table, or JSON records with --json; drop it"); err != nil {
		return err
	}
	h, bad := c.History.options(c.Ifaces, c.o.top, c.Sort)
	if bad != nil {
		return badFlag(kctx, bad.where, bad.value, bad.want)
	}
	if err := c.readSwitchesAndGlobs(kctx); err != nil {
		return err
	}
	h.json = c.json
	h.units = units{si: c.si, bits: c.bits}
	c.history = h
	return nil
}

// options reads history's flags (and --iface, --top, --sort, read
// already) into historyOptions; a bad one is returned with where the
// flag's long name. serve's /api/v1/history reads its query through it.
func (f historyCmd) options(ifaces []string, top int, sort string) (historyOptions, *badValue) {
	h := historyOptions{db: f.Db, since: f.Since, until: f.Until, every: numLevels, ifaces: ifaces, top: top, sort: sort}
	now := time.Now()
	if _, err := parseWhen(f.Since, now); err != nil {
		return h, &badValue{"since", f.Since, err.Error()}
	}
	if f.Until != "" {
		if _, err := parseWhen(f.Until, now); err != nil {
			return h, &badValue{"until", f.Until, err.Error()}
		}
	}
	for _, key := range strings.Split(f.By, ",") {
		switch {
		case !slices.Contains(historyKeys, key):
			return h, &badValue{"by", f.By, fmt.Sprintf("no key %q; want program, user, container (several joined by commas), iface or reason", key)}
		case slices.Contains(h.by, key):
			return h, &badValue{"by", f.By, fmt.Sprintf("%q twice; want each key once", key)}
		}
		h.by = append(h.by, key)
	}
	if len(h.by) > 1 && (slices.Contains(h.by, "iface") || slices.Contains(h.by, "reason")) {
		return h, &badValue{"by", f.By, "iface and reason go alone: an interface's traffic is not split by process; want iface, reason, or keys of program, user and container"}
	}
	if f.Every != "" {
		i := slices.Index(levelName[:], f.Every)
		if i < 0 {
			return h, &badValue{"every", f.Every, "want 5m, hour, day or month"}
		}
		h.every = level(i)
	}
	for _, g := range splitList(f.Program) {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return h, &badValue{"program", f.Program, fmt.Sprintf("%q: want shell globs like curl or 'python*'", g)}
		}
		h.programs = append(h.programs, g)
	}
	h.users = splitList(f.User)
	if slices.Contains(h.users, "") {
		return h, &badValue{"user", f.User, "want user names"}
	}
	if (len(h.programs) > 0 || len(h.users) > 0) && (h.by[0] == "iface") {
		return h, &badValue{"by", f.By, "--program and --user pick processes, and an interface's traffic is not split by process; drop them or group by program, user or container"}
	}
	switch sort {
	case "", "rx", "tx", "total", "name":
	default:
		return h, &badValue{"sort", sort, "want rx, tx, total or name"}
	}
	return h, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// historyRecord is one row in JSON, history's contract with pipelines:
// schema is historyJSON; from and to are local RFC 3339 times; each --by
// key is present, with "" for none (a process in no container).
type historyRecord struct {
	Schema int    `json:"schema"`
	From   string `json:"from"`
	To     string `json:"to"`
	historyRecordKeys
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

// historyRecordKeys are a historyRecord's --by keys, nil when not asked
// for; encoding/json writes them in the record, in this order.
type historyRecordKeys struct {
	Program   *string `json:"program,omitempty"`
	User      *string `json:"user,omitempty"`
	Container *string `json:"container,omitempty"`
	Iface     *string `json:"iface,omitempty"`
	Reason    *string `json:"reason,omitempty"`
}

// runHistory answers netuse history.
func (a *app) runHistory(h historyOptions) error {
	if h.db == "" && a.historyPath != nil {
		h.db = a.historyPath()
	}
	if h.db == "" || h.db == "off" {
		return usageError{errors.New("history: no history file: give --db PATH, the file netuse serve --db writes")}
	}
	now := a.clock.now()
	rows, from, to, err := readHistory(h, now)
	if err != nil {
		return err
	}
	if len(rows) == 0 && !h.json && h.by[0] != "iface" && h.by[0] != "reason" && len(h.programs)+len(h.users) == 0 {
		// Nothing per process, not even a reason row: serve kept the
		// interfaces alone, if they moved anything. Say so, not just
		// "no traffic".
		hi := h
		hi.by, hi.every, hi.top = []string{"iface"}, numLevels, 0
		if irows, _, _, err := readHistory(hi, now); err == nil {
			var moved traffic
			for _, r := range irows {
				moved.add(r.t)
			}
			if n := moved.rxBytes + moved.txBytes; n > 0 {
				h.none = fmt.Sprintf("no traffic of processes kept in that span, while the interfaces moved %s: serve was not capturing "+
					"(it needs CAP_NET_RAW: see its stderr and netuse_process_metrics_enabled); --by iface shows the interfaces",
					strings.TrimSpace(h.units.size(float64(n), false)))
			}
		}
	}
	w := bufio.NewWriter(a.stdout)
	if h.json {
		err = writeHistoryJSON(w, h, rows)
	} else {
		err = writeHistoryTable(w, h, rows, from, to)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}
