#!/usr/bin/env bash
# bench/rawcopies.sh: what --source kernel credits when a raw socket reads
# copies of another socket's packets. A pinger (a ping socket) sends 50
# echoes over a veth from namespace nurc-a to nurc-b while a raw ICMP
# socket is open beside it in nurc-a; netuse proc --source kernel on the
# veth. Prints the veth's bytes over the run and each row's. Run as root
# from a clone: sudo bash bench/rawcopies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'ip netns del nurc-a 2>/dev/null; ip netns del nurc-b 2>/dev/null; rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/nu" .
# raw-socket copies in --source kernel: a pinger (ping socket) and a bystander raw ICMP socket in the same namespace
ip netns add nurc-a; ip netns add nurc-b
ip link add nurc-va type veth peer name nurc-vb
ip link set nurc-va netns nurc-a; ip link set nurc-vb netns nurc-b
ip -n nurc-a addr add 198.51.100.1/24 dev nurc-va; ip -n nurc-b addr add 198.51.100.2/24 dev nurc-vb
ip -n nurc-a link set nurc-va up; ip -n nurc-b link set nurc-vb up; ip -n nurc-a link set lo up; ip -n nurc-b link set lo up
ip netns exec nurc-a sysctl -qw net.ipv4.ping_group_range="0 2147483647"
ip netns exec nurc-a python3 -c "
import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
print('ready',flush=True); sys.stdin.read()" < <(sleep 12) > /dev/null &
BY=$!
ip netns exec nurc-a "$tmp/nu" proc --source kernel --iface nurc-va --json -i 1s > "$tmp/rc.ndjson" 2>"$tmp/rc.err" &
NU=$!
sleep 2
read rx0 tx0 < <(ip netns exec nurc-a sh -c 'cat /sys/class/net/nurc-va/statistics/rx_bytes /sys/class/net/nurc-va/statistics/tx_bytes' | tr '\n' ' '; echo)
ip netns exec nurc-a python3 -c "
import socket,struct
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,socket.IPPROTO_ICMP)
s.settimeout(2)
for i in range(50):
    s.sendto(struct.pack('!BBHHH',8,0,0,0,i)+bytes(56),('198.51.100.2',0))
    s.recv(2048)
print('echoes 50')"
sleep 3
read rx1 tx1 < <(ip netns exec nurc-a sh -c 'cat /sys/class/net/nurc-va/statistics/rx_bytes /sys/class/net/nurc-va/statistics/tx_bytes' | tr '\n' ' '; echo)
kill -INT $NU; wait $NU || true
kill $BY 2>/dev/null || true; wait 2>/dev/null || true
echo "veth rx $((rx1-rx0)) tx $((tx1-tx0))"
jq -r 'select(.type=="proc") | [.name, .pid, .reason // "", .rx_bytes, .tx_bytes] | @tsv' "$tmp/rc.ndjson" | awk -F'\t' '{k=$1" "$2" "$3; rx[k]+=$4; tx[k]+=$5} END {for (k in rx) print k, "rx", rx[k], "tx", tx[k]}'
cat "$tmp/rc.err"
