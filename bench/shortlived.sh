#!/usr/bin/env bash
# bench/shortlived.sh: how much of the traffic of many short-lived processes
# netuse and nethogs each credit to the process that moved it, in one run.
#
# What it does: makes two network namespaces of its own joined by a veth
# pair (192.0.2.1/24 in A on veth-a, 192.0.2.2/24 in B on veth-b; these
# documentation addresses exist only inside the namespaces), serves a
# 100,000-byte file from B with python3's http.server, and starts, inside A
# and on veth-a only, both
#     netuse proc --json --iface veth-a -i 1s
#     nethogs -t -v 2 -d 1 veth-a       (trace mode, cumulative bytes)
# Then N curl processes (200 by default) fetch the file one after the other
# in A, and the script records each one's pid. About 3 s after the last,
# both tools get SIGINT. Nothing leaves the two namespaces, and no capture
# runs on the machine's own interfaces.
#
# What it reports, per tool: the bytes it credited to rows named curl whose
# pid is one of the recorded curls, as a share of veth-a's bytes (rx + tx,
# from its interface counters, read before the tools start and after they
# stop) and of the payload (N * 100,000 bytes); netuse's inferred_bytes
# (credited to a curl by the sole-newcomer rule, see README.md) and
# nethogs's "unknown TCP" bytes; and how much each tool saw at all.
#
# Run as root, from anywhere:
#     sudo bench/shortlived.sh
#     sudo N=50 bench/shortlived.sh       # fewer curls
#     sudo KEEP=1 bench/shortlived.sh     # keep the temp dir (raw outputs)
#     sudo NETHOGS=0 bench/shortlived.sh  # netuse alone, for comparison
#     sudo PROTOCOL=HTTP/1.1 bench/shortlived.sh   # see below
# It installs what is missing with apt-get (nethogs, curl, iproute2, jq,
# python3), builds netuse from this repository with `go build`, and removes
# its namespaces, processes and temp dir on exit, also when interrupted.
# A run with N=200 takes well under a minute (plus the first build).
# If nethogs cannot be installed or does not run in a namespace, the script
# still reports netuse's figures and says why nethogs's are missing.
#
# The server speaks HTTP/1.0 by default: it closes each connection first,
# so the curl's socket is gone entirely (no TIME_WAIT on A's side) soon
# after the last byte. With PROTOCOL=HTTP/1.1 (python3 3.11 and later)
# curl closes first and its socket lingers in TIME_WAIT, which changes
# what a tool can still find when it looks the connection up late.
#
# nethogs view mode: -v 2 ("total B"). In trace mode each refresh prints
# every process nethogs knows with its cumulative bytes sent and received
# since it first saw it (total modes never drop a process, and keep the
# bytes of connections that timed out), so the largest value per process
# line is its total. The default -v 0 prints KB/s averaged over a sliding
# 5 s window, which cannot be summed back into bytes; -v 1 and -v 3 are the
# same totals in KB and MB, rounded. nethogs keeps totals in a float and
# prints 6 significant digits, so values of 1,000,000 bytes and more
# (the "unknown TCP" line, say) are rounded to about 1 part in 10^6.
set -euo pipefail

N=${N:-200}
SIZE=100000  # bytes served per request
PORT=8000    # inside namespace B only
KEEP=${KEEP:-}
NETHOGS=${NETHOGS:-1}
PROTOCOL=${PROTOCOL:-HTTP/1.0}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
prog=shortlived
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
bench_init shortlived netuse-shortlived netuse-sl
start_s=$SECONDS

# --- what is needed ----------------------------------------------------------

need curl:curl ip:iproute2 jq:jq python3:python3
nethogs_missing="" # why nethogs's figures are missing, if they are
[ "$NETHOGS" != 0 ] || nethogs_missing="not run (NETHOGS=0)"
if [ -z "$nethogs_missing" ] && ! command -v nethogs >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nethogs >/dev/null ||
		nethogs_missing="nethogs could not be installed (apt-get install -y nethogs failed)"
fi

veth_bytes() {
	ip netns exec "$ns_a" cat /sys/class/net/veth-a/statistics/rx_bytes \
		/sys/class/net/veth-a/statistics/tx_bytes | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# --- build -------------------------------------------------------------------

build_netuse
nethogs_version="-"
if [ -z "$nethogs_missing" ]; then
	nethogs_version=$(nethogs -V 2>&1 | sed -n 's/^ *version *//p' | head -n 1)
fi

# --- two namespaces, a veth pair, a server -----------------------------------

make_pair

mkdir "$tmp/www"
head -c "$SIZE" /dev/urandom >"$tmp/www/file"
url="http://192.0.2.2:$PORT/file"
proto=()
[ "$PROTOCOL" = HTTP/1.0 ] || proto=(--protocol "$PROTOCOL")
ip netns exec "$ns_b" python3 -m http.server --bind 192.0.2.2 --directory "$tmp/www" "${proto[@]}" "$PORT" \
	>"$tmp/server.log" 2>&1 &
server_pid=$!
deadline=$((SECONDS + 15))
until [ "$(ip netns exec "$ns_a" curl -s -m 2 -o /dev/null -w '%{size_download}' "$url" 2>/dev/null)" = "$SIZE" ]; do
	alive "$server_pid" || die "the server in $ns_b ended: $(tail -n 3 "$tmp/server.log")"
	[ "$SECONDS" -lt "$deadline" ] || die "the server in $ns_b did not answer within 15 s"
	sleep 0.2
done

# --- the run -----------------------------------------------------------------

veth0=$(veth_bytes)

ip netns exec "$ns_a" "$tmp/netuse" proc --json --iface veth-a -i 1s \
	>"$tmp/netuse.ndjson" 2>"$tmp/netuse.err" &
netuse_pid=$!
nethogs_pid=""
if [ -z "$nethogs_missing" ]; then
	# stdbuf: line-buffered, so that a refresh is in the file when printed.
	ip netns exec "$ns_a" stdbuf -oL nethogs -t -v 2 -d 1 veth-a \
		>"$tmp/nethogs.out" 2>"$tmp/nethogs.err" &
	nethogs_pid=$!
fi

# Both are ready once they have reported an interval.
wait_for "$tmp/netuse.ndjson" '"type":"capture"' "$netuse_pid" 15 ||
	die "netuse did not start capturing within 15 s: $(tail -n 3 "$tmp/netuse.err")"
if [ -n "$nethogs_pid" ] && ! wait_for "$tmp/nethogs.out" '^Refreshing:' "$nethogs_pid" 15; then
	why=$(tail -n 2 "$tmp/nethogs.err" "$tmp/nethogs.out" 2>/dev/null | grep -v '^==>' | grep . | tr '\n' ' ' || true)
	why=${why% }
	if alive "$nethogs_pid"; then
		nethogs_missing="nethogs printed no refresh within 15 s in the namespace${why:+ ($why)}"
		kill -KILL "$nethogs_pid" 2>/dev/null || true
	else
		nethogs_missing="nethogs ended at once in the namespace: $why"
	fi
	wait "$nethogs_pid" 2>/dev/null || true
	nethogs_pid=""
fi

# One curl after the other; the loop prints each one's pid.
ip netns exec "$ns_a" sh -c '
	for i in $(seq "$1"); do
		curl -sf -m 10 -o /dev/null "$2" & echo $!
		wait $! || { echo "curl $i failed" >&2; exit 1; }
	done' sh "$N" "$url" >"$tmp/curl.pids" 2>"$tmp/curl.err" &
loop_pid=$!
curl_start=$SECONDS
wait_exit "$loop_pid" 150 || die "the $N curls did not finish within 150 s"
wait "$loop_pid" || die "the curl loop failed: $(cat "$tmp/curl.err")"
curl_secs=$((SECONDS - curl_start))
[ "$(wc -l <"$tmp/curl.pids")" -eq "$N" ] || die "recorded $(wc -l <"$tmp/curl.pids") curl pids, not $N"

sleep 3
stop "$netuse_pid" netuse
[ -z "$nethogs_pid" ] || stop "$nethogs_pid" nethogs
veth1=$(veth_bytes)

# --- the figures -------------------------------------------------------------

veth=$((veth1 - veth0))
payload=$((N * SIZE))

# netuse: curl rows of recorded pids; what it captured, inferred, dropped;
# its pid-0 rows by reason.
read -r nu_curl nu_rows nu_stray nu_seen nu_inferred nu_drops nu_unattr < <(
	jq -nrR --slurpfile pids "$tmp/curl.pids" '
		($pids | map({key: tostring, value: true}) | from_entries) as $ours
		| [inputs | fromjson? | select(type == "object")] as $r
		| ($r | map(select(.type == "proc"))) as $p
		| ($r | map(select(.type == "capture"))) as $c
		| ($p | map(select(.name == "curl" and $ours[.pid | tostring]))) as $curl
		| def bytes: map(.rx_bytes + .tx_bytes) | add // 0;
		[ ($curl | bytes), ($curl | map(.pid) | unique | length),
		  ($p | map(select(.name == "curl" and ($ours[.pid | tostring] | not))) | bytes),
		  ($c | bytes), ($c | map(.inferred_bytes // 0) | add // 0),
		  ($c | map(.drops // 0) | add // 0), ($p | map(select(.pid == 0)) | bytes) ]
		| @tsv' "$tmp/netuse.ndjson"
) || die "could not read netuse's output ($tmp/netuse.ndjson)"
nu_reasons=$(jq -nrR '[inputs | fromjson? | select(type == "object" and .type == "proc" and .pid == 0)]
	| group_by(.reason) | map("\(.[0].reason) \(map(.rx_bytes + .tx_bytes) | add)") | join(", ")' \
	"$tmp/netuse.ndjson")

# nethogs: trace lines are NAME/PID/UID<tab>SENT<tab>RECEIVED, cumulative
# bytes with -v 2; a process's total is its largest line. Lines of pid 0
# named after a connection (192.0.2.1:PORT-192.0.2.2:PORT) are sockets
# nethogs found but no process for.
nh_curl=0 nh_rows=0 nh_stray=0 nh_unknown=0 nh_other=0 nh_seen=0
if [ -z "$nethogs_missing" ]; then
	read -r nh_curl nh_rows nh_stray nh_unknown nh_other nh_seen < <(
		awk -F'\t' -v pidfile="$tmp/curl.pids" '
			BEGIN { while ((getline p < pidfile) > 0) ours[p] = 1 }
			NF == 3 && $1 ~ /\/[0-9]+\/[0-9]+$/ {
				v = $2 + $3
				if (!($1 in total) || v > total[$1]) total[$1] = v
			}
			END {
				for (k in total) {
					name = k; sub(/\/[0-9]+\/[0-9]+$/, "", name)
					pid = k; sub(/\/[0-9]+$/, "", pid); sub(/.*\//, "", pid)
					base = name; sub(/.*\//, "", base)
					seen += total[k]
					if (base == "curl" && (pid in ours)) { curl += total[k]; rows++ }
					else if (base == "curl") stray += total[k]
					else if (name == "unknown TCP") unknown += total[k]
					else other += total[k]
				}
				printf "%.0f %d %.0f %.0f %.0f %.0f\n", curl, rows, stray, unknown, other, seen
			}' "$tmp/nethogs.out"
	) || die "could not read nethogs's output ($tmp/nethogs.out)"
	if [ "$nh_seen" = 0 ] && [ "$veth" -gt "$payload" ]; then
		nethogs_missing="nethogs ran but reported no traffic at all on veth-a (see its output with KEEP=1)"
	fi
fi

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f%%", 100 * a / b; else printf "n/a" }'; }
row() { printf '%-24s %12s %9s %11s %12s\n' "$@"; }

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "short-lived processes: $N curls, one after the other, each fetching $SIZE bytes ($PROTOCOL) over a veth pair"
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "veth-a bytes (rx+tx): $veth; payload: $payload; curls took ${curl_secs}s"
echo
row "" "bytes" "of veth" "of payload" "saw of veth"
row "netuse: curl rows" "$nu_curl" "$(pct "$nu_curl" "$veth")" "$(pct "$nu_curl" "$payload")" "$(pct "$nu_seen" "$veth")"
row "  of which inferred" "$nu_inferred" "$(pct "$nu_inferred" "$veth")" "$(pct "$nu_inferred" "$payload")" ""
row "  no process (pid 0)" "$nu_unattr" "$(pct "$nu_unattr" "$veth")" "" ""
if [ -z "$nethogs_missing" ]; then
	row "nethogs: curl rows" "$nh_curl" "$(pct "$nh_curl" "$veth")" "$(pct "$nh_curl" "$payload")" "$(pct "$nh_seen" "$veth")"
	row "  unknown TCP" "$nh_unknown" "$(pct "$nh_unknown" "$veth")" "" ""
	row "  socket, no process" "$nh_other" "$(pct "$nh_other" "$veth")" "" ""
fi
echo
echo "netuse $netuse_version: $nu_rows of $N curls have a row; kernel drops $nu_drops; pid 0 by reason: ${nu_reasons:-none}"
[ "$nu_stray" = 0 ] || echo "netuse: $nu_stray bytes in curl rows whose pid is none of the recorded curls (not counted above)"
if [ -z "$nethogs_missing" ]; then
	echo "nethogs $nethogs_version (-t -v 2 -d 1, cumulative bytes): $nh_rows of $N curls have a row"
	[ "$nh_stray" = 0 ] || echo "nethogs: $nh_stray bytes in curl rows whose pid is none of the recorded curls (not counted above)"
else
	echo "nethogs: no figures: $nethogs_missing"
fi
echo "run took $((SECONDS - start_s))s"
