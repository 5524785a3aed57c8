package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// The types kong decodes netuse's flags into (toggle, globs, interval),
// and badValue, the error of a value netuse refuses, named as the user
// gave it: by the flag or by its NETUSE_ variable.

// toggle is a flag without a value, such as --json, kept as text: "true"
// when given, or what --json=VALUE or NETUSE_JSON said. Validate reads it.
type toggle string

func (t *toggle) Decode(ctx *kong.DecodeContext) error {
	*t = "true"
	if tok := ctx.Scan.Peek(); tok.Type == kong.FlagValueToken {
		ctx.Scan.Pop()
		*t = toggle(fmt.Sprint(tok.Value))
	}
	return nil
}

// IsBool tells kong that the flag takes no value after a space.
func (*toggle) IsBool() bool { return true }

// on reads the text as kong did before netuse kept it: true, 1 or yes;
// false, 0 or no (NETUSE_JSON=yes in a script keeps working).
func (t toggle) on() (bool, bool) {
	switch strings.ToLower(string(t)) {
	case "true", "1", "yes":
		return true, true
	case "", "false", "0", "no":
		return false, true
	}
	return false, false
}

// globs is --iface's list: repeatable, each value comma-separated as
// NETUSE_IFACE is. kong's own lists would refuse --iface -x for a value.
type globs []string

func (g *globs) Decode(ctx *kong.DecodeContext) error {
	text := ""
	if tok := ctx.Scan.Pop(); !tok.IsEOL() {
		text = fmt.Sprint(tok.Value)
	}
	*g = append(*g, strings.Split(text, ",")...)
	return nil
}

// The bounds of --interval. Below 10ms netuse only burns CPU (top and
// iftop refuse to refresh faster too); above a day a rate says little,
// and a run that long is better left to vnstat or sar.
const (
	minInterval = 10 * time.Millisecond
	maxInterval = 24 * time.Hour
)

// interval is a sampling period given as a Go duration or as seconds.
type interval time.Duration

func (i *interval) UnmarshalText(b []byte) error {
	d, err := parseInterval(string(b))
	if err != nil {
		return err
	}
	*i = interval(d)
	return nil
}

// parseInterval accepts "500ms", "2s", "2" and "0.5"; plain numbers are
// seconds. It refuses a period of 0 or less, and one beyond time.Duration;
// the bounds of --interval are Validate's. Its error is a *badValue.
func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			return 0, &badValue{value: s, want: "want a duration like 500ms or 2s, or seconds like 0.5"}
		}
		// Compare in float: a huge number of seconds would overflow the conversion.
		if f*1e9 > float64(1<<62) {
			return 0, &badValue{value: s, want: tooSlow}
		}
		d = time.Duration(math.Round(f * float64(time.Second))) // to the nearest ns: 1.001 is not 1.000999999s
	}
	if d <= 0 {
		return 0, &badValue{value: s, want: "want " + minInterval.String() + " or more"}
	}
	return d, nil
}

var (
	tooFast = fmt.Sprintf("netuse cannot sample faster than every %v; want %v or more", minInterval, minInterval)
	tooSlow = fmt.Sprintf("netuse cannot sample slower than every %s; want %[1]s or less", strings.TrimSuffix(maxInterval.String(), "0m0s"))
)

// badValue is a value of a flag that netuse refuses.
type badValue struct {
	where string // "--count", or "NETUSE_COUNT" for a value from the environment; "" when not known
	value string // as the user wrote it: the whole variable for the environment
	want  string // what is wrong, if that needs saying, and what netuse wants
}

func (e *badValue) Error() string {
	switch {
	case e.where == "":
		return fmt.Sprintf("%q: %s", e.value, e.want)
	case strings.HasPrefix(e.where, "-"):
		return fmt.Sprintf("%s %q: %s", e.where, e.value, e.want)
	}
	return fmt.Sprintf("%s=%q: %s", e.where, e.value, e.want) // as a shell sets it
}

// badFlag returns the error for the value of the flag called long: named
// by the flag if the command line gave it, else by the variable it came
// from (kong reads the environment only for a flag not given).
func badFlag(kctx *kong.Context, long, value, want string) *badValue {
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == long {
			return &badValue{"--" + long, value, want}
		}
	}
	for _, f := range kctx.Flags() {
		if f.Name != long {
			continue
		}
		for _, env := range f.Envs {
			if text, ok := os.LookupEnv(env); ok {
				return &badValue{env, text, want}
			}
		}
	}
	return &badValue{"--" + long, value, want}
}
