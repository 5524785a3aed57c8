package main

import (
	"fmt"
	"strings"
	"time"
)

// The history's buckets: their four lengths, where each starts in local
// time, a row's key within one, and how long each length is kept
// (--db-keep).

// level is a bucket length.
type level int

const (
	level5m level = iota
	levelHour
	levelDay
	levelMonth
	numLevels
)

var levelName = [numLevels]string{"5m", "hour", "day", "month"}

// defaultKeep is how long each length's buckets are kept, vnStat's
// defaults nearly: 5 minutes for 48 hours, hours for 90 days, days for
// two years, months for ever (0).
var defaultKeep = [numLevels]time.Duration{48 * time.Hour, 90 * 24 * time.Hour, 2 * 365 * 24 * time.Hour, 0}

// bucketStart returns the start of t's bucket of length l in loc: 5
// minutes and hours are counted from loc's midnight (a zone 30 minutes
// off UTC has hours at :30), days and months start at loc's midnight.
func bucketStart(l level, t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	switch l {
	case level5m, levelHour:
		n := int64(300)
		if l == levelHour {
			n = 3600
		}
		_, off := t.Zone()
		s := t.Unix()
		r := (s + int64(off)) % n
		if r < 0 {
			r += n
		}
		return time.Unix(s-r, 0).In(loc)
	case levelDay:
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	y, m, _ := t.Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

// bucketNext returns the start of the bucket after the one at start.
func bucketNext(l level, start time.Time, loc *time.Location) time.Time {
	start = start.In(loc)
	switch l {
	case level5m:
		return start.Add(5 * time.Minute)
	case levelHour:
		return bucketStart(levelHour, start.Add(90*time.Minute), loc) // an hour on, whatever DST did
	case levelDay:
		y, m, d := start.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	y, m, _ := start.Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
}

// histKey is one row's identity within a bucket.
type histKey struct {
	kind      string // "iface", "app" or "reason"
	name      string
	user      string
	container string
}

// otherKey is where a kind's keys past maxHistoryKeys go.
func otherKey(kind string) histKey {
	if kind == "app" {
		return histKey{kind, "(other)", "(other)", "(other)"}
	}
	return histKey{kind: kind, name: "(other)"}
}

// bucketKind is one kind's rows of one bucket.
type bucketKind struct {
	level level
	start int64
	kind  string
}

// parseKeep reads --db-keep: four retentions, of the 5-minute, hour, day
// and month buckets, each a number of hours (48h), days (90d) or years
// (2y), or "forever".
func parseKeep(text string) ([numLevels]time.Duration, error) {
	var keep [numLevels]time.Duration
	parts := strings.Split(text, ",")
	if len(parts) != int(numLevels) {
		return keep, fmt.Errorf("want four retentions, of the 5m, hour, day and month buckets, such as 48h,90d,2y,forever")
	}
	for i, p := range parts {
		if p == "forever" {
			continue
		}
		d, err := parseSpan(p)
		if err != nil || d <= 0 {
			return keep, fmt.Errorf("%q: want hours (48h), days (90d), years (2y) or forever", p)
		}
		if i > 0 && keep[i-1] == 0 || i > 0 && d < keep[i-1] {
			return keep, fmt.Errorf("%q: longer buckets are kept at least as long as shorter ones", p)
		}
		keep[i] = d
	}
	return keep, nil
}

// parseSpan reads a span of time: a Go duration (48h, 30m), or days (7d),
// weeks (2w) or years (2y, of 365 days).
func parseSpan(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			var v int
			if _, err := fmt.Sscanf(n, "%d", &v); err != nil || fmt.Sprint(v) != n || v <= 0 || v > 100*366 {
				return 0, fmt.Errorf("bad span %q", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	return time.ParseDuration(s)
}
