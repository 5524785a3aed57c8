#!/usr/bin/env bash
# bench/scorecard.sh: netuse proc (both sources) and nethogs on the
# scenarios of picosnitch's public benchmark (github.com/elesiuta/picosnitch,
# bench/: lib/scenarios.py, lib/netlab.sh), and on the cases netuse's own
# issues name: is each scenario's traffic credited, to the byte, to the
# process that moved it?
#
# Its method, as picosnitch's: traffic of known size from generator
# processes that each have a name of their own (bench/scorecard/gen, linked
# under the scenario's name, so /proc/PID/comm is that name), sent over a
# veth pair to a peer network namespace that carries nothing else, where
# nftables counters are the reference. Here the "host" is a namespace of
# its own too, nusc-a-PID (veth-a: 192.0.2.1/24, 2001:db8::1/64), and the
# peer nusc-b-PID (veth-b: .2, ::2); these documentation addresses exist
# only inside the two namespaces, the neighbours are static (no ARP or
# neighbour discovery during a scenario), and nothing captures on the
# machine's own interfaces. The reference is a netdev table on veth-b
# (ingress: what A sent, egress: what A received), IPv4 and IPv6 frames,
# counted as the interface counts them: whole frames, and with TSO/GRO on
# each skb as one (the egress hook's bytes are the frame's; the ingress
# hook's start after the Ethernet header, so it gets 14 bytes a packet
# added). For the loopback scenario, an inet table in A counts what
# leaves lo (each packet once; lo counts L3 bytes).
#
# For each scenario it starts, in A and on veth-a only (lo for s16):
#     netuse proc --source kernel --packet-senders --iface veth-a --json -i 1s
#     netuse proc --source capture --iface veth-a --json -i 1s
#     nethogs -t -v 2 -d 1 -C veth-a    (trace mode, cumulative bytes, TCP+UDP)
# waits until each has reported once, zeroes the counters, runs the
# scenario, waits 3 s (the kernel source reads a closed socket's counts
# 2 s after its close), reads the counters and stops the tools with
# SIGINT. A tool's bytes for a scenario are the rx+tx bytes it credited to
# the scenario's name (netuse: the proc records' name, summed over the
# intervals; nethogs: each process's largest cumulative line, summed over
# the processes of that name); exact means within 1% of the reference.
# Below the table, for each tool not exact on a scenario, where the bytes
# went instead (netuse's pid 0 rows by reason, other names; nethogs's
# other rows).
#
# Run as root, from a clone, on a machine with Go (PATH or /usr/local/go):
#     bash bench/scorecard.sh
#     ONLY="s01 s05a x08" bash bench/scorecard.sh   # some scenarios only
#     KEEP=1 bash bench/scorecard.sh                # keep the raw outputs
# It installs what is missing with apt-get (nethogs, nftables, iproute2,
# jq), and removes its namespaces (with the veth pair and the nftables
# tables in them), processes and temp dir on every exit, also when
# interrupted. About 3.5 minutes on a 2-core VM, plus the first build.
set -euo pipefail

ONLY=${ONLY:-}
KEEP=${KEEP:-}
MIB=1048576
RATE=$((5 * MIB)) # bytes/s of the paced bulk scenarios, as picosnitch's

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init scorecard.sh nuscore nusc
need nethogs:nethogs nft:nftables ip:iproute2 jq:jq stdbuf:coreutils
start_s=$SECONDS

build_netuse
(cd "$repo" && go build -o "$tmp/gen" ./bench/scorecard/gen) || die "go build of bench/scorecard/gen failed in $repo"
nethogs_version=$(nethogs -V 2>&1 | sed -n 's/^ *version *//p' | head -n 1)
mkdir "$tmp/bin"

A4=192.0.2.1 B4=192.0.2.2 A6=2001:db8::1 B6=2001:db8::2

# --- the two namespaces ------------------------------------------------------

# No address autoconfiguration, duplicate address detection or router
# solicitation: IPv6 sends nothing of its own once the addresses are up.
for ns in "$ns_a" "$ns_b"; do
	ip netns add "$ns"
	ip netns exec "$ns" sh -c '
		for c in all default; do
			echo 0 > /proc/sys/net/ipv6/conf/$c/disable_ipv6
			echo 0 > /proc/sys/net/ipv6/conf/$c/accept_dad
			echo 0 > /proc/sys/net/ipv6/conf/$c/accept_ra
			echo 0 > /proc/sys/net/ipv6/conf/$c/router_solicitations
			echo 1 > /proc/sys/net/ipv6/conf/$c/addr_gen_mode
		done
		echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range'
	ip -n "$ns" link set lo up
done
ip -n "$ns_a" link add veth-a type veth peer name veth-b netns "$ns_b"
ip -n "$ns_a" addr add $A4/24 dev veth-a
ip -n "$ns_a" addr add $A6/64 dev veth-a nodad
ip -n "$ns_b" addr add $B4/24 dev veth-b
ip -n "$ns_b" addr add $B6/64 dev veth-b nodad
ip -n "$ns_a" link set veth-a up
ip -n "$ns_b" link set veth-b up
mac_a=$(ip -n "$ns_a" -j link show veth-a | jq -r '.[0].address')
mac_b=$(ip -n "$ns_b" -j link show veth-b | jq -r '.[0].address')
for a in $B4 $B6; do ip -n "$ns_a" neigh replace "$a" lladdr "$mac_b" dev veth-a nud permanent; done
for a in $A4 $A6; do ip -n "$ns_b" neigh replace "$a" lladdr "$mac_a" dev veth-b nud permanent; done

# The reference counters. Protocol 253 is dropped after it is counted, as
# picosnitch does, so that B answers it with no ICMP error of its own.
ip netns exec "$ns_b" nft -f - <<'EOF'
table netdev score {
	counter up { }
	counter down { }
	chain in {
		type filter hook ingress device "veth-b" priority -500; policy accept;
		meta protocol { ip, ip6 } counter name "up"
	}
	chain out {
		type filter hook egress device "veth-b" priority -500; policy accept;
		meta protocol { ip, ip6 } counter name "down"
	}
}
table inet scoredrop {
	chain input {
		type filter hook input priority 0; policy accept;
		meta l4proto 253 drop
	}
}
EOF
ip netns exec "$ns_a" nft -f - <<'EOF'
table inet scorelo {
	counter lo { }
	chain out {
		type filter hook output priority -500; policy accept;
		oif "lo" counter name "lo"
	}
}
EOF

# reference IFACE: "BYTES PACKETS" counted since the last reset, as IFACE
# counts them (see the top).
reference() {
	if [ "$1" = lo ]; then
		ip netns exec "$ns_a" nft -j list counter inet scorelo lo |
			jq -r '[.nftables[] | .counter? // empty] | "\(.[0].bytes) \(.[0].packets)"'
	else
		ip netns exec "$ns_b" nft -j list counters table netdev score |
			jq -r '[.nftables[] | .counter? // empty] | INDEX(.name) as $c
				| "\($c.up.bytes + 14 * $c.up.packets + $c.down.bytes) \($c.up.packets + $c.down.packets)"'
	fi
}
reset_reference() {
	ip netns exec "$ns_b" nft reset counters table netdev score >/dev/null
	ip netns exec "$ns_a" nft reset counters table inet scorelo >/dev/null
}
# iface_bytes NS IFACE: rx+tx bytes of IFACE's own counters, beside the
# reference in the raw outputs.
iface_bytes() {
	# shellcheck disable=SC2016 # $1 is the inner shell's
	ip netns exec "$1" sh -c 'cd /sys/class/net/$1/statistics && echo $(($(cat rx_bytes) + $(cat tx_bytes)))' sh "$2"
}

# --- generators ----------------------------------------------------------------

# gen NS NAME CMD ARGS...: run the generator as NAME in NS, in the
# foreground, its counts appended to $tmp/NAME.json and its stderr to
# $tmp/NAME.err; 1 (and the error noted for the row) if it failed.
gen() {
	local ns=$1 name=$2
	shift 2
	[ -e "$tmp/bin/$name" ] || ln -f "$tmp/gen" "$tmp/bin/$name"
	if ! ip netns exec "$ns" "$tmp/bin/$name" "$@" >>"$tmp/$name.json" 2>>"$tmp/$name.err"; then
		echo "$name $1: $(grep -v '^ready' "$tmp/$name.err" | tail -n 1)" >>"$tmp/$sc.failed"
		return 1
	fi
}
# bg NS NAME CMD ARGS...: gen in the background; sets $bg_pid, and waits
# until it says it is ready (listens or has connected).
bg_pid=""
readies() { cat "$tmp/$1.err" 2>/dev/null | grep -c '^ready' || true; }
bg() {
	local name=$2 lines
	lines=$(readies "$name")
	gen "$@" &
	bg_pid=$!
	local deadline=$((SECONDS + 10))
	until [ "$(readies "$name")" -gt "$lines" ]; do
		if ! kill -0 "$bg_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			echo "$name $3: not ready: $(tail -n 1 "$tmp/$name.err" 2>/dev/null)" >>"$tmp/$sc.failed"
			return 1
		fi
		sleep 0.05
	done
}
# await PID...: wait for background generators; 1 if one failed.
await() {
	local p rc=0
	for p in "$@"; do wait "$p" || rc=1; done
	return $rc
}

sc=setup # the scenario whose failures gen notes
# The peer's servers, for the whole run: TCP on 5001 (both families),
# UDP sinks on 5002, 443 and 53.
bg "$ns_b" peer_tcp tcpserve -listen "[::]:5001" || die "peer TCP server did not start: $(cat "$tmp/peer_tcp.err")"
bg "$ns_b" peer_udp udpsink -listen "[::]:5002,[::]:443,[::]:53" || die "peer UDP sink did not start: $(cat "$tmp/peer_udp.err")"

# --- the scenarios -------------------------------------------------------------
# Each is a function sc_ID that runs its traffic and returns when it is
# over; its processes in A are named NAME (at most 15 bytes, the kernel's
# limit). pre_ID, where there is one, runs before the tools start.

T4=$B4:5001 T6="[$B6]:5001" U4=$B4:5002 U6="[$B6]:5002"
pps() { echo $((RATE / $1)); } # datagrams/s of SIZE bytes at RATE

sc_s01() { gen "$ns_a" "$1" tcp -addr $T4 -dir down -bytes $((8 * MIB)) -rate $RATE; }
sc_s02() { gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((8 * MIB)) -rate $RATE; }
sc_s03() {
	gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((4 * MIB)) -rate $RATE &
	local up=$!
	gen "$ns_a" "$1" tcp -addr $T4 -dir down -bytes $((4 * MIB)) -rate $RATE &
	await $up $!
}
sc_s04() {
	bg "$ns_a" "$1" udpsink -listen $A4:7004 -idle 1s || return 1
	local sink=$bg_pid
	gen "$ns_a" "$1" udp -addr $U4 -bytes $((4 * MIB)) -size 1000 -rate "$(pps 1000)" &
	local up=$!
	gen "$ns_b" peer_udpsend udp -addr $A4:7004 -bytes $((4 * MIB)) -size 1000 -rate "$(pps 1000)"
	await $up $sink
}
sc_s05a() { gen "$ns_a" "$1" ping -addr $B4 -count 1000 -size 1000; }
sc_s05b() { gen "$ns_a" "$1" ping -raw -addr $B4 -count 1000 -size 1000; }
sc_s06() { gen "$ns_a" "$1" udp -addr $B4:443 -bytes $((4 * MIB)) -size 1200 -rate "$(pps 1200)"; }
sc_s07() { gen "$ns_a" "$1" tcp -addr "$T6" -dir down -bytes $((8 * MIB)) -rate $RATE; }
sc_s09() { gen "$ns_a" "$1" udp -addr $B4:53 -bytes $((MIB)) -size 64 -rate 20000; }
sc_s10() { gen "$ns_a" "$1" rawip -addr $B4 -proto 253 -count 4000 -size 1000; }
sc_s11() {
	local i
	for i in $(seq 20); do
		gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((512 * 1024)) || return 1
	done
}
sc_s12() {
	gen "$ns_a" "$1" afpacket -iface veth-a -dstmac "$mac_b" -src $A4 -dst $B4 -dport 5002 -count 4000 -size 1000
}
sc_s13() { gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((8 * MIB)) -io uring; }
sc_s14() { gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((8 * MIB)) -io sendfile; }
sc_s15() { gen "$ns_a" "$1" udp -addr $U4 -bytes $((4 * MIB)) -size 1000 -rate "$(pps 1000)" -mmsg; }
sc_s16() {
	bg "$ns_a" sc16_loopsrv tcpserve -listen 127.0.0.1:7016 -conns 1 || return 1
	local srv=$bg_pid
	gen "$ns_a" "$1" tcp -addr 127.0.0.1:7016 -dir down -bytes $((8 * MIB)) -rate $RATE
	await $srv
}
sc_s18() { gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((256 * 1024)) -rate $((32 * 1024)); }
sc_s19() { gen "$ns_a" "$1" tcp -addr $T4 -dir up -conns 60 -bytes $((64 * 1024)) -rate $((2 * MIB)); }
sc_s20() {
	local i pids=()
	for i in $(seq 30); do
		gen "$ns_a" "$1" tcp -addr $T4 -dir up -bytes $((256 * 1024)) &
		pids+=($!)
	done
	await "${pids[@]}"
}
sc_s21() { gen "$ns_a" "$1" tcp -addr $T4 -dir down -bytes $((8 * MIB)) -io uring; }
sc_s22() { gen "$ns_a" "$1" tcp -addr $T4 -dir down -bytes $((8 * MIB)) -rate $RATE -io splice; }
sc_s23() {
	bg "$ns_a" "$1" udpsink -mmsg -listen $A4:7023 -idle 1s || return 1
	local sink=$bg_pid
	gen "$ns_b" peer_udpsend udp -addr $A4:7023 -bytes $((4 * MIB)) -size 1000 -rate "$(pps 1000)"
	await $sink
}
sc_s24() {
	bg "$ns_a" "$1" udpsink -listen "[$A6]:7024" -idle 1s || return 1
	local sink=$bg_pid
	gen "$ns_b" peer_udpsend udp -addr "[$A6]:7024" -bytes $((4 * MIB)) -size 1000 -rate "$(pps 1000)"
	await $sink
}
# x01, x02: the server side: a server in A, clients in B.
server_side() {
	bg "$ns_a" "$1" tcpserve -listen "$2" -conns 2 || return 1
	local srv=$bg_pid
	gen "$ns_b" peer_tcpc tcp -addr "$2" -dir up -bytes $((4 * MIB)) -rate $RATE &&
		gen "$ns_b" peer_tcpc tcp -addr "$2" -dir down -bytes $((4 * MIB)) -rate $RATE
	await $srv
}
sc_x01() { server_side "$1" $A4:7101; }
sc_x02() { server_side "$1" "[$A6]:7102"; }
# x03..x05: UDP datagrams of 8,000 bytes over a 1,500-byte MTU: IP fragments.
sc_x03() { gen "$ns_a" "$1" udp -addr $U4 -bytes $((4 * MIB)) -size 8000 -rate "$(pps 8000)"; }
sc_x04() { gen "$ns_a" "$1" udp -addr "$U6" -bytes $((4 * MIB)) -size 8000 -rate "$(pps 8000)"; }
sc_x05() {
	bg "$ns_a" "$1" udpsink -listen $A4:7105 -idle 1s || return 1
	local sink=$bg_pid
	gen "$ns_b" peer_udpsend udp -addr $A4:7105 -bytes $((4 * MIB)) -size 8000 -rate "$(pps 8000)"
	await $sink
}
sc_x06() { gen "$ns_a" "$1" fork -addr $T4 -bytes $((4 * MIB)); }
sc_x07() { gen "$ns_a" "$1" thread -addr $T4 -bytes $((4 * MIB)) -name xfer-thread; }
sc_x08() { gen "$ns_a" "$1" exitfast -addr $T4 -udp $U4 -bytes $((2 * MIB)); }
# x09, x10: a server listening before netuse started; it serves two
# downloads, then exits (the case of issue 20).
old_srv=""
pre_x09() {
	bg "$ns_a" "$1" tcpserve -listen $A4:7109 -conns 2 && old_srv=$bg_pid
}
pre_x10() {
	bg "$ns_a" "$1" tcpserve -listen "[$A6]:7110" -conns 2 && old_srv=$bg_pid
}
old_server() {
	[ -n "$old_srv" ] || return 1
	gen "$ns_b" peer_tcpc tcp -addr "$2" -dir down -bytes $((4 * MIB)) -rate $RATE &&
		gen "$ns_b" peer_tcpc tcp -addr "$2" -dir down -bytes $((4 * MIB)) -rate $RATE
	await "$old_srv"
}
sc_x09() { old_server "$1" $A4:7109; }
sc_x10() { old_server "$1" "[$A6]:7110"; }
# x11: a connection established before netuse started, used after.
old_conn=""
pre_x11() {
	bg "$ns_a" "$1" tcp -hold -addr $T4 -dir up -bytes $((4 * MIB)) -rate $RATE && old_conn=$bg_pid
}
sc_x11() {
	[ -n "$old_conn" ] || return 1
	# $old_conn is gen's subshell; the generator is A's process of that name.
	local p
	for p in $(ip netns pids "$ns_a"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" != "$1" ] || kill -USR1 "$p"
	done
	await "$old_conn"
}

# The catalog: ID, name, what it is. s17 (docker) and s08 (SCTP) are
# checked here and said "not run here" when the machine lacks them.
catalog=(
	"s01 sc01_tcpdl TCP bulk download, IPv4 (control), 8 MiB at 5 MiB/s"
	"s02 sc02_tcpul TCP bulk upload, IPv4, 8 MiB at 5 MiB/s"
	"s03 sc03_duplex TCP up + down at once, two processes, 4+4 MiB"
	"s04 sc04_udp UDP up + down at once (sender and receiver in one name), 4+4 MiB"
	"s05a sc05_ping ICMP echo from a ping socket, 1,000 x 1,000 B"
	"s05b sc05_rawicmp ICMP echo from a raw socket, 1,000 x 1,000 B"
	"s06 sc06_udp443 UDP to port 443, 4 MiB of 1,200 B"
	"s07 sc07_tcp6dl TCP bulk download, IPv6, 8 MiB"
	"s08 sc08_sctp SCTP download"
	"s09 sc09_dns UDP to port 53, 1 MiB of 64 B datagrams"
	"s10 sc10_raw253 raw IP socket, protocol 253, 4,000 x 1,000 B"
	"s11 sc11_short 20 short-lived processes, each connect, 512 KiB up, exit"
	"s12 sc12_afpacket AF_PACKET frame injection, 4,000 UDP frames"
	"s13 sc13_uring TCP upload through io_uring, 8 MiB"
	"s14 sc14_sendfile TCP upload with sendfile(), 8 MiB"
	"s15 sc15_sendmmsg UDP upload with sendmmsg(), 4 MiB"
	"s16 sc16_loop TCP download over loopback, 8 MiB (netuse, nethogs on lo)"
	"s17 sc17_docker upload from a docker container"
	"s18 sc18_drip TCP drip upload, 256 KiB at 32 KiB/s"
	"s19 sc19_many 60 small TCP connections in one process, 64 KiB each"
	"s20 sc20_burst 30 processes at once, 256 KiB each"
	"s21 sc21_uringdl TCP download through io_uring, 8 MiB"
	"s22 sc22_splice TCP download with splice(), 8 MiB"
	"s23 sc23_recvmmsg UDP download with recvmmsg(), 4 MiB"
	"s24 sc24_udp6dl UDP download, IPv6, 4 MiB"
	"x01 sc_srv4 TCP server side, IPv4: a client in B uploads, then downloads, 4+4 MiB"
	"x02 sc_srv6 TCP server side, IPv6, 4+4 MiB"
	"x03 sc_frag4 UDP 8,000 B datagrams (fragmented) up, IPv4, 4 MiB"
	"x04 sc_frag6 UDP 8,000 B datagrams (fragmented) up, IPv6, 4 MiB"
	"x05 sc_fragdl4 UDP 8,000 B datagrams (fragmented) down, IPv4, 4 MiB"
	"x06 sc_fork a process forks; the child sends on the parent's connection, 4 MiB"
	"x07 sc_thread a thread of another name sends, 4 MiB"
	"x08 sc_exitfast 100 UDP datagrams, 2 MiB TCP, exit without close"
	"x09 sc_oldsrv4 a server older than netuse, IPv4, two downloads, then exits"
	"x10 sc_oldsrv6 a server older than netuse, IPv6, two downloads, then exits"
	"x11 sc_oldconn a connection older than netuse, 4 MiB up on it"
)

# not_run ID: why this machine cannot run the scenario, or nothing.
not_run() {
	case $1 in
	s08)
		if ip netns exec "$ns_a" "$tmp/gen" sctp >/dev/null 2>"$tmp/sctp.err"; then
			echo "this kernel has SCTP, but the generator has no SCTP transfer yet"
		else
			sed 's/^gen sctp: //' "$tmp/sctp.err"
		fi
		;;
	s17)
		if docker info >/dev/null 2>&1; then
			echo "this script has no docker scenario yet"
		else
			echo "no docker engine on this machine (docker info fails)"
		fi
		;;
	esac
}

# --- the tools -------------------------------------------------------------------

nuk_pid="" nuc_pid="" nh_pid=""
start_tools() {
	local iface=$1 all=()
	ip netns exec "$ns_a" "$tmp/netuse" proc --source kernel --packet-senders --iface "$iface" --json -i 1s \
		>"$tmp/$sc.kernel.ndjson" 2>"$tmp/$sc.kernel.err" &
	nuk_pid=$!
	ip netns exec "$ns_a" "$tmp/netuse" proc --source capture --iface "$iface" --json -i 1s \
		>"$tmp/$sc.capture.ndjson" 2>"$tmp/$sc.capture.err" &
	nuc_pid=$!
	# -a: nethogs refuses loopback without it, even when named.
	[ "$iface" != lo ] || all=(-a)
	ip netns exec "$ns_a" stdbuf -oL nethogs -t -v 2 -d 1 -C "${all[@]}" "$iface" \
		>"$tmp/$sc.nethogs.out" 2>"$tmp/$sc.nethogs.err" &
	nh_pid=$!
	wait_for "$tmp/$sc.kernel.ndjson" '"type":"capture"' "$nuk_pid" 20 ||
		die "netuse --source kernel did not report within 20 s: $(tail -n 3 "$tmp/$sc.kernel.err")"
	wait_for "$tmp/$sc.capture.ndjson" '"type":"capture"' "$nuc_pid" 20 ||
		die "netuse --source capture did not report within 20 s: $(tail -n 3 "$tmp/$sc.capture.err")"
	wait_for "$tmp/$sc.nethogs.out" '^Refreshing:' "$nh_pid" 20 ||
		die "nethogs printed no refresh within 20 s: $(tail -n 3 "$tmp/$sc.nethogs.err")"
}
stop_tools() {
	kill -INT "$nuk_pid" "$nuc_pid" "$nh_pid" 2>/dev/null || true
	stop "$nuk_pid" "netuse --source kernel"
	stop "$nuc_pid" "netuse --source capture"
	stop "$nh_pid" nethogs
}

# nu_bytes NDJSON NAME: rx+tx bytes of the proc records of NAME.
nu_bytes() {
	jq -nR --arg n "$2" '[inputs | fromjson? | select(type == "object" and .type == "proc" and .name == $n)
		| .rx_bytes + .tx_bytes] | add // 0' "$1"
}
# nu_elsewhere NDJSON NAME: the other rows, by reason or name, with bytes.
nu_elsewhere() {
	jq -nrR --arg n "$2" '[inputs | fromjson? | select(type == "object" and .type == "proc" and .name != $n)]
		| group_by(if .pid == 0 then "reason " + .reason else .name end)
		| map("\(if .[0].pid == 0 then "reason " + .[0].reason else .[0].name end) \(map(.rx_bytes + .tx_bytes) | add)")
		| join(", ")' "$1"
}
# nh_bytes OUT NAME: "NAME_BYTES OTHERS". Trace lines are
# PROGRAM/PID/UID<tab>SENT<tab>RECEIVED, cumulative bytes with -v 2; a
# process's total is its largest line. PROGRAM is the command line's
# first word, here the generator's path, whose last element is its name.
nh_bytes() {
	awk -F'\t' -v want="$2" '
		NF == 3 && $1 ~ /\/[0-9]+\/[0-9]+$/ {
			v = $2 + $3
			if (!($1 in total) || v > total[$1]) total[$1] = v
		}
		END {
			for (k in total) {
				prog = k; sub(/\/[0-9]+\/[0-9]+$/, "", prog)
				split(prog, w, " "); base = w[1]; sub(/.*\//, "", base)
				if (base == want) ours += total[k]
				else { other[prog] += total[k] }
			}
			printf "%.0f", ours
			sep = " "
			for (p in other) if (other[p] > 0) { printf "%s%s %.0f", sep, p, other[p]; sep = ", " }
			printf "\n"
		}' "$1"
}

exact() { # TOOL REF: "exact" or "no"
	awk -v t="$1" -v r="$2" 'BEGIN { d = t - r; if (d < 0) d = -d; print (r > 0 && d <= r / 100) ? "exact" : "no" }'
}

# --- the run ---------------------------------------------------------------------

rows=$tmp/rows.tsv
notes=$tmp/notes.txt
: >"$rows"
: >"$notes"
for entry in "${catalog[@]}"; do
	read -r sc name what <<<"$entry"
	if [ -n "$ONLY" ] && [[ " $ONLY " != *" $sc "* ]]; then continue; fi
	why=$(not_run "$sc")
	if [ -n "$why" ]; then
		printf '%s\t%s\t%s\n' "$sc" "$what" "not run here: $why" >>"$rows"
		continue
	fi
	note "$sc: $what"
	iface=veth-a
	[ "$sc" != s16 ] || iface=lo
	: >"$tmp/$sc.failed"
	ln "$tmp/gen" "$tmp/bin/$name" # before its processes start, some at once
	if declare -F "pre_$sc" >/dev/null; then "pre_$sc" "$name" || true; fi
	start_tools "$iface"
	reset_reference
	i0=$(iface_bytes "$ns_b" veth-b)
	t0=$SECONDS
	"sc_$sc" "$name" || true
	secs=$((SECONDS - t0))
	sleep 3
	read -r ref pkts <<<"$(reference "$iface")"
	i1=$(iface_bytes "$ns_b" veth-b)
	stop_tools
	k=$(nu_bytes "$tmp/$sc.kernel.ndjson" "$name")
	c=$(nu_bytes "$tmp/$sc.capture.ndjson" "$name")
	read -r h hother <<<"$(nh_bytes "$tmp/$sc.nethogs.out" "$name")"
	failed=$(paste -sd ';' "$tmp/$sc.failed")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$what" "${failed:+generator failed: $failed}" \
		"$ref" "$pkts" "$k" "$c" "$h" "$((i1 - i0))" "$secs" "$name" >>"$rows"
	for src in kernel capture; do
		v=$k
		[ $src = kernel ] || v=$c
		[ "$(exact "$v" "$ref")" = exact ] ||
			echo "$sc netuse $src: $v to $name; elsewhere: $(nu_elsewhere "$tmp/$sc.$src.ndjson" "$name")" >>"$notes"
	done
	[ "$(exact "$h" "$ref")" = exact ] || echo "$sc nethogs: $h to $name; elsewhere: ${hother:-nothing}" >>"$notes"
done

# --- the report ------------------------------------------------------------------

echo "scorecard: netuse $netuse_version (proc --source kernel --packet-senders, --source capture) and nethogs $nethogs_version"
echo "kernel $(uname -r), $(nproc) CPUs; $(date -u +%FT%TZ); $((SECONDS - start_s)) s"
echo "reference: nftables counters on the peer's veth (lo: in A), bytes as the interface counts them; exact: within 1%"
echo
awk -F'\t' '
	function pct(t, r) { return r > 0 ? sprintf("%.2f%%", 100 * t / r) : "-" }
	function ok(t, r) { d = t - r; if (d < 0) d = -d; return (r > 0 && d <= r / 100) }
	BEGIN {
		printf "| scenario | reference B | netuse kernel B | | netuse capture B | | nethogs B | |\n"
		printf "| --- | ---: | ---: | --- | ---: | --- | ---: | --- |\n"
	}
	NF == 3 { printf "| %s %s | %s | | | | | | |\n", $1, $2, $3; next }
	{
		label = $1 " " $2 ($3 != "" ? " (" $3 ")" : "")
		run++
		k = ok($6, $4); c = ok($7, $4); h = ok($8, $4)
		g = substr($1, 1, 1) # s: picosnitch'"'"'s, x: ours
		n[g]++; nk[g] += k; nc[g] += c; nh[g] += h
		printf "| %s | %d | %d | %s | %d | %s | %d | %s |\n", label, $4,
			$6, (k ? "exact" : "no, " pct($6, $4)),
			$7, (c ? "exact" : "no, " pct($7, $4)),
			$8, (h ? "exact" : "no, " pct($8, $4))
	}
	END {
		printf "\nexact (within 1%%), of the scenarios run: netuse kernel, netuse capture, nethogs\n"
		printf "  picosnitch'"'"'s (s): %d, %d, %d of %d\n", nk["s"], nc["s"], nh["s"], n["s"]
		printf "  ours (x):          %d, %d, %d of %d\n", nk["x"], nc["x"], nh["x"], n["x"]
		printf "  all:               %d, %d, %d of %d\n", nk["s"] + nk["x"], nc["s"] + nc["x"], nh["s"] + nh["x"], run
	}' "$rows"
if [ -s "$notes" ]; then
	echo
	echo "where the bytes went when not exact:"
	sed 's/^/  /' "$notes"
fi
echo
echo "reference beside the peer veth's own counters (rx+tx), per scenario:"
awk -F'\t' 'NF > 3 { printf "  %s: reference %d B in %d packets, veth-b counted %d B, %d s of traffic\n", $1, $4, $5, $9, $10 }' "$rows"
