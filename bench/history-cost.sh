#!/usr/bin/env bash
# serve's cost with history on and off: netuse serve (a static build of
# this tree) in a network namespace of its own for SECONDS (default 60)
# each way, while copies of curl named backup and browser download from a
# python3 web server in a second namespace; the CPU time serve used
# (utime + stime, /proc/PID/stat) and its peak RSS (VmHWM). Traffic stays
# inside the two namespaces. Needs root, curl and python3.
set -euo pipefail
secs=${1:-60}
. "$(dirname "$0")/lib.sh"
bench_init history-cost.sh netuse-history-cost nuhc
need curl:curl python3:python3
(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/netuse" .) || die "the build failed in $repo"
make_pair
dir=$tmp a=$ns_a b=$ns_b
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
