#!/usr/bin/env bash
# bench/idle.sh: what netuse costs on a quiet machine, as an always-on
# daemon must not: CPU, memory and wakeups of `netuse proc` and
# `netuse serve` with no traffic to count.
#
# What it does: makes a network namespace of its own, nuidle-a-PID, with
# its loopback up and nothing else, builds netuse from this repository, and
# for each command in CMDS runs it inside that namespace for WARM s, then
# measures it for SPAN s:
#     proc    netuse proc --json (stdout to /dev/null), every 1 s
#     serve   netuse serve --listen 127.0.0.1:PORT --db DIR/history.db,
#             not scraped
# Its owner programs are on the cgroup2 root as always (they see the
# machine's sockets, few on a quiet machine); its capture is on the
# namespace's loopback alone, where nothing is sent.
#
# What it reports, per command: CPU time over the span (utime+stime of all
# threads, /proc/PID/stat, over CLK_TCK) and as a share of one core; VmRSS
# at the end and VmHWM (peak since start); the context switches of all its
# threads over the span (voluntary and not, /proc/PID/task/*/status) per
# second, which counts the times it was woken.
#
# Run as root, from anywhere, on a machine with Go (PATH or /usr/local/go):
#     sudo bench/idle.sh
#     sudo SPAN=10 CMDS=proc bench/idle.sh
#     sudo SOURCE=kernel bench/idle.sh
# It removes its namespace, processes and temp dir on exit, also when
# interrupted. With the defaults it takes about 75 s (plus the build).
set -euo pipefail

SPAN=${SPAN:-30}      # seconds measured
WARM=${WARM:-5}       # seconds before measuring: start-up is not idle
CMDS=${CMDS:-"proc serve"}
PORT=${PORT:-9958}
SOURCE=${SOURCE:-capture} # netuse's --source
[[ $SOURCE =~ ^(kernel|capture|auto)$ ]] || { echo "idle.sh: SOURCE must be kernel, capture or auto, not '$SOURCE'" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
bench_init idle.sh nuidle nuidle

note "building netuse"
(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/netuse" .) || die "go build failed"
ip netns add "$ns_a"
ip -n "$ns_a" link set lo up

# threads_switches PID: the context switches of all of PID's threads.
threads_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

hz=$(getconf CLK_TCK)
printf '%s\n' "commit $(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- . || echo '+changes'), kernel $(uname -r), $(nproc) cores, span ${SPAN}s after ${WARM}s, --source $SOURCE"
printf '%-6s %10s %8s %10s %10s %12s\n' cmd cpu_ms core_% rss_MiB hwm_MiB wakeups/s
for cmd in $CMDS; do
	case $cmd in
	proc) args=(proc --json --iface lo --source "$SOURCE") ;;
	serve) args=(serve --listen "127.0.0.1:$PORT" --iface lo --db "$tmp/history.db" --source "$SOURCE") ;;
	*) die "CMDS: no command $cmd; want proc or serve" ;;
	esac
	ip netns exec "$ns_a" "$tmp/netuse" "${args[@]}" >/dev/null 2>"$tmp/$cmd.err" &
	pid=$!
	sleep "$WARM" # start-up: the programs loaded, the first reports made
	alive "$pid" || die "netuse $cmd ended: $(cat "$tmp/$cmd.err")"
	t0=$(cpu_ticks "$pid")
	s0=$(threads_switches "$pid")
	sleep "$SPAN"
	alive "$pid" || die "netuse $cmd ended: $(cat "$tmp/$cmd.err")"
	t1=$(cpu_ticks "$pid")
	s1=$(threads_switches "$pid")
	rss=$(status_kb "$pid" VmRSS)
	hwm=$(status_kb "$pid" VmHWM)
	kill -INT "$pid"
	wait "$pid" || true
	awk -v c="$cmd" -v t=$((t1 - t0)) -v hz="$hz" -v span="$SPAN" -v rss="$rss" -v hwm="$hwm" -v sw=$((s1 - s0)) 'BEGIN {
		ms = t * 1000 / hz
		printf "%-6s %10d %8.2f %10.1f %10.1f %12.1f\n", c, ms, ms / 10 / span, rss / 1024, hwm / 1024, sw / span
	}'
done
