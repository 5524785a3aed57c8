#!/usr/bin/env bash
# bench/serve.sh: what netuse serve costs in CPU and memory, idle and under
# load, while it is scraped as Prometheus scrapes it, and how long each
# scrape takes.
#
# What it does: makes two network namespaces of its own, nuserve-a-PID and
# nuserve-b-PID, joined by a veth pair (192.0.2.1/24 on veth-a in A,
# 192.0.2.2/24 on veth-b in B; these documentation addresses exist only
# inside the two namespaces), builds netuse and the traffic generator
# bench/gen from this repository, and for each scrape interval in SCRAPES
# (1 s and 15 s by default) starts, inside A,
#     netuse serve --listen 127.0.0.1:PORT --iface veth-a
# and a scraper, inside A too, that GETs http://127.0.0.1:PORT/metrics with
# curl on a fixed schedule, with the headers Prometheus 3 sends (OpenMetrics
# first, gzip), as long as serve runs. Then it runs these phases, PHASE s
# each (60 by default), with 5 s between them:
#     idle    no traffic on veth-a: serve's reports every second and the
#             scrapes alone
#     bulk    bulk TCP over the veth: one connection from A uploading to a
#             server in B for PHASE/2 s, then another downloading for
#             PHASE/2 s (bench/run.sh's workload 1)
#     udp     10 processes x 1,000 UDP sockets = 10,000 flows, each socket
#             sending a 100-byte datagram twice a second (bench/run.sh's
#             workload 6)
#     curls   curl processes one after the other, each fetching 100,000
#             bytes over a new connection from an HTTP/1.0 server in B that
#             closes first (bench/run.sh's workload 3), until PHASE s pass
#     after   no traffic again: what serve keeps, in memory and CPU,
#             once the load is over
# The workloads are bench/run.sh's, driven the same way (bench/gen, curl):
# run.sh keeps them in its own functions, not in bench/lib.sh, so they are
# written here again. Nothing is sent outside the two namespaces, and
# nothing captures on the machine's own interfaces: serve captures on
# veth-a in A, and its address is A's loopback.
#
# What it reports, per scrape interval and phase: serve's CPU time over
# the phase (utime+stime from /proc/PID/stat at its start and end, all
# threads, over CLK_TCK) as a share of one core; its RSS (VmRSS) at the
# end of the phase and the largest VmRSS sampled every second during it;
# its peak RSS since it started (VmHWM) at the end of the phase; the
# scrapes made in the phase, those that failed (no 200), and curl's
# time_total of each, median and max; the gzip body of the last. After
# each phase, outside its window, one scrape in the text format counts
# the series and checks that process metrics are on.
#
# Run as root, from anywhere, on a machine with Go (PATH or /usr/local/go):
#     sudo bench/serve.sh
#     sudo PHASE=20 SCRAPES=1 bench/serve.sh       # shorter
#     sudo ONLY="idle bulk" bench/serve.sh         # some phases only
#     sudo KEEP=1 bench/serve.sh                   # keep the temp dir (raw outputs)
# It installs what is missing with apt-get (curl, iproute2), and removes
# its namespaces, processes and temp dir on exit, also when interrupted.
# With the defaults it takes about 11 minutes (plus the first build).
set -euo pipefail

PHASE=${PHASE:-60}             # seconds per phase
SCRAPES=${SCRAPES:-"1 15"}     # scrape intervals, seconds; one serve each
PORT=${PORT:-9957}             # serve's port, on A's loopback
ONLY=${ONLY:-"idle bulk udp curls after"}
KEEP=${KEEP:-}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
prog=serve.sh
[[ $PHASE =~ ^[1-9][0-9]*$ ]] || die "PHASE must be a positive integer, not '$PHASE'"
[[ $PORT =~ ^[1-9][0-9]*$ ]] || die "PORT must be a positive integer, not '$PORT'"
for s in $SCRAPES; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "SCRAPES must be positive integers, not '$s'"
done
for p in $ONLY; do
	[[ " idle bulk udp curls after " == *" $p "* ]] || die "ONLY: no phase '$p'; want idle, bulk, udp, curls or after"
done

bench_init serve.sh nuserve nuserve
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
start_s=$SECONDS

need curl:curl ip:iproute2
clk=$(getconf CLK_TCK)

build_netuse
(cd "$repo" && go build -o "$tmp/gen" ./bench/gen) || die "go build of bench/gen failed in $repo"
gen=$tmp/gen

make_pair

# --- serve's use -------------------------------------------------------------

# use PID: "CPU_TICKS VMRSS_KIB VMHWM_KIB" of a running process: utime+stime
# (fields 14 and 15 of /proc/PID/stat, all threads), in clock ticks.
use() {
	local stat f k v rss=nan hwm=nan
	stat=$(<"/proc/$1/stat") || return 1
	read -r -a f <<<"${stat##*) }" # state is f[0], utime f[11], stime f[12]
	while read -r k v _; do
		case $k in
		VmRSS:) rss=$v ;;
		VmHWM:) hwm=$v ;;
		esac
	done <"/proc/$1/status"
	echo "$((f[11] + f[12])) $rss $hwm"
}

# monitor PID OUT: "TIME CPU_TICKS VMRSS_KIB VMHWM_KIB" every second while
# PID lives.
monitor() {
	local u
	while u=$(use "$1" 2>/dev/null); do
		echo "$EPOCHREALTIME $u" >>"$2"
		sleep 1
	done
}

# --- the generator -----------------------------------------------------------

# spawn NS NAME ARGS...: gen ARGS in NS in the background, its counts to
# $tmp/NAME.json and its stderr to $tmp/NAME.err; sets $spawned to its pid.
spawned=""
spawn() {
	local ns=$1 name=$2
	shift 2
	ip netns exec "$ns" "$gen" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" &
	spawned=$!
}

# server NS NAME ARGS...: spawn, then wait until it listens.
server() {
	spawn "$@"
	wait_for "$tmp/$2.err" '^ready' "$spawned" 10 || die "gen $3 in $1 did not start: $(tail -n 3 "$tmp/$2.err")"
}

# finish PID...: wait for clients to end; 1 if one failed.
finish() {
	local pid rc=0
	for pid in "$@"; do
		wait "$pid" || rc=1
	done
	return $rc
}

# --- the phases --------------------------------------------------------------

p_idle() { sleep "$PHASE"; }
p_after() { sleep "$PHASE"; }

p_bulk() {
	server "$ns_b" "$r.bulk.s" serve -listen 192.0.2.2:5001
	local s=$spawned half=$((PHASE / 2))
	spawn "$ns_a" "$r.bulk.c1" tcp -addr 192.0.2.2:5001 -dur "${half}s" -dir up
	finish "$spawned" || return 1
	spawn "$ns_a" "$r.bulk.c2" tcp -addr 192.0.2.2:5001 -dur "$((PHASE - half))s" -dir down
	finish "$spawned" || return 1
	stop "$s" server TERM
}

p_udp() {
	server "$ns_b" "$r.udp.s" udprecv -listen 0.0.0.0:5006 -readers 2
	local s=$spawned i pids=()
	for i in $(seq 10); do
		spawn "$ns_a" "$r.udp.c$i" udp -addr 192.0.2.2:5006 -socks 1000 -senders 2 -size 100 \
			-rate 2000 -dur "${PHASE}s"
		pids+=("$spawned")
	done
	finish "${pids[@]}" || return 1
	stop "$s" receiver TERM
}

p_curls() {
	server "$ns_b" "$r.curls.s" serve -listen 192.0.2.2:8000 -size 100000
	local s=$spawned
	# shellcheck disable=SC2016 # the inner shell's variables
	ip netns exec "$ns_a" bash -c '
		end=$((${EPOCHREALTIME/./} + $1 * 1000000)) n=0
		while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
			curl -sf -m 10 -o /dev/null "$2" || { echo "curl $n failed" >&2; exit 1; }
			n=$((n + 1))
		done
		echo "$n"' bash "$PHASE" http://192.0.2.2:8000/file >"$tmp/$r.curls.n" 2>"$tmp/$r.curls.err" || return 1
	stop "$s" server TERM
}

# --- one round: serve, scraped every N s, through the phases ------------------

# Prometheus 3's default scrape_protocols, as its Accept header says them.
accept='application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2'

results=$tmp/results.tsv
: >"$results"

# round N: serve, its monitor and a scraper every N s, then each phase.
round() {
	r=s$1
	local every=$1 sv mon scr p t0 t1 u0 u1
	ip netns exec "$ns_a" "$tmp/netuse" serve --listen "127.0.0.1:$PORT" --iface veth-a \
		>"$tmp/$r.serve.out" 2>"$tmp/$r.serve.err" &
	sv=$!
	wait_for "$tmp/$r.serve.err" 'metrics on' "$sv" 15 ||
		die "netuse serve did not start within 15 s: $(tail -n 3 "$tmp/$r.serve.err")"
	monitor "$sv" "$tmp/$r.mon" &
	mon=$!
	# The scraper: one GET every $every s on a fixed schedule, as
	# Prometheus's; each line is the time it began, curl's time_total,
	# the bytes of the (gzip) body and the status.
	# shellcheck disable=SC2016 # the inner shell's variables
	ip netns exec "$ns_a" bash -c '
		next=${EPOCHREALTIME/./}
		while :; do
			t=$EPOCHREALTIME
			w=$(curl -s -o /dev/null -m 10 -H "Accept: $2" -H "Accept-Encoding: gzip" \
				-w "%{time_total} %{size_download} %{http_code}" "$1") || true
			echo "$t $w" >>"$3"
			next=$((next + $4 * 1000000))
			now=${EPOCHREALTIME/./}
			[ "$now" -ge "$next" ] || sleep "$(printf "%d.%06d" $(((next - now) / 1000000)) $(((next - now) % 1000000)))"
		done' bash "http://127.0.0.1:$PORT/metrics" "$accept" "$tmp/$r.scrapes" "$every" &
	scr=$!
	sleep 3 # serve's first reports and scrapes, before the idle phase
	for p in idle bulk udp curls after; do
		[[ " $ONLY " == *" $p "* ]] || continue
		t0=$EPOCHREALTIME
		u0=$(use "$sv") || die "netuse serve ended: $(tail -n 3 "$tmp/$r.serve.err")"
		"p_$p" || die "phase $p failed; see $tmp (KEEP=1 keeps it)"
		u1=$(use "$sv") || die "netuse serve ended during $p: $(tail -n 3 "$tmp/$r.serve.err")"
		t1=$EPOCHREALTIME
		# One scrape in the text format, outside the window: the series.
		ip netns exec "$ns_a" curl -s -m 10 "http://127.0.0.1:$PORT/metrics" >"$tmp/$r.$p.metrics" || true
		local series on
		series=$(grep -c '^netuse_' "$tmp/$r.$p.metrics" || true)
		on=$(grep -c '^netuse_process_metrics_enabled{reason=""} 1$' "$tmp/$r.$p.metrics" || true)
		[ "$on" = 1 ] || die "serve's process metrics are off: $(grep netuse_process_metrics_enabled "$tmp/$r.$p.metrics")"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$every" "$p" "$t0" "$t1" "$u0" "$u1" "$series" >>"$results"
		note "scrapes every ${every}s: $p done"
		sleep 5
	done
	kill "$scr" 2>/dev/null || true
	wait "$scr" 2>/dev/null || true
	stop "$sv" "netuse serve"
	wait "$mon" 2>/dev/null || true
	[ ! -s "$tmp/$r.serve.out" ] || note "serve wrote to stdout: $(head -n 3 "$tmp/$r.serve.out")"
	grep -v 'metrics on' "$tmp/$r.serve.err" | sed 's/^/serve stderr: /' >&2 || true
}

for every in $SCRAPES; do
	round "$every"
done

# --- the table ---------------------------------------------------------------

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo "netuse $netuse_version serve --iface veth-a, in a network namespace, scraped from it by curl"
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem, Linux $(uname -r), $(go version | awk '{ print $3 }'); $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "load average (1, 5, 15 min) at the start: $load0; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo
printf '%-7s %-6s %6s %7s %6s %8s %8s %8s %8s %7s %9s %9s %8s %7s\n' "scrape" "phase" "secs" "CPU s" "CPU %" \
	"RSS MiB" "max RSS" "VmHWM" "scrapes" "failed" "median ms" "max ms" "body KiB" "series"
while IFS=$'\t' read -r every p t0 t1 u0 u1 series; do
	r=s$every
	# The monitor's samples and the scrapes that began in the window.
	# The largest of the samples and of the RSS read at the end.
	maxrss=$(awk -v a="$t0" -v b="$t1" -v end="${u1#* }" 'BEGIN { m = end + 0 }
		$1 >= a && $1 <= b && $3 > m { m = $3 } END { print m }' "$tmp/$r.mon")
	read -r n failed median max body < <(awk -v a="$t0" -v b="$t1" '
		$1 >= a && $1 <= b { n++; if ($4 != 200) failed++; else { ms[++k] = $2 * 1000; body = $3 } }
		END {
			# insertion sort: a phase has at most a few hundred scrapes
			for (i = 2; i <= k; i++) { v = ms[i]; for (j = i - 1; j > 0 && ms[j] > v; j--) ms[j+1] = ms[j]; ms[j+1] = v }
			med = k == 0 ? "nan" : (k % 2 ? ms[(k+1)/2] : (ms[k/2] + ms[k/2+1]) / 2)
			printf "%d %d %s %s %s\n", n, failed, med, (k ? ms[k] : "nan"), body / 1024
		}' "$tmp/$r.scrapes")
	awk -v every="$every" -v p="$p" -v t0="$t0" -v t1="$t1" -v u0="$u0" -v u1="$u1" -v clk="$clk" \
		-v maxrss="$maxrss" -v n="$n" -v failed="$failed" -v med="$median" -v max="$max" -v body="$body" -v series="$series" '
		BEGIN {
			split(u0, a, " "); split(u1, b, " ")
			secs = t1 - t0; cpu = (b[1] - a[1]) / clk
			printf "%-7s %-6s %6.1f %7.2f %5.2f%% %8.1f %8.1f %8.1f %8d %7d %9.1f %9.1f %8.1f %7d\n", every "s", p, secs, cpu,
				100 * cpu / secs, b[2] / 1024, maxrss / 1024, b[3] / 1024, n, failed, med, max, body, series
		}'
done <"$results"
echo
echo "CPU %: serve's utime+stime over the phase, of one core. RSS MiB: VmRSS at the end of the phase;"
echo "max RSS: the largest VmRSS sampled every second in it, or at its end; VmHWM: the peak since serve started."
echo "scrapes: GETs of /metrics begun in the phase (OpenMetrics, gzip, as Prometheus 3 asks);"
echo "median/max ms: curl's time_total of those that succeeded; body KiB: the last one's gzip body."
echo "series: netuse_ series in a text-format scrape after the phase."
for every in $SCRAPES; do
	[ ! -s "$tmp/s$every.curls.n" ] || echo "scrapes every ${every}s: curls: $(cat "$tmp/s$every.curls.n") fetches of 100,000 bytes, one after the other"
done
echo "run took $((SECONDS - start_s))s"
