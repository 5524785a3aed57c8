#!/usr/bin/env bash
# bench/run.sh: netuse proc and nethogs side by side, on the same traffic at
# the same time: how much of it each credits to the process that moved it,
# what each costs in CPU and memory, and where each starts to lose packets.
#
# What it does: makes two network namespaces of its own, nubench-a-PID and
# nubench-b-PID, joined by a veth pair (192.0.2.1/24 on veth-a in A,
# 192.0.2.2/24 on veth-b in B; these documentation addresses exist only
# inside the two namespaces), builds netuse and the traffic generator
# bench/gen from this repository, and for each workload starts, inside A
# and on one of A's interfaces only (veth-a, or lo for workload 4), both
#     netuse proc --json --iface IFACE -i 1s --source SOURCE
#     nethogs -t -v 2 -d 1 -C IFACE     (trace mode, cumulative bytes, TCP+UDP;
#                                        -a too on lo, which it needs there)
# waits until each has reported once, runs the workload, waits 3 s, reads
# each tool's CPU time and peak RSS, and stops both with SIGINT. Nothing
# is sent outside the two namespaces, and nothing captures on the
# machine's own interfaces. Workloads, with the generator's processes in A
# and its servers in B unless said otherwise:
#     1  bulk TCP over the veth: one connection uploading for DUR s, then
#        another downloading for DUR s (two processes)
#     2  64-byte UDP datagrams from 4 sockets in one process, one run per
#        rate in UDP_RATES (datagrams/s; 0 is as fast as the sender can)
#     3  N_SHORT curl processes one after the other, each fetching 100,000
#        bytes over a new connection from an HTTP/1.0 server that closes
#        first (the scenario of bench/shortlived.sh)
#     4  bulk TCP over loopback inside A, client and server both in A: up
#        for DUR s, then down for DUR s
#     5  20 processes x 50 connections = 1,000 connections, all moving data
#        at once for DUR s, half uploading and half downloading
#     6  10 processes x 1,000 UDP sockets = 10,000 flows, each socket
#        sending a 100-byte datagram twice a second for 15 s: peak RSS with
#        10,000 concurrent flows
#     7  bulk TCP, 10 Gbit/s class: 4 processes uploading over one
#        connection each, as fast as they can, for DUR s; netuse's CPU per
#        GB moved
#
# What it reports, one row per workload and tool: the truth (the
# interface's rx+tx bytes and packets over the run, from
# /sys/class/net/IFACE/statistics in A, read before the tools start and
# after they stop; and the payload the generator, or curl, says it sent and
# received); the bytes each tool credited to the workload's own processes
# in A (matched by pid) and their share of the interface's bytes; each
# tool's CPU seconds (utime+stime from /proc/PID/stat just before it is
# stopped, over CLK_TCK; for netuse plus the run time of its eBPF
# programs, which run in the kernel on behalf of the processes that send
# and receive: the run_time_ns of the programs whose fds it holds, with
# kernel.bpf_stats_enabled set to 1 for the run) and peak RSS (VmHWM);
# and netuse's kernel drops
# (the sum of its capture records' drops; nethogs does not report drops).
# On loopback the kernel's counters count each packet twice (tx and rx),
# and both ends are processes in A: a tool that credits every packet to
# both the sender and the receiver gets 100%, one that credits it to one
# end only 50%. Below the table: what the other rows went to, the rates
# reached, and which of the issue's targets are met.
#
# Run as root, from anywhere, on a machine with Go (PATH or /usr/local/go):
#     sudo bench/run.sh
#     sudo ONLY="1 2" bench/run.sh          # some workloads only
#     sudo DUR=5 UDP_RATES="100000 0" bench/run.sh
#     sudo KEEP=1 bench/run.sh              # keep the temp dir (raw outputs)
#     sudo SOURCE=capture bench/run.sh      # netuse's --source (default kernel)
#     sudo ARGS=--packet-senders bench/run.sh  # more flags for netuse proc
# It installs what is missing with apt-get (nethogs, curl, iproute2, jq),
# and removes its namespaces, processes and temp dir on exit, also when
# interrupted. The whole run takes 3.5 to 5.5 minutes on a 2-core VM (plus
# the first build).
set -euo pipefail

DUR=${DUR:-10}                            # seconds per bulk phase
UDP_DUR=${UDP_DUR:-8}                     # seconds per UDP rate
UDP_RATES=${UDP_RATES:-"25000 50000 100000 0"} # datagrams/s; 0 = unlimited
N_SHORT=${N_SHORT:-200}                   # curls in workload 3
ONLY=${ONLY:-"1 2 3 4 5 6 7"}
SOURCE=${SOURCE:-kernel}
KEEP=${KEEP:-}
ARGS=${ARGS:-}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
prog=run.sh
for v in DUR UDP_DUR N_SHORT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
for r in $UDP_RATES; do
	[[ $r =~ ^[0-9]+$ ]] || die "UDP_RATES must be integers, not '$r'"
done

[[ $SOURCE =~ ^(kernel|capture|auto)$ ]] || die "SOURCE must be kernel, capture or auto, not '$SOURCE'"

bench_init run.sh nubench nubench
# The kernel times each eBPF program's runs only while asked to: on for
# the run, as it was after.
bpf_stats0=$(sysctl -n kernel.bpf_stats_enabled)
at_exit 'sysctl -qw kernel.bpf_stats_enabled="$bpf_stats0"'
sysctl -qw kernel.bpf_stats_enabled=1
# Other work on the machine takes CPU from the tools and the generator:
# the load average at the start and at the end go with the figures.
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
start_s=$SECONDS

# --- what is needed ----------------------------------------------------------

need nethogs:nethogs curl:curl ip:iproute2 jq:jq stdbuf:coreutils

# usage PID: "CPU_SECONDS PEAK_RSS_KIB" of a running process: utime+stime
# (fields 14 and 15 of /proc/PID/stat, all threads) over CLK_TCK, VmHWM.
clk=$(getconf CLK_TCK)
usage() {
	local stat hwm
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo "nan nan"
		return
	}
	stat=${stat##*) } # fields from the 3rd on: state is 1, utime 12, stime 13
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	awk -v s="$stat" -v clk="$clk" -v hwm="${hwm:-nan}" \
		'BEGIN { split(s, f, " "); printf "%.2f %s\n", (f[12] + f[13]) / clk, hwm }'
}

# counters IFACE: "RX_BYTES TX_BYTES RX_PACKETS TX_PACKETS" of IFACE in A.
counters() {
	# shellcheck disable=SC2016 # $1 is the inner shell's
	ip netns exec "$ns_a" sh -c 'cd /sys/class/net/$1/statistics && cat rx_bytes tx_bytes rx_packets tx_packets' \
		sh "$1" | tr '\n' ' '
}

# --- build -------------------------------------------------------------------

build_netuse
(cd "$repo" && go build -o "$tmp/gen" ./bench/gen) || die "go build of bench/gen failed in $repo"
gen=$tmp/gen
nethogs_version=$(nethogs -V 2>&1 | sed -n 's/^ *version *//p' | head -n 1)

# --- two namespaces and a veth pair ------------------------------------------

make_pair

# --- the generator -----------------------------------------------------------

# spawn NS NAME ARGS...: run gen ARGS in NS in the background, its counts to
# $tmp/NAME.json and its stderr to $tmp/NAME.err; sets $spawned to its pid
# (ip netns exec execs, so the pid is gen's own).
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

# client NS NAME ARGS...: spawn and record the pid in $tmp/$w.pids.
client() {
	spawn "$@"
	echo "$spawned" >>"$tmp/$w.pids"
}

# finish PID...: wait for clients to end; 1 if one failed.
finish() {
	local pid rc=0
	for pid in "$@"; do
		wait "$pid" || rc=1
	done
	return $rc
}

# --- the tools ---------------------------------------------------------------

# start_tools IFACE: netuse and nethogs in A on IFACE, once both reported.
nu_pid="" nh_pid=""
start_tools() {
	# shellcheck disable=SC2086 # ARGS: words
	ip netns exec "$ns_a" "$tmp/netuse" proc --json --iface "$1" -i 1s --source "$SOURCE" $ARGS \
		>"$tmp/$w.netuse.ndjson" 2>"$tmp/$w.netuse.err" &
	nu_pid=$!
	# stdbuf: line-buffered, so that a refresh is in the file when printed.
	# -a: nethogs refuses loopback without it, even when named.
	local all=()
	[ "$1" != lo ] || all=(-a)
	ip netns exec "$ns_a" stdbuf -oL nethogs -t -v 2 -d 1 -C "${all[@]}" "$1" \
		>"$tmp/$w.nethogs.out" 2>"$tmp/$w.nethogs.err" &
	nh_pid=$!
	wait_for "$tmp/$w.netuse.ndjson" '"type":"capture"' "$nu_pid" 15 ||
		die "netuse did not start capturing on $1 within 15 s: $(tail -n 3 "$tmp/$w.netuse.err")"
	wait_for "$tmp/$w.nethogs.out" '^Refreshing:' "$nh_pid" 15 ||
		die "nethogs printed no refresh on $1 within 15 s: $(tail -n 3 "$tmp/$w.nethogs.err" "$tmp/$w.nethogs.out")"
}

# stop_tools: their CPU time and peak RSS into $nu_use and $nh_use, then
# SIGINT (netuse writes its last interval).
nu_use="" nh_use=""
stop_tools() {
	# The capture sockets, with their rings, for the record (KEEP=1). Their
	# skmem d (drops) stays 0: ring overflows are counted only in
	# PACKET_STATISTICS, which only the socket's owner can read.
	ip netns exec "$ns_a" ss -0 -a -m -e -p >"$tmp/$w.ss" 2>&1 || true
	nu_use=$(usage "$nu_pid")
	nh_use=$(usage "$nh_pid")
	local bpf_s bpf_runs
	read -r bpf_s bpf_runs < <(bpf_use "$nu_pid")
	echo "$w: netuse's eBPF programs ran ${bpf_s} s in the kernel, $bpf_runs runs ($(awk -v s="$bpf_s" -v n="$bpf_runs" 'BEGIN { printf "%.0f", (n > 0 ? s * 1e9 / n : 0) }') ns a run), counted in its CPU s; its own threads $(echo "$nu_use" | cut -d ' ' -f 1) s" >>"$notes"
	nu_use=$(awk -v u="$nu_use" -v b="$bpf_s" 'BEGIN { split(u, f, " "); printf "%.2f %s\n", f[1] + b, f[2] }')
	kill -INT "$nu_pid" "$nh_pid" 2>/dev/null || true
	stop "$nu_pid" netuse
	stop "$nh_pid" nethogs
}

# nu_credit NDJSON PIDFILE: "CREDITED CAPTURED DROPS INFERRED UNATTRIBUTED"
# bytes (rx+tx); credited is the sum of the proc rows of the listed pids
# (each row is one interval's bytes), captured the capture records'.
nu_credit() {
	jq -nrR --slurpfile pids "$2" '
		($pids | map({key: tostring, value: true}) | from_entries) as $ours
		| [inputs | fromjson? | select(type == "object")] as $r
		| def bytes: map(.rx_bytes + .tx_bytes) | add // 0;
		($r | map(select(.type == "capture"))) as $c
		| [ ($r | map(select(.type == "proc" and $ours[.pid | tostring])) | bytes),
		    ($c | bytes), ($c | map(.drops // 0) | add // 0),
		    ($c | map(.inferred_bytes // 0) | add // 0),
		    ($r | map(select(.type == "proc" and .pid == 0)) | bytes) ]
		| @tsv' "$1"
}

# nu_reasons NDJSON: bytes of the pid 0 rows by reason, and of the rows of
# other processes, by name.
nu_reasons() {
	jq -nrR --slurpfile pids "$2" '
		($pids | map({key: tostring, value: true}) | from_entries) as $ours
		| [inputs | fromjson? | select(type == "object" and .type == "proc"
		    and ($ours[.pid | tostring] | not))]
		| group_by(if .pid == 0 then .reason else .name end)
		| map("\(if .[0].pid == 0 then .[0].reason else .[0].name end) \(map(.rx_bytes + .tx_bytes) | add)")
		| join(", ")' "$1"
}

# nh_credit OUT PIDFILE: "CREDITED SEEN UNKNOWN OTHERS". Trace lines are
# NAME/PID/UID<tab>SENT<tab>RECEIVED, cumulative bytes with -v 2 (see
# bench/shortlived.sh), so a process's total is its largest line.
nh_credit() {
	awk -F'\t' -v pidfile="$2" '
		BEGIN { while ((getline p < pidfile) > 0) ours[p] = 1 }
		NF == 3 && $1 ~ /\/[0-9]+\/[0-9]+$/ {
			v = $2 + $3
			if (!($1 in total) || v > total[$1]) total[$1] = v
		}
		END {
			for (k in total) {
				name = k; sub(/\/[0-9]+\/[0-9]+$/, "", name)
				pid = k; sub(/\/[0-9]+$/, "", pid); sub(/.*\//, "", pid)
				seen += total[k]
				if (pid in ours) ours_b += total[k]
				else if (name ~ /^unknown /) unknown += total[k]
				else other += total[k]
			}
			printf "%.0f %.0f %.0f %.0f\n", ours_b, seen, unknown, other
		}' "$1"
}

# gen_sum W: "SENT RECV SENT_PKTS RECV_PKTS" summed over W's client counts.
gen_sum() {
	cat "$tmp/$1".c*.json 2>/dev/null | jq -rs '[ (map(.sent_bytes) | add // 0),
		(map(.recv_bytes) | add // 0), (map(.sent_pkts) | add // 0),
		(map(.recv_pkts) | add // 0) ] | @tsv'
}

# --- one measurement ---------------------------------------------------------

# measure W IFACE LABEL FUNC: the tools on IFACE around FUNC, which runs the
# workload and writes its processes' pids to $tmp/W.pids; one result line.
results=$tmp/results.tsv
notes=$tmp/notes.txt
: >"$results"
: >"$notes"
measure() {
	w=$1
	local iface=$2 label=$3 fn=$4 c0 c1 t0
	: >"$tmp/$w.pids"
	c0=$(counters "$iface")
	start_tools "$iface"
	t0=$(date +%s.%N)
	"$fn" || die "workload $w ($label) failed; see $tmp (KEEP=1 keeps it)"
	local secs
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	sleep 3
	stop_tools
	c1=$(counters "$iface")
	local rx tx rxp txp
	read -r rx tx rxp txp < <(awk -v a="$c0" -v b="$c1" \
		'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f %.0f %.0f %.0f\n", y[1]-x[1], y[2]-x[2], y[3]-x[3], y[4]-x[4] }')
	local g nu nh
	g=$(gen_sum "$w")
	# jq --slurpfile wants JSON: one number per line is.
	nu=$(nu_credit "$tmp/$w.netuse.ndjson" "$tmp/$w.pids") || die "could not read netuse's output for $w"
	nh=$(nh_credit "$tmp/$w.nethogs.out" "$tmp/$w.pids") || die "could not read nethogs's output for $w"
	# Fields: W, label, iface, counters, gen, netuse, nethogs, netuse's
	# use, nethogs's use, seconds; lists within a field are space-separated.
	printf '%s\t%s\t%s\t%s %s %s %s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$label" "$iface" \
		"$rx" "$tx" "$rxp" "$txp" "${g//$'\t'/ }" "${nu//$'\t'/ }" "${nh//$'\t'/ }" \
		"$nu_use" "$nh_use" "$secs" >>"$results"
	local other
	other=$(nu_reasons "$tmp/$w.netuse.ndjson" "$tmp/$w.pids")
	echo "$w: netuse's other rows (pid 0 by reason, others by name): ${other:-none}" >>"$notes"
	note "workload $w ($label) done in ${secs}s"
}

# --- the workloads -----------------------------------------------------------

# bulk SERVER_NS ADDR: one connection from A uploading to a server at ADDR
# for DUR s, then another downloading; sets $spawned to the server's pid.
bulk() {
	server "$1" "$w.s" serve -listen "$2"
	local s=$spawned
	client "$ns_a" "$w.c1" tcp -addr "$2" -dur "${DUR}s" -dir up
	finish "$spawned" || return 1
	client "$ns_a" "$w.c2" tcp -addr "$2" -dur "${DUR}s" -dir down
	finish "$spawned" || return 1
	stop "$s" server TERM
	spawned=$s
}

w1() {
	bulk "$ns_b" 192.0.2.2:5001
}

udp_rate=0
w2() {
	server "$ns_b" "$w.s" udprecv -listen 0.0.0.0:5002 -readers 2
	local s=$spawned
	client "$ns_a" "$w.c1" udp -addr 192.0.2.2:5002 -socks 4 -senders 4 -size 64 \
		-rate "$udp_rate" -dur "${UDP_DUR}s"
	finish "$spawned" || return 1
	sleep 0.5
	stop "$s" receiver TERM
	jq -rs --arg w "$w" '"\($w): sender sent \(.[0].sent_pkts) datagrams in \(.[0].seconds * 10 | round / 10) s (\(.[0].sent_pkts / .[0].seconds | round)/s, \(.[0].errors) errors); the receiver in B got \(.[1].recv_pkts)"' \
		"$tmp/$w.c1.json" "$tmp/$w.s.json" >>"$notes"
}

w3() {
	server "$ns_b" "$w.s" serve -listen 192.0.2.2:8000 -size 100000
	local s=$spawned
	# One curl after the other; the loop prints each one's pid, curl its
	# request, header and body sizes.
	# shellcheck disable=SC2016 # the inner shell's variables
	ip netns exec "$ns_a" sh -c '
		for i in $(seq "$1"); do
			curl -sf -m 10 -o /dev/null -w "%{size_request} %{size_header} %{size_download}\n" \
				"$2" >>"$3" & echo $!
			wait $! || { echo "curl $i failed" >&2; exit 1; }
		done' sh "$N_SHORT" http://192.0.2.2:8000/file "$tmp/$w.sizes" >"$tmp/$w.pids" 2>"$tmp/$w.curl.err" &
	local loop=$!
	wait_exit "$loop" 150 || return 1
	wait "$loop" || return 1
	awk '{ s += $1; r += $2 + $3 } END { printf "{\"sent_bytes\":%d,\"recv_bytes\":%d,\"sent_pkts\":0,\"recv_pkts\":0}\n", s, r }' \
		"$tmp/$w.sizes" >"$tmp/$w.c1.json"
	stop "$s" server TERM
}

w4() {
	bulk "$ns_a" 127.0.0.1:5003 || return 1
	# The server is one of the workload's processes in A too.
	echo "$spawned" >>"$tmp/$w.pids"
}

w5() {
	server "$ns_b" "$w.s" serve -listen 192.0.2.2:5005
	local s=$spawned i pids=()
	for i in $(seq 20); do
		client "$ns_a" "$w.c$i" tcp -addr 192.0.2.2:5005 -conns 50 -dur "${DUR}s" -dir both -stagger 20ms
		pids+=("$spawned")
	done
	finish "${pids[@]}" || return 1
	stop "$s" server TERM
	cat "$tmp/$w".c*.json | jq -rs --arg w "$w" \
		'"\($w): \(map(.conns) | add) connections in \(length) processes, \(map(.errors) | add) errors"' >>"$notes"
}

w6() {
	server "$ns_b" "$w.s" udprecv -listen 0.0.0.0:5006 -readers 2
	local s=$spawned i pids=()
	for i in $(seq 10); do
		client "$ns_a" "$w.c$i" udp -addr 192.0.2.2:5006 -socks 1000 -senders 2 -size 100 \
			-rate 2000 -dur 15s
		pids+=("$spawned")
	done
	finish "${pids[@]}" || return 1
	sleep 0.5
	stop "$s" receiver TERM
	cat "$tmp/$w".c*.json | jq -rs --arg w "$w" \
		'"\($w): \(map(.conns) | add) UDP sockets (flows) in \(length) processes"' >>"$notes"
}

w7() {
	server "$ns_b" "$w.s" serve -listen 192.0.2.2:5007
	local s=$spawned i pids=()
	for i in $(seq 4); do
		client "$ns_a" "$w.c$i" tcp -addr 192.0.2.2:5007 -dur "${DUR}s" -dir up
		pids+=("$spawned")
	done
	finish "${pids[@]}" || return 1
	stop "$s" server TERM
}

want() { [[ " $ONLY " == *" $1 "* ]]; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f%%", 100 * a / b; else printf "n/a" }'; }

want 1 && measure 1 veth-a "bulk TCP veth, ${DUR}s up + ${DUR}s down" w1
if want 2; then
	for udp_rate in $UDP_RATES; do
		label="UDP 64 B, rate ${udp_rate}/s"
		[ "$udp_rate" != 0 ] || label="UDP 64 B, rate max"
		measure "2-$udp_rate" veth-a "$label" w2
	done
fi
want 3 && measure 3 veth-a "$N_SHORT short-lived curls" w3
if want 4; then
	measure 4 lo "bulk TCP lo, ${DUR}s up + ${DUR}s down" w4
	# Each end's share of lo's packets (tx bytes: lo counts each packet
	# once as tx and once as rx), per tool.
	tail -n 1 "$tmp/4.pids" >"$tmp/4.server.pids"
	head -n 2 "$tmp/4.pids" >"$tmp/4.client.pids"
	lo_tx=$(awk -F'\t' '$1 == "4" { split($4, c, " "); print c[2] }' "$results")
	{
		printf '4: of lo'"'"'s packets (tx bytes %s): netuse credited' "$lo_tx"
		for end in client server; do
			b=$(nu_credit "$tmp/4.netuse.ndjson" "$tmp/4.$end.pids" | cut -f 1)
			printf ' %s to the %s' "$(pct "$b" "$lo_tx")" "$end"
		done
		printf ', nethogs'
		for end in client server; do
			b=$(nh_credit "$tmp/4.nethogs.out" "$tmp/4.$end.pids" | cut -d ' ' -f 1)
			printf ' %s to the %s' "$(pct "$b" "$lo_tx")" "$end"
		done
		printf ' (nethogs counts every loopback packet as sent by one end)\n'
	} >>"$notes"
fi
want 5 && measure 5 veth-a "1,000 conns in 20 procs, ${DUR}s" w5
want 6 && measure 6 veth-a "10,000 UDP flows, 15s" w6
if want 7; then
	measure 7 veth-a "bulk TCP veth, 4 streams, ${DUR}s" w7
	awk -F'\t' '$1 == "7" { split($4, c, " "); split($8, nu, " "); split($9, nh, " "); gb = (c[1] + c[2]) / 1e9
		printf "7: %.1f GB in %.1f s (%.1f Gbit/s); CPU per GB: netuse %.3f s, nethogs %.3f s\n", gb, $10, gb * 8 / $10, nu[1] / gb, nh[1] / gb }' "$results" >>"$notes"
fi

# --- the table ---------------------------------------------------------------

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo "netuse $netuse_version (--source $SOURCE${ARGS:+ $ARGS}) vs nethogs $nethogs_version, same traffic, same time, in network namespaces"
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem, Linux $(uname -r), $(go version | awk '{ print $3 }'); $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "load average (1, 5, 15 min) at the start: $load0; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo
# Columns: the truth (interface bytes rx+tx and packets, MB = 10^6 bytes;
# generator payload sent/received), then per tool the share of the
# interface's bytes credited to the workload's processes, CPU s, peak RSS.
awk -F'\t' '
	function mb(b) { return sprintf("%.1f", b / 1e6) }
	function share(a, b) { return b > 0 ? sprintf("%.2f%%", 100 * a / b) : "n/a" }
	BEGIN {
		printf "%-4s %-34s %-6s %10s %9s %10s %10s | %-7s %8s %7s %8s %8s\n", "#", "workload", "iface",
			"iface MB", "pkts/s", "sent MB", "recv MB", "tool", "share", "CPU s", "RSS MiB", "drops"
	}
	{
		split($4, c, " "); split($5, g, " "); split($6, nu, " "); split($7, nh, " ")
		split($8, nuu, " "); split($9, nhu, " ")
		bytes = c[1] + c[2]; pkts = c[3] + c[4]
		pps = $10 > 0 ? sprintf("%.0f", (c[4] > c[3] ? c[4] : c[3]) / $10) : "-"
		printf "%-4s %-34s %-6s %10s %9s %10s %10s | %-7s %8s %7s %8.1f %8s\n", $1, $2, $3,
			mb(bytes), pps, mb(g[1]), mb(g[2]), "netuse", share(nu[1], bytes), nuu[1], nuu[2] / 1024, nu[3]
		printf "%-4s %-34s %-6s %10s %9s %10s %10s | %-7s %8s %7s %8.1f %8s\n", "", "", "",
			"", "", "", "", "nethogs", share(nh[1], bytes), nhu[1], nhu[2] / 1024, "n/a"
	}' "$results"
echo
echo "iface MB: rx+tx bytes of the interface in A; pkts/s: its busier direction's packets over the workload's"
echo "seconds; sent/recv MB: payload the workload's processes in A wrote and read. share: bytes a tool"
echo "credited to those processes (by pid) over iface MB; on lo, 100% means both ends got every packet."
echo "drops: netuse's kernel drops (capture records); nethogs does not report drops."
echo
# Details: where the rest went, per tool.
awk -F'\t' '{
	split($4, c, " "); split($6, nu, " "); split($7, nh, " ")
	bytes = c[1] + c[2]
	printf "%s: netuse credited %.0f of %.0f iface bytes, captured %.0f, inferred %.0f, pid 0 %.0f; nethogs credited %.0f, saw %.0f, unknown %.0f, other processes %.0f\n", \
		$1, nu[1], bytes, nu[2], nu[4], nu[5], nh[1], nh[2], nh[3], nh[4]
}' "$results"
cat "$notes"
echo

# --- the targets (issue 20) --------------------------------------------------

# Every workload: netuse's CPU (its programs' kernel time included) at
# most a quarter of nethogs's, 100.00% credited (on lo: to both ends), no
# drops; workload 6's peak RSS at most 40 MiB.
awk -F'\t' '
	{
		split($4, c, " "); split($6, nu, " "); split($7, nh, " "); split($8, nuu, " "); split($9, nhu, " ")
		w = $1; bytes = c[1] + c[2]
		s_nu = bytes > 0 ? 100 * nu[1] / bytes : 0
		s_nh = bytes > 0 ? 100 * nh[1] / bytes : 0
		ratio = nhu[1] > 0 ? nuu[1] / nhu[1] : 0
		ok = (ratio <= 0.25) && (s_nu >= 99.995) && (nu[3] == 0)
		printf "target in %-4s CPU <= 0.25x nethogs, 100.00%%, 0 drops: netuse %.2f s, nethogs %.2f s (%.3fx), %.3f%% (nethogs %.2f%%), %s drops: %s\n", \
			w ":", nuu[1], nhu[1], ratio, s_nu, s_nh, nu[3], (ok ? "MET" : "NOT MET")
		if (w == "6")
			printf "target: netuse peak RSS <= 40 MiB with 10,000 flows: %.1f MiB: %s (nethogs %.1f MiB)\n", nuu[2] / 1024, (nuu[2] <= 40 * 1024 ? "MET" : "NOT MET"), nhu[2] / 1024
	}' "$results"
echo "run took $((SECONDS - start_s))s"
