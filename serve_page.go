package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// serve's page and the API it reads: / is netuse's own page (page/,
// embedded), /api/v1/now the totals serve keeps, /api/v1/history what
// netuse history --json writes. They sit on the mux /metrics sits on,
// behind the same web.Serve, so --web-config's TLS and basic auth guard
// them as they guard /metrics.

//go:embed page
var pageFiles embed.FS

// pageCSP lets the page load only from its own origin: no inline script
// or style (the page's are files), no other host, no frames.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// servePage adds the page, its files and the API to mux. db is the
// history file; "" when serve keeps none (--db off).
func (a *app) servePage(mux *http.ServeMux, e *exporter, db string) {
	mux.Handle("GET /{$}", guarded(pageFile("index.html")))
	for _, name := range []string{"page.js", "page.css", "favicon.svg"} {
		mux.Handle("GET /page/"+name, guarded(pageFile(name)))
	}
	mux.Handle("GET /api/v1/now", guarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serveNow(w, r, e, db)
	})))
	mux.Handle("GET /api/v1/history", guarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serveHistory(w, r, e, db)
	})))
}

// pageFile serves one file of page/, gzipped if the client takes it,
// with an ETag of its content so that a reload asks and gets 304.
func pageFile(name string) http.Handler {
	body, err := pageFiles.ReadFile("page/" + name)
	if err != nil {
		panic(err) // the names are the embed's, above
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	ctype := mime.TypeByExtension(path.Ext(name))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", ctype)
		writeBody(w, r, body)
	})
}

// guarded adds the page's security headers to h's answers.
func guarded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pageCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// apiError answers status with one line of JSON: {"error": "..."}.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// serveHistory answers /api/v1/history: its query read into the options
// netuse history's flags are read into (historyCmd.options), the rows
// readHistory returns, written by writeHistoryJSON; one code path with
// netuse history --json. Parameters: since, until, by, every, top, sort,
// program, user, iface, as the flags; since defaults to 24h, by to
// program, as the command's.
func (a *app) serveHistory(w http.ResponseWriter, r *http.Request, e *exporter, db string) {
	if db == "" {
		apiError(w, http.StatusNotFound, "history is off: serve runs with --db off; start it without --db off (or with --db PATH) to keep history")
		return
	}
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "since", "until", "by", "every", "top", "sort", "program", "user", "iface":
		default:
			apiError(w, http.StatusBadRequest, strconv.Quote(name)+": no such parameter; want since, until, by, every, top, sort, program, user or iface")
			return
		}
	}
	get := func(name, def string) string {
		if v, ok := q[name]; ok {
			return v[len(v)-1]
		}
		return def
	}
	f := historyCmd{Since: get("since", historyDefault("Since")), Until: get("until", ""), By: get("by", historyDefault("By")), Every: get("every", ""),
		Program: get("program", ""), User: get("user", ""), Db: db}
	top, err := strconv.Atoi(get("top", "0"))
	if err != nil || top < 0 {
		apiError(w, http.StatusBadRequest, "top "+strconv.Quote(get("top", ""))+": want 0 (all rows) or more")
		return
	}
	h, bad := f.options(splitList(get("iface", "")), top, get("sort", ""))
	if bad != nil {
		apiError(w, http.StatusBadRequest, bad.where+" "+strconv.Quote(bad.value)+": "+bad.want)
		return
	}
	h.json = true
	e.flushHistory()
	rows, _, _, err := readHistory(h, a.clock.now())
	var ue usageError
	switch {
	case errors.As(err, &ue):
		apiError(w, http.StatusBadRequest, "since "+strconv.Quote(h.since)+" is not before until "+strconv.Quote(h.until))
		return
	case err != nil:
		apiError(w, http.StatusInternalServerError, oneLine(err))
		return
	}
	var b bytes.Buffer
	if err := writeHistoryJSON(&b, h, rows); err != nil {
		apiError(w, http.StatusInternalServerError, oneLine(err))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	writeBody(w, r, b.Bytes())
}

// writeBody writes body, gzipped if the client takes it: a day of
// 5-minute records of a dozen programs is some 600 kB of JSON, and 16 kB
// gzipped; page.js 15 kB, and 5 kB (BENCHMARKS.md, the page's weight).
func writeBody(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(body) < 1024 || !acceptsGzip(r) {
		w.Write(body)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	z := gzip.NewWriter(w)
	z.Write(body)
	z.Close()
}

// acceptsGzip reports whether r's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.TrimSpace(name) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// historyDefault is the default of history's flag field, from its kong
// tag: the API's defaults are the command's.
func historyDefault(field string) string {
	f, _ := reflect.TypeFor[historyCmd]().FieldByName(field)
	return f.Tag.Get("default")
}

// nowJSON is /api/v1/now: the totals serve keeps since it started, as of
// the report the request takes (as a scrape does). The page's rates are
// the difference of two of these over the time between them.
type nowJSON struct {
	Schema  int      `json:"schema"`
	TS      string   `json:"ts"` // when the report was taken, UTC
	By      []string `json:"by"` // serve's --by: the keys of groups
	Capture bool     `json:"capture"`
	Off     string   `json:"off,omitempty"` // why there is no capture
	History bool     `json:"history"`       // serve keeps history (not --db off)
	Ifaces  []nowRow `json:"ifaces"`
	Groups  []nowRow `json:"groups"`
}

// nowRow is an interface's or a group's totals; Iface or Keys say whose.
type nowRow struct {
	Iface   string            `json:"iface,omitempty"`
	Keys    map[string]string `json:"keys,omitempty"`  // each --by key's value
	Other   bool              `json:"other,omitempty"` // the groups folded to keep them bounded
	RxTotal uint64            `json:"rx_total"`
	TxTotal uint64            `json:"tx_total"`
}

// nowSchema is the version of /api/v1/now's object.
const nowSchema = 1

// serveNow answers /api/v1/now: a report, then nowJSON of its totals.
func (a *app) serveNow(w http.ResponseWriter, r *http.Request, e *exporter, db string) {
	if err := e.refresh(); err != nil {
		apiError(w, http.StatusInternalServerError, oneLine(err))
		return
	}
	n := nowJSON{Schema: nowSchema, TS: utcOf(a.clock.now()), By: e.by, History: db != "", Ifaces: []nowRow{}, Groups: []nowRow{}}
	e.mu.Lock()
	for name, t := range e.sampler.totals {
		if len(e.globs) == 0 || matchAny(e.globs, name) {
			n.Ifaces = append(n.Ifaces, nowRow{Iface: name, RxTotal: t.rxBytes, TxTotal: t.txBytes})
		}
	}
	n.Capture, n.Off = e.pipe != nil, e.off
	if e.view != nil {
		for k, g := range e.view.groups {
			keys := make(map[string]string, len(e.by))
			for _, by := range e.by {
				keys[by] = k.value(by)
			}
			n.Groups = append(n.Groups, nowRow{Keys: keys, RxTotal: g.u.total.rxBytes, TxTotal: g.u.total.txBytes})
		}
		if o := e.view.other; o != nil {
			keys := make(map[string]string, len(e.by))
			for _, by := range e.by {
				keys[by] = "(other)"
			}
			n.Groups = append(n.Groups, nowRow{Keys: keys, Other: true, RxTotal: o.u.total.rxBytes, TxTotal: o.u.total.txBytes})
		}
	}
	e.mu.Unlock()
	slices.SortFunc(n.Ifaces, func(a, b nowRow) int { return strings.Compare(a.Iface, b.Iface) })
	slices.SortFunc(n.Groups, func(a, b nowRow) int { return cmp.Compare(b.RxTotal+b.TxTotal, a.RxTotal+a.TxTotal) })
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(n)
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, r, b.Bytes())
}
