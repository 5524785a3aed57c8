# shellcheck shell=bash
# bench/lib.sh: what the scripts under bench/ share. Sourced, not run:
#     . "$(dirname "$0")/lib.sh"
#     bench_init NAME TMPPREFIX NSPREFIX
# sets $prog (for messages), $repo, $tmp, $ns_a and $ns_b, and a trap that
# ends every process in the two namespaces, deletes them (and the veth pair
# with them) and removes $tmp (kept with KEEP=1) on every exit, also when
# interrupted. Nothing here sends traffic or captures.

die() {
	echo "$prog: $*" >&2
	exit 1
}
note() { echo "$prog: $*" >&2; }

# bench_init NAME TMPPREFIX NSPREFIX: see above. Must run as root.
bench_init() {
	prog=$1
	[ "$(id -u)" -eq 0 ] || die "must be run as root (it creates network namespaces and captures packets)"
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	export PATH="$PATH:/usr/local/go/bin"
	tmp=$(mktemp -d "/tmp/$2.XXXXXX")
	ns_a="$3-a-$$"
	ns_b="$3-b-$$"
	trap cleanup EXIT
	trap 'note "interrupted, cleaning up"; exit 130' INT
	trap 'note "terminated, cleaning up"; exit 143' TERM
}

# need CMD:PACKAGE...: install with apt-get the packages whose command is
# missing; go must be there already.
need() {
	local missing=() p
	for p in "$@"; do
		command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || note "apt-get update failed; trying to install anyway"
		apt-get install -y -qq "${missing[@]}" >/dev/null || die "could not install: ${missing[*]}"
	fi
	command -v go >/dev/null || die "go not found in PATH or /usr/local/go/bin"
}

# Everything a script starts runs in one of its two namespaces, so their
# own pid lists name exactly the processes to end.
kill_ns_procs() {
	local ns=$1 sig=$2 pids
	pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
	# shellcheck disable=SC2086 # one word per pid
	[ -z "$pids" ] || kill "-$sig" $pids 2>/dev/null || true
}
# at_exit CMD: cleanup runs CMD first (one command; the last call wins). A
# trap of the script's own would run under set -e, and a failing command
# in it (as "(exit $rc)" is, on an error) would skip cleanup.
exit_hook=""
at_exit() { exit_hook=$1; }
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -z "$exit_hook" ] || eval "$exit_hook"
	for ns in "$ns_a" "$ns_b"; do
		[ -e "/run/netns/$ns" ] || continue
		kill_ns_procs "$ns" TERM
	done
	sleep 0.3
	for ns in "$ns_a" "$ns_b"; do
		[ -e "/run/netns/$ns" ] || continue
		kill_ns_procs "$ns" KILL
		ip netns del "$ns" 2>/dev/null # takes the veth pair with it
	done
	wait 2>/dev/null
	if [ -n "${KEEP:-}" ]; then
		note "raw outputs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# wait_exit PID SECONDS: wait up to SECONDS for PID to end; 1 if it did not.
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	while alive "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_for FILE PATTERN PID SECONDS: wait until FILE has a line matching
# PATTERN (grep -E); 1 if PID ends or SECONDS pass first.
wait_for() {
	local file=$1 pattern=$2 pid=$3 deadline=$((SECONDS + $4))
	until grep -Eq -- "$pattern" "$file" 2>/dev/null; do
		alive "$pid" && [ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# stop PID NAME [SIG]: SIG (INT), then SIGKILL if it is still there 10 s later.
stop() {
	kill "-${3:-INT}" "$1" 2>/dev/null || true
	if ! wait_exit "$1" 10; then
		note "$2 did not end 10 s after SIG${3:-INT}; killing it"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

# bpf_use PID: "SECONDS RUNS" of the eBPF programs whose fds PID holds
# (each program once, however many fds name it), from their fdinfo.
bpf_use() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '
		/^prog_id:/ { id = $2 }
		/^run_time_ns:/ { ns[id] = $2 }
		/^run_cnt:/ { runs[id] = $2 }
		END { for (i in ns) { t += ns[i]; n += runs[i] }; printf "%.3f %d\n", t / 1e9, n }'
}

# cpu_ticks PID: utime+stime of all of PID's threads, in clock ticks.
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat")
	stat=${stat##*) }
	# shellcheck disable=SC2086 # fields
	set -- $stat
	echo $((${12} + ${13}))
}
# status_kb PID KEY: KEY (VmRSS, VmHWM) of /proc/PID/status, in kB.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# build_netuse: netuse from $repo into $tmp/netuse, static as the README's
# Install builds it (with cgo, libc's pages added 1.5 MiB to its RSS); sets
# $netuse_version to its version and the commit built, with "+changes"
# when the tree differed.
build_netuse() {
	(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/netuse" .) || die "go build of netuse failed in $repo"
	netuse_version=$("$tmp/netuse" --version 2>&1 | head -n 1) || netuse_version="?"
	netuse_version=${netuse_version#netuse }
	local commit
	if commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null); then
		[ -z "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
		netuse_version="$netuse_version, $commit"
	fi
}

# make_pair: the two namespaces joined by a veth pair, 192.0.2.1/24 on
# veth-a in A and 192.0.2.2/24 on veth-b in B (documentation addresses
# that exist only inside them), loopback up, no IPv6 (its neighbour
# discovery would be traffic of no process).
make_pair() {
	ip netns add "$ns_a"
	ip netns add "$ns_b"
	for ns in "$ns_a" "$ns_b"; do
		ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null || true
		ip -n "$ns" link set lo up
	done
	ip -n "$ns_a" link add veth-a type veth peer name veth-b netns "$ns_b"
	ip -n "$ns_a" addr add 192.0.2.1/24 dev veth-a
	ip -n "$ns_b" addr add 192.0.2.2/24 dev veth-b
	ip -n "$ns_a" link set veth-a up
	ip -n "$ns_b" link set veth-b up
}
