#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Runs inside a guest (tools/bench-stream): bench_stream and perftest's
# ib_write_bw on the same rxe device in the same boot. Every measurement
# prints "TAG: RESULT ..."; bench_stream also leaves TAG.csv and TAG.json
# in /out (guest 1: the host's OUT/g1).
#   stream_bench.sh one            loopback: windows 2, 16 and unlimited, the
#                                  depth sweep, ib_write_bw at each depth
#   stream_bench.sh server|client  two guests: windows 16 and unlimited, the
#                                  sweep, ib_write_bw at each depth
# ib_write_bw connects through rdma_cm (-R), as dmaplane does. It runs before
# and after the dmaplane runs it is compared with (tags ..._after_...): the
# tool compares with the mean and reports how far the two drifted apart.
set -u
SIZE=${STREAM_SIZE:-65536} DEPTH=${STREAM_DEPTH:-16}
ONE_SECONDS=${STREAM_SECONDS:-5} TWO_SECONDS=${STREAM_SECONDS_TWO:-10}
SWEEP_SECONDS=${SWEEP_SECONDS:-2} DEPTHS=${SWEEP_DEPTHS:-"1 2 4 8 16 32 64 128"}
SERVER=169.254.77.1

perftest() { ib_write_bw -d rxe0 -R -s "$SIZE" -F --report_gbits "$@"; }
# perftest prints a table; keep the line after the header.
perf_bw() { awk '/BW average/ {getline; print "RESULT bw_gbps=" $4; exit}'; }
tagged() { sed "s/^/$1: /"; }
stream() { # TAG SECONDS WINDOW ROLE
	bench_stream stream "--$4" $SERVER --seconds "$2" --size "$SIZE" --window "$3" \
		--depth "$DEPTH" --out /out --tag "$1" 2>&1 | tagged "$1"
}
sweep() { # TAG ROLE
	bench_stream sweep "--$2" $SERVER --seconds "$SWEEP_SECONDS" --size "$SIZE" --window 0 \
		--depths "$(echo "$DEPTHS" | tr ' ' ,)" --out /out --tag "$1" 2>&1 | tagged "$1"
}
# ib_write_bw at DEPTH for SECONDS as TAG: one side listens, the other connects.
peer_server() { perftest -t "$2" -D "$3" >/dev/null 2>&1; }
peer_client() { sleep 1; perftest -t "$2" -D "$3" $SERVER 2>&1 | perf_bw | tagged "$1"; }
peer_loopback() { peer_server "$@" & peer_client "$@"; wait; }
peer_sweep() { # ROLE TAG
	for d in $DEPTHS; do
		"peer_$1" "${2}_d$d" "$d" "$SWEEP_SECONDS"
	done
}

case "$1" in
one)
	peer_loopback ib_write_bw "$DEPTH" "$ONE_SECONDS"
	for w in 2 16 0; do
		stream loop-w$w "$ONE_SECONDS" $w loopback
	done
	peer_loopback ib_write_bw_after "$DEPTH" "$ONE_SECONDS"
	peer_sweep loopback ib_write_bw
	sweep loop-sweep loopback
	peer_sweep loopback ib_write_bw_after
	;;
server|client)
	"peer_$1" ib_write_bw_2guests "$DEPTH" "$TWO_SECONDS"
	for w in 16 0; do
		stream two-w$w "$TWO_SECONDS" $w "$1"
	done
	"peer_$1" ib_write_bw_2guests_after "$DEPTH" "$TWO_SECONDS"
	peer_sweep "$1" ib_write_bw_2guests
	sweep two-sweep "$1"
	peer_sweep "$1" ib_write_bw_2guests_after
	;;
*)
	echo "usage: stream_bench.sh one|server|client" >&2
	exit 2
	;;
esac
