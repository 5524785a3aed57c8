#!/usr/bin/env bash
# The README's session of netuse history: serve keeps history in a
# network namespace of its own for SECONDS real seconds (default 300)
# with the tests' clock (TestHistoryServeHelper: 600 times as fast, so
# 300 s are 50 hours), while three programs (copies of curl named
# backup, browser and updates) download from a server in a second
# namespace; then netuse history, as of serve's last minute. Traffic
# stays inside the two namespaces. Needs root, curl and python3.
set -euo pipefail
secs=${1:-300}
. "$(dirname "$0")/lib.sh"
bench_init history-demo.sh netuse-history-demo nuhd
need curl:curl python3:python3 sqlite3:sqlite3
(cd "$repo" && go test -c -o "$tmp/netuse.test" .) || die "the build failed in $repo"
make_pair
dir=$tmp a=$ns_a b=$ns_b
mkdir -p "$dir/www"
head -c 100000 /dev/urandom > "$dir/www/page"
head -c 1000000 /dev/urandom > "$dir/www/chunk"
head -c 10000000 /dev/urandom > "$dir/www/package"
ip netns exec $b python3 -m http.server -b 192.0.2.2 -d "$dir/www" 8080 >/dev/null 2>&1 &
for p in backup browser updates; do cp "$(command -v curl)" "$dir/$p"; done

start=$(date -u +2026-11-28T22:00:00Z)
NETUSE_TEST_HISTORY_CLOCK=$start ip netns exec $a "$dir/netuse.test" -test.run='^TestHistoryServeHelper$' -- \
	serve --listen 127.0.0.1:0 --db "$dir/history.db" --interval 60s 2>"$dir/serve.err" &
serve=$!
sleep 2
end=$((SECONDS + secs))
get() { ip netns exec $a "$dir/$1" -s -o /dev/null "http://192.0.2.2:8080/$2" || true; }
while [ $SECONDS -lt $end ]; do
	for i in 1 2 3 4 5; do get browser page; sleep 0.1; done
	get backup chunk
	[ $((SECONDS % 5)) -eq 0 ] && get updates package
done
kill -INT $serve
wait $serve || true
cat "$dir/serve.err"
now=$(date -u -d "$start + $((secs * 600 + 1200)) seconds" +%Y-%m-%dT%H:%M:%SZ)
hist() {
	echo "\$ netuse history $*"
	NETUSE_TEST_HISTORY_CLOCK=$now "$dir/netuse.test" -test.run='^TestHistoryServeHelper$' -- history --db "$dir/history.db" "$@"
	echo
}
hist --since 24h --by program
hist --since 2026-11-01 --by iface --iface veth-a --every day
hist --since 24h --by program --top 2 --json
echo "\$ sqlite3 -readonly history.db \"SELECT name, sum(rx_bytes + tx_bytes) FROM usage WHERE level = 'day' AND kind = 'app' GROUP BY name ORDER BY 2 DESC\""
sqlite3 -readonly "$dir/history.db" "SELECT name, sum(rx_bytes + tx_bytes) FROM usage WHERE level = 'day' AND kind = 'app' GROUP BY name ORDER BY 2 DESC"
ls -l "$dir/history.db"
