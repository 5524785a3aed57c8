#!/usr/bin/env bash
# bench/soak.sh: does netuse proc keep a flat memory footprint over a long
# run under mixed traffic, and what does it cost in CPU? Not part of CI.
#
# What it does: makes two network namespaces of its own joined by a veth
# pair (192.0.2.1/24 in A on veth-a, 192.0.2.2/24 in B on veth-b; these
# documentation addresses exist only inside the namespaces; no IPv6), and
# runs inside A, on A's interfaces only,
#     netuse proc --json --iface veth-a --iface lo -i 1s
# for DURATION while this traffic runs, paced so that it stays well below
# what the machine can carry:
#   - bulk TCP, RATE bytes/s each: a client in A uploading to B, a client
#     in A downloading from B, a client in B uploading to a server in A;
#   - UDP: a steady RATE/5 bytes/s stream from A to B, and queries from a
#     new socket each to random ports of B, answered;
#   - CHURN short TCP connections a second from A to random ports of B
#     (20 ports, a few kB each way, new ephemeral ports every time);
#   - new processes starting and exiting in A: a curl fetching 100 kB from
#     an HTTP server in B, and a one-shot client sending 20 kB, each about
#     PROCS times a second;
#   - loopback: a client in A uploading RATE bytes/s to a server in A over
#     127.0.0.1.
# The traffic programs are a small Go program that the script writes and
# builds in its temp dir (only the standard library), plus curl.
#
# What it reports: every INTERVAL, netuse's resident memory (VmRSS, and
# VmHWM, the peak), its CPU time (utime + stime from /proc/<pid>/stat) and
# its share of a core over the interval, its open descriptors and
# threads, and from its capture records the intervals it reported, the
# bytes it captured, the share of them credited to processes and the
# share credited by inference (the sole-newcomer rule, see README.md), and
# the frames the kernel dropped. At the end, the traffic moved; the bytes
# credited to processes outside the two namespaces, where no process moves
# any of this traffic: a measure of wrong credit; netuse's exit status
# and anything it wrote to stderr; and a verdict: memory is flat
# if netuse's RSS at the end is at most TOLERANCE percent (and at least
# 2 MiB) above its RSS after WARMUP, when its caches have filled; else it
# grew, and by how much per hour.
#
# Run as root, from anywhere:
#     sudo bench/soak.sh                          # 30 minutes, a row a minute
#     sudo DURATION=3m INTERVAL=20s bench/soak.sh # a short trial
#     sudo KEEP=1 bench/soak.sh                   # keep the temp dir (netuse's NDJSON, samples)
# Durations are seconds or a number with s, m or h. Other knobs: RATE
# (bytes/s of each bulk stream, default 1000000), CHURN (short connections
# a second, default 50), PROCS (new processes a second per kind, default
# 2), WARMUP (default 5m; a third of the run if that is more than half of
# it), TOLERANCE (percent, default 10).
# It installs what is missing with apt-get (iproute2, curl, jq), builds
# netuse from this repository with `go build`, and removes its namespaces,
# processes and temp dir on exit, also when interrupted.
# Exit status: 0 memory flat, 2 memory grew, 1 the run failed.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
prog=soak

# secs DURATION: seconds of "90", "90s", "3m" or "1h".
secs() {
	case $1 in
	*[!0-9smh]* | "" | [smh]*) return 1 ;;
	*s) echo "${1%s}" ;;
	*m) echo $((${1%m} * 60)) ;;
	*h) echo $((${1%h} * 3600)) ;;
	*) echo "$1" ;;
	esac
}
if ! duration=$(secs "${DURATION:-30m}") || [ "$duration" -eq 0 ]; then
	die "DURATION must be like 30m, 90s or 1h, not '${DURATION:-}'"
fi
if ! interval=$(secs "${INTERVAL:-1m}") || [ "$interval" -eq 0 ]; then
	die "INTERVAL must be like 1m or 20s, not '${INTERVAL:-}'"
fi
warmup=$(secs "${WARMUP:-5m}") || die "WARMUP must be like 5m, not '${WARMUP:-}'"
RATE=${RATE:-1000000}
CHURN=${CHURN:-50}
PROCS=${PROCS:-2}
TOLERANCE=${TOLERANCE:-10}
KEEP=${KEEP:-}
for v in RATE CHURN PROCS TOLERANCE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
warmup_note=""
if [ $((2 * warmup)) -gt "$duration" ]; then
	warmup=$((duration / 3))
	warmup_note=", a third of the run: WARMUP is more than half of DURATION"
fi
bench_init soak netuse-soak nusoak
# netuse reads its flags from NETUSE_* too: none from the caller's shell.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^NETUSE_' || true)

# --- what is needed ----------------------------------------------------------

need ip:iproute2 curl:curl jq:jq

# --- build -------------------------------------------------------------------

build_netuse

# The traffic programs. Every word runs until killed, but "once".
mkdir "$tmp/gen"
cat >"$tmp/gen/go.mod" <<'EOF'
module soakgen

go 1.21
EOF
cat >"$tmp/gen/main.go" <<'EOF'
// soakgen moves traffic for bench/soak.sh:
//
//	sink tcp|udp ADDR           accept or receive, and discard
//	source ADDR RATE            send RATE bytes/s to each client
//	push ADDR RATE              connect, send RATE bytes/s; again on error
//	pull ADDR                   connect, read until EOF; again on error
//	udp ADDR RATE               send RATE bytes/s in 1,000-byte datagrams
//	serve HOST BASE N           TCP and UDP on ports BASE..BASE+N-1: answer
//	                            each TCP request with the bytes it asks for,
//	                            echo each datagram
//	churn HOST BASE N PERSEC    PERSEC short connections a second to random
//	                            ports of serve (one in five a UDP query);
//	                            prints its counts every 10 s
//	http ADDR SIZE              serve SIZE bytes to every HTTP request
//	once ADDR N                 connect, send N bytes, exit
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	a := os.Args[1:]
	n := func(i int) int { v, _ := strconv.Atoi(a[i]); return v }
	var err error
	switch a[0] {
	case "sink":
		err = sink(a[1], a[2])
	case "source":
		err = source(a[1], n(2))
	case "push":
		forever(func() error { return push(a[1], n(2)) })
	case "pull":
		forever(func() error { return pull(a[1]) })
	case "udp":
		forever(func() error { return udp(a[1], n(2)) })
	case "serve":
		err = serve(a[1], n(2), n(3))
	case "churn":
		churn(a[1], n(2), n(3), n(4))
	case "http":
		body := make([]byte, n(2))
		err = http.ListenAndServe(a[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	case "once":
		var c net.Conn
		if c, err = net.Dial("tcp", a[1]); err == nil {
			_, err = c.Write(make([]byte, n(2)))
			c.Close()
		}
	default:
		err = fmt.Errorf("unknown word %q", a[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakgen:", a, err)
		os.Exit(1)
	}
}

// forever runs f again a second after each time it fails.
func forever(f func() error) {
	for {
		f()
		time.Sleep(time.Second)
	}
}

// pace writes chunk-byte writes to w at rate bytes a second until it fails.
func pace(w io.Writer, rate, chunk int) error {
	buf := make([]byte, chunk)
	start := time.Now()
	sent := 0
	for {
		n, err := w.Write(buf)
		if err != nil {
			return err
		}
		sent += n
		if d := time.Until(start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
	}
}

func sink(proto, addr string) error {
	if proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return err
			}
		}
	}
	return accept(addr, func(c net.Conn) { io.Copy(io.Discard, c) })
}

func accept(addr string, handle func(net.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() { handle(c); c.Close() }()
	}
}

func source(addr string, rate int) error {
	return accept(addr, func(c net.Conn) { pace(c, rate, 16<<10) })
}

func push(addr string, rate int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return pace(c, rate, 16<<10)
}

func pull(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.Copy(io.Discard, c)
	return err
}

func udp(addr string, rate int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return pace(c, rate, 1000)
}

func serve(host string, base, ports int) error {
	errs := make(chan error)
	for p := base; p < base+ports; p++ {
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		go func() {
			errs <- accept(addr, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var size [4]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				io.Copy(io.Discard, c) // until the client's CloseWrite
				c.Write(make([]byte, binary.BigEndian.Uint32(size[:])%(1<<20)))
			})
		}()
		go func() {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				errs <- err
				return
			}
			buf := make([]byte, 65536)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					errs <- err
					return
				}
				c.WriteTo(buf[:n], from)
			}
		}()
	}
	return <-errs
}

func churn(host string, base, ports, perSec int) {
	var tcps, udps, failed atomic.Int64
	go func() {
		for range time.Tick(10 * time.Second) {
			fmt.Printf("tcp %d udp %d failed %d\n", tcps.Load(), udps.Load(), failed.Load())
		}
	}()
	for range time.Tick(time.Second / time.Duration(perSec)) {
		addr := net.JoinHostPort(host, strconv.Itoa(base+rand.Intn(ports)))
		go func() {
			var err error
			if rand.Intn(5) == 0 {
				err = query(addr)
				udps.Add(1)
			} else {
				err = fetch(addr, 1000+rand.Intn(19000))
				tcps.Add(1)
			}
			if err != nil {
				failed.Add(1)
			}
		}()
	}
}

// fetch asks serve for size bytes, sending 1,000 of its own.
func fetch(addr string, size int) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := make([]byte, 1004)
	binary.BigEndian.PutUint32(req, uint32(size))
	if _, err := c.Write(req); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	n, err := io.Copy(io.Discard, c)
	if err == nil && int(n) != size {
		err = fmt.Errorf("got %d bytes, asked for %d", n, size)
	}
	return err
}

// query sends a 200-byte datagram from a new socket and waits for the echo.
func query(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(make([]byte, 200)); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 512))
	return err
}
EOF
(cd "$tmp/gen" && GOTOOLCHAIN=local GOFLAGS="" go build -o "$tmp/soakgen" .) || die "could not build the traffic generator"

# --- two namespaces, a veth pair ---------------------------------------------

make_pair

# gen NS WORD...: run a traffic program in namespace NS, in the background,
# its output in $tmp/gen-WORD_ARGS.log.
gen_pids=()
gen() {
	local ns=$1 args
	shift
	args="$*"
	ip netns exec "$ns" "$tmp/soakgen" "$@" >"$tmp/gen-${args// /_}.log" 2>&1 &
	gen_pids+=($!)
}

# A's counters: veth-a and lo, rx + tx.
counters() {
	ip netns exec "$ns_a" cat /sys/class/net/veth-a/statistics/rx_bytes /sys/class/net/veth-a/statistics/tx_bytes \
		/sys/class/net/lo/statistics/rx_bytes /sys/class/net/lo/statistics/tx_bytes |
		awk '{ v[NR] = $1 } END { printf "%.0f %.0f\n", v[1] + v[2], v[3] + v[4] }'
}

# --- servers, netuse, then the traffic ---------------------------------------

gen "$ns_b" sink tcp 192.0.2.2:9001
gen "$ns_b" source 192.0.2.2:9002 "$RATE"
gen "$ns_b" sink udp 192.0.2.2:9003
gen "$ns_b" serve 192.0.2.2 10000 20
gen "$ns_b" http 192.0.2.2:8080 100000
gen "$ns_a" sink tcp 192.0.2.1:9101
gen "$ns_a" sink tcp 127.0.0.1:9201
sleep 0.2
netns_b=$(readlink "/proc/${gen_pids[0]}/ns/net" | tr -dc 0-9)
deadline=$((SECONDS + 15))
until ip netns exec "$ns_a" curl -sf -m 2 -o /dev/null http://192.0.2.2:8080/ 2>/dev/null; do
	[ "$SECONDS" -lt "$deadline" ] || die "the servers did not answer within 15 s: $(cat "$tmp"/gen-*.log)"
	sleep 0.2
done

read -r veth0 lo0 < <(counters)
ip netns exec "$ns_a" "$tmp/netuse" proc --json --iface veth-a --iface lo -i 1s \
	>"$tmp/netuse.ndjson" 2>"$tmp/netuse.err" &
netuse_pid=$!
wait_for "$tmp/netuse.ndjson" '"type":"capture"' "$netuse_pid" 15 ||
	die "netuse did not start capturing within 15 s: $(tail -n 3 "$tmp/netuse.err")"
start=$SECONDS
netns_a=$(readlink "/proc/$netuse_pid/ns/net" | tr -dc 0-9)

gen "$ns_a" push 192.0.2.2:9001 "$RATE"
gen "$ns_a" pull 192.0.2.2:9002
gen "$ns_b" push 192.0.2.1:9101 "$RATE"
gen "$ns_a" udp 192.0.2.2:9003 $((RATE / 5))
gen "$ns_a" push 127.0.0.1:9201 "$RATE"
gen "$ns_a" churn 192.0.2.2 10000 20 "$CHURN"
# New processes: each loop counts its runs in a file.
pause=$(awk -v p="$PROCS" 'BEGIN { printf "%.3f", 1 / p }')
ip netns exec "$ns_a" sh -c 'n=0; while :; do curl -s -m 10 -o /dev/null http://192.0.2.2:8080/; n=$((n + 1)); echo $n >"$1"; sleep "$2"; done' \
	sh "$tmp/curls" "$pause" >/dev/null 2>&1 &
ip netns exec "$ns_a" sh -c 'n=0; while :; do "$1" once 192.0.2.2:9001 20000; n=$((n + 1)); echo $n >"$2"; sleep "$3"; done' \
	sh "$tmp/soakgen" "$tmp/onces" "$pause" >/dev/null 2>&1 &

# --- sampling ----------------------------------------------------------------

tck=$(getconf CLK_TCK)
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "netuse proc soak: $((duration / 60))m$((duration % 60))s, a sample every ${interval}s; netuse $netuse_version"
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "traffic: 3 bulk TCP streams and loopback at $RATE B/s each, UDP at $((RATE / 5)) B/s, $CHURN short connections/s, $PROCS curls/s and $PROCS one-shot clients/s"
echo
row() { printf '%7s %8s %8s %8s %6s %5s %5s %7s %9s %7s %8s %6s\n' "$@"; }
row elapsed "RSS MiB" "HWM MiB" "CPU s" "CPU %" fds thr reports "captured" share inferred drops
row "" "" "" "" "" "" "" "" "MB" "" "" ""

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f%%", 100 * a / b; else printf "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# status KEY: a line of netuse's /proc/<pid>/status, first number.
status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$netuse_pid/status"; }
# capture totals so far: records, bytes, attributed and inferred bytes, drops.
captured() {
	jq -nrR '[inputs | fromjson? | select(type == "object" and .type == "capture")]
		| [length, (map(.rx_bytes + .tx_bytes) | add // 0), (map(.attributed_bytes) | add // 0),
		   (map(.inferred_bytes // 0) | add // 0), (map(.drops) | add // 0)]
		| @tsv' "$tmp/netuse.ndjson"
}

prev_t=$start prev_cpu=0 prev_n=0 prev_bytes=0 prev_attr=0 prev_inf=0 prev_drops=0
: >"$tmp/samples.tsv"
sample() {
	local now=$SECONDS stat ticks rss hwm fds thr n bytes attr inf drops dt
	stat=$(cat "/proc/$netuse_pid/stat") || die "netuse (pid $netuse_pid) is gone: $(tail -n 3 "$tmp/netuse.err")"
	read -r -a f <<<"${stat##*) }"
	ticks=$((f[11] + f[12])) # utime, stime: fields 14 and 15 of stat
	rss=$(status VmRSS)
	hwm=$(status VmHWM)
	thr=$(status Threads)
	fds=$(find "/proc/$netuse_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	read -r n bytes attr inf drops < <(captured)
	dt=$((now - prev_t))
	[ "$dt" -gt 0 ] || dt=1
	row "$(((now - start) / 60))m$(printf %02d $(((now - start) % 60)))s" "$(mib "$rss")" "$(mib "$hwm")" \
		"$(awk -v t="$ticks" -v h="$tck" 'BEGIN { printf "%.1f", t / h }')" \
		"$(awk -v t=$((ticks - prev_cpu)) -v h="$tck" -v d="$dt" 'BEGIN { printf "%.1f", 100 * t / h / d }')" \
		"$fds" "$thr" $((n - prev_n)) "$(awk -v b=$((bytes - prev_bytes)) 'BEGIN { printf "%.1f", b / 1e6 }')" \
		"$(pct $((attr - prev_attr)) $((bytes - prev_bytes)))" "$(pct $((inf - prev_inf)) $((bytes - prev_bytes)))" $((drops - prev_drops))
	printf '%s\t%s\t%s\t%s\t%s\n' $((now - start)) "$rss" "$hwm" "$ticks" "$drops" >>"$tmp/samples.tsv"
	prev_t=$now prev_cpu=$ticks prev_n=$n prev_bytes=$bytes prev_attr=$attr prev_inf=$inf prev_drops=$drops
}

sample
next=$((start + interval))
end=$((start + duration))
while :; do
	[ "$next" -lt "$end" ] || next=$end
	while [ "$SECONDS" -lt "$next" ]; do
		alive "$netuse_pid" || die "netuse ended during the run: $(tail -n 3 "$tmp/netuse.err")"
		sleep 1
	done
	sample
	[ "$next" -lt "$end" ] || break
	next=$((next + interval))
done

# --- the end -----------------------------------------------------------------

kill -INT "$netuse_pid"
deadline=$((SECONDS + 10))
while alive "$netuse_pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
alive "$netuse_pid" && note "netuse did not end 10 s after SIGINT"
netuse_rc=0
wait "$netuse_pid" || netuse_rc=$?
read -r veth1 lo1 < <(counters)
dead=0
for p in "${gen_pids[@]}"; do alive "$p" || dead=$((dead + 1)); done

echo
echo "traffic: veth-a $(((veth1 - veth0) / 1000000)) MB, lo $(((lo1 - lo0) / 1000000)) MB (rx + tx);" \
	"$(cat "$tmp/curls" 2>/dev/null || echo 0) curls, $(cat "$tmp/onces" 2>/dev/null || echo 0) one-shot clients;" \
	"short connections: $(tail -q -n 1 "$tmp"/gen-churn_*.log 2>/dev/null | grep . || echo none counted)"
[ "$dead" = 0 ] || echo "warning: $dead traffic programs had ended before the end: $(cat "$tmp"/gen-*.log | sort | uniq -c | head -n 5)"
# Every process that moves traffic runs in A or B: bytes credited to a
# process of another namespace (or of one unknown, netns 0) went to the
# wrong process.
read -r stray_bytes stray_pids < <(jq -nrR --argjson a "$netns_a" --argjson b "$netns_b" '
	[inputs | fromjson? | select(type == "object" and .type == "proc" and .pid > 0 and .netns != $a and .netns != $b)]
	| [(map(.rx_bytes + .tx_bytes) | add // 0), (map(.pid) | unique | length)] | @tsv' "$tmp/netuse.ndjson")
read -r all_bytes inf_bytes < <(jq -nrR '[inputs | fromjson? | select(type == "object" and .type == "capture")]
	| [(map(.rx_bytes + .tx_bytes) | add // 0), (map(.inferred_bytes // 0) | add // 0)] | @tsv' "$tmp/netuse.ndjson")
echo "credited by inference: $inf_bytes bytes ($(pct "$inf_bytes" "$all_bytes") of those captured);" \
	"to $stray_pids processes outside the soak's namespaces: $stray_bytes bytes ($(pct "$stray_bytes" "$all_bytes"))"
echo "netuse: exit status $netuse_rc after SIGINT; stderr: $(if [ -s "$tmp/netuse.err" ]; then head -c 2000 "$tmp/netuse.err"; else echo "nothing"; fi)"

# Verdict: RSS at the end against RSS at the first sample after warmup.
read -r base_t base_rss < <(awk -F'\t' -v w="$warmup" '$1 >= w { print $1, $2; exit }' "$tmp/samples.tsv")
read -r last_t last_rss < <(tail -n 1 "$tmp/samples.tsv" | cut -f 1,2)
awk -v bt="$base_t" -v br="$base_rss" -v lt="$last_t" -v lr="$last_rss" -v tol="$TOLERANCE" -v note="$warmup_note" '
	BEGIN {
		grow = lr - br
		allowed = br * tol / 100; if (allowed < 2048) allowed = 2048
		printf "memory: RSS %.1f MiB at %dm%02ds (the first sample after warmup%s), %.1f MiB at the end (%dm%02ds): %+.1f MiB",
			br / 1024, bt / 60, bt % 60, note, lr / 1024, lt / 60, lt % 60, grow / 1024
		if (lt > bt) printf ", %+.1f MiB/hour", grow / 1024 * 3600 / (lt - bt)
		printf "\n"
		if (grow <= allowed) {
			printf "verdict: FLAT (grew at most %.1f MiB, %d%% of the warm RSS or 2 MiB)\n", allowed / 1024, tol
			exit 0
		}
		printf "verdict: GREW (more than %.1f MiB, %d%% of the warm RSS or 2 MiB)\n", allowed / 1024, tol
		exit 2
	}' || verdict=$?
[ "$netuse_rc" = 0 ] || die "netuse exited with status $netuse_rc"
exit "${verdict:-0}"
