#!/usr/bin/env bash
# bench/reportcost.sh: what one report of `netuse proc --source kernel`
# costs with many live sockets: its CPU per report and its memory, with
# 10,000 and 100,000 UDP sockets all sending (issue 20 asks for both).
#
# What it does: makes two network namespaces of its own joined by a veth
# pair (bench/lib.sh's make_pair), builds netuse and bench/gen, and for
# each count in SOCKS starts a receiver in B and 10 sender processes in A,
# each with SOCKS/10 connected UDP sockets (five processes from each of two
# addresses of A's, for the ports) sending a 100-byte datagram
# every PERIOD seconds each (so a report of 1 s finds about 1/PERIOD of
# them moved, and every one of them live in the counting map). Once every
# socket has sent (WARM s), it starts
#     netuse proc --json --iface veth-a -i 1s --source kernel
# in A, waits for its first report and then WARM s more (start-up is not a
# report), and measures it for SPAN s: CPU (utime+stime of all its threads
# over CLK_TCK, /proc/PID/stat) over the reports it printed in the span,
# VmRSS at the end and VmHWM; and the run time of its eBPF programs over
# the same span (kernel.bpf_stats_enabled on for the run), per packet, apart
# from the reports' cost: the programs run per packet, not per report.
# Nothing is sent outside the two namespaces.
#
# Run as root, from anywhere, on a machine with Go (PATH or /usr/local/go):
#     sudo bench/reportcost.sh
#     sudo SOCKS=10000 SPAN=10 bench/reportcost.sh
# It removes its namespaces, processes and temp dir on exit, also when
# interrupted (KEEP=1 keeps the temp dir). With the defaults it takes about
# 2.5 minutes (plus the build).
set -euo pipefail

SOCKS=${SOCKS:-"10000 100000"} # live sockets per run, a multiple of 10
PERIOD=${PERIOD:-2}            # seconds between a socket's datagrams
WARM=${WARM:-5}
SPAN=${SPAN:-20}
KEEP=${KEEP:-}

. "$(dirname "$0")/lib.sh"
bench_init reportcost.sh nurepcost nurep
need jq:jq

note "building netuse and bench/gen"
build_netuse
(cd "$repo" && go build -o "$tmp/gen" ./bench/gen) || die "go build of bench/gen failed in $repo"
make_pair
# UDP sockets to one receiver each need a local port of their own: two
# more addresses in A, five senders on each, and the whole port range.
ip -n "$ns_a" addr add 192.0.2.11/24 dev veth-a
ip -n "$ns_a" addr add 192.0.2.12/24 dev veth-a
ip netns exec "$ns_a" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"

reports() { grep -c '"type":"capture"' "$1" || true; }
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
at_exit 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"'
sysctl -qw kernel.bpf_stats_enabled=1

hz=$(getconf CLK_TCK)
printf '%s\n' "netuse $netuse_version, proc --source kernel, one report a second; $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ)"
printf '%-8s %-8s %-10s %-12s %-12s %-9s %-9s %s\n' sockets reports "CPU s" "ms a report" "rows/report" "RSS MiB" "peak MiB" "programs"
for n in $SOCKS; do
	[ $((n % 10)) -eq 0 ] || die "SOCKS: $n is not a multiple of 10"
	per=$((n / 10))
	ip netns exec "$ns_b" "$tmp/gen" udprecv -listen 0.0.0.0:5006 -readers 2 >"$tmp/$n.s.json" 2>"$tmp/$n.s.err" &
	srv=$!
	wait_for "$tmp/$n.s.err" '^ready' "$srv" 10 || die "the receiver did not start: $(tail -n 3 "$tmp/$n.s.err")"
	dur=$((WARM * 3 + SPAN + 20))
	senders=()
	for i in $(seq 10); do
		ip netns exec "$ns_a" "$tmp/gen" udp -addr 192.0.2.2:5006 -socks "$per" -senders 2 -size 100 \
			-rate "$(awk -v p="$per" -v t="$PERIOD" 'BEGIN { print p / t }')" -dur "${dur}s" -from "192.0.2.1$(((i - 1) / 5 + 1))" \
			>"$tmp/$n.c$i.json" 2>"$tmp/$n.c$i.err" &
		senders+=($!)
	done
	for i in $(seq 10); do
		wait_for "$tmp/$n.c$i.err" '^ready' "${senders[$((i - 1))]}" 60 || die "sender $i did not start: $(tail -n 3 "$tmp/$n.c$i.err")"
	done
	sleep "$WARM" # every socket has sent: its entry is in the map from the start
	ip netns exec "$ns_a" "$tmp/netuse" proc --json --iface veth-a -i 1s --source kernel \
		>"$tmp/$n.ndjson" 2>"$tmp/$n.err" &
	nu=$!
	wait_for "$tmp/$n.ndjson" '"type":"capture"' "$nu" 60 || die "netuse did not report within 60 s: $(tail -n 3 "$tmp/$n.err")"
	sleep "$WARM"
	r0=$(reports "$tmp/$n.ndjson") t0=$(cpu_ticks "$nu") p0=$(bpf_use "$nu")
	sleep "$SPAN"
	r1=$(reports "$tmp/$n.ndjson") t1=$(cpu_ticks "$nu") p1=$(bpf_use "$nu")
	rss=$(status_kb "$nu" VmRSS) hwm=$(status_kb "$nu" VmHWM)
	rows=$(jq -s '[.[] | select(.type == "proc" and .pid != 0)] | length' "$tmp/$n.ndjson")
	stop "$nu" netuse
	for p in "${senders[@]}"; do stop "$p" sender TERM; done
	stop "$srv" receiver TERM
	read -r pt0 pc0 <<<"$p0"
	read -r pt1 pc1 <<<"$p1"
	awk -v n="$n" -v r=$((r1 - r0)) -v t=$((t1 - t0)) -v hz="$hz" -v rows="$rows" -v all="$r1" \
		-v rss="$rss" -v hwm="$hwm" -v pt="$(awk -v a="$pt0" -v b="$pt1" 'BEGIN { print (b - a) * 1e9 }')" -v pc=$((pc1 - pc0)) 'BEGIN {
		printf "%-8d %-8d %-10.2f %-12.1f %-12.1f %-9.1f %-9.1f %.3f s, %d runs, %.0f ns a run\n",
			n, r, t / hz, (r ? t / hz / r * 1000 : 0), (all ? rows / all : 0), rss / 1024, hwm / 1024,
			pt / 1e9, pc, (pc ? pt / pc : 0)
	}'
	grep -h '"type":"capture"' "$tmp/$n.ndjson" | tail -n 1 | jq -c "{flows, drops, owner_records_lost, attributed_share}" | sed "s/^/$n: last capture record: /"
done
