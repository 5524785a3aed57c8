#!/usr/bin/env bash
# serve's cost with history on and off: netuse serve (a static build of
# this tree) in a network namespace of its own for SECONDS (default 60)
# each way, while copies of curl named backup and browser download from a
# python3 web server in a second namespace; the CPU time serve used
# (utime + stime, /proc/PID/stat) and its peak RSS (VmHWM). Traffic stays
# inside the two namespaces. Needs root, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
dir=$(mktemp -d /tmp/netuse-history-cost.XXXXXX)
a=nuhc-a b=nuhc-b
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del $a 2>/dev/null || true
	ip netns del $b 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$dir/netuse" .
ip netns add $a
ip netns add $b
ip -n $a link add veth-a type veth peer name veth-b netns $b
ip -n $a addr add 192.0.2.1/24 dev veth-a
ip -n $b addr add 192.0.2.2/24 dev veth-b
for ns in $a $b; do ip -n $ns link set lo up; done
ip -n $a link set veth-a up
ip -n $b link set veth-b up
mkdir -p "$dir/www"
head -c 100000 /dev/urandom > "$dir/www/page"
head -c 1000000 /dev/urandom > "$dir/www/chunk"
ip netns exec $b python3 -m http.server -b 192.0.2.2 -d "$dir/www" 8080 >/dev/null 2>&1 &
for p in backup browser; do cp "$(command -v curl)" "$dir/$p"; done
get() { ip netns exec $a "$dir/$1" -s -o /dev/null "http://192.0.2.2:8080/$2" || true; }
hz=$(getconf CLK_TCK)
for db in off "$dir/history.db"; do
	ip netns exec $a "$dir/netuse" serve --listen 127.0.0.1:0 --db "$db" --interval 1s 2>"$dir/serve.err" &
	pid=$!
	sleep 1
	end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		for i in 1 2 3 4 5; do get browser page; sleep 0.1; done
		get backup chunk
	done
	read -r -a stat < /proc/$pid/stat
	hwm=$(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)
	kill -INT $pid
	wait $pid || true
	echo "--db $db: ${secs} s, CPU $(( (stat[13] + stat[14]) * 1000 / hz )) ms, peak RSS $hwm"
done
ls -l "$dir/history.db"
