#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Runs inside each of two guests (tools/bench-kv): bench_kv between them, and
# perftest on the same rxe devices in the same boot: ib_write_bw at the
# message sizes of the KV operations (1 MiB: contiguous and coalesced; 64 KiB:
# one block, no coalescing) and ib_send_bw at 1 MiB, at the sender's depth
# (operations in flight), each moving as many bytes as one KV request
# (128 MiB), timed as bench_kv times a request: from the first post to the
# last completion (iteration mode, -n).
#   kv_bench.sh send   guest 0 (169.254.77.1): the prefill side, and
#                      perftest's client (it writes, as prefill does)
#   kv_bench.sh recv   guest 1 (169.254.77.2): the decode side, and
#                      perftest's server
# perftest connects through rdma_cm (-R), as dmaplane does, and runs before
# and after bench_kv (tags ..._after): the tool compares with the mean and
# reports how far the two drifted apart. Every measurement prints
# "TAG: RESULT ..."; bench_kv recv leaves kv-bench.json and kv-layers*.csv
# in /out (the host's OUT/g1). Exit status: bench_kv's.
set -u
SENDER=169.254.77.1 RECEIVER=169.254.77.2
DEPTH=${KV_DEPTH:-32} CREDITS=${KV_CREDITS:-64} PEER_BYTES=${KV_PEER_BYTES:-134217728}
KV_ARGS=${KV_ARGS:-}
PEERS=${KV_PEERS:-"ib_write_bw:1048576 ib_write_bw:65536 ib_send_bw:1048576"}

tagged() { sed "s/^/$1: /"; }
# One perftest run: TOOL SIZE [SERVER]. ib_send_bw waits for events (-e), so
# that it leaves the CPU to rxe as bench_kv does; perftest refuses -e for
# WRITE, so ib_write_bw busy-polls its completion queue.
run_peer() {
	case "$1" in ib_send_bw) events=-e ;; *) events= ;; esac
	"$1" -d rxe0 -R -F --report_gbits $events -t "$DEPTH" -s "$2" -n $(($PEER_BYTES / $2)) ${3:-}
}
# perftest prints a table; keep the line after the header.
perf_bw() { awk '/BW average/ {getline; print "RESULT bytes=" $1 " iters=" $2 " bw_gbps=" $4; exit}'; }
peer_tag() { # TOOL SIZE SUFFIX
	case "$2" in
	1048576) echo "${1}_1m$3" ;;
	65536) echo "${1}_64k$3" ;;
	*) echo "${1}_$2$3" ;;
	esac
}
# The server waits for one client; the client may find it not listening
# yet (the guests do not start or finish their steps together): it tries
# again for a minute. A run that connected is never repeated (its server
# has gone on to the next one); one that reports 0 is left to the tool.
# The writer's number is kept for ib_write_bw, the receiver's (what
# arrived) for ib_send_bw.
peer_server() { # TOOL SIZE TAG
	out=$(run_peer "$1" "$2" 2>&1 | perf_bw)
	if [ "$1" = ib_send_bw ] && [ -n "$out" ]; then
		echo "$out" | tagged "$3"
	fi
}
peer_client() { # TOOL SIZE TAG
	try=0
	while [ $try -lt 30 ]; do
		sleep 2
		out=$(run_peer "$1" "$2" $RECEIVER 2>&1 | perf_bw)
		if [ -n "$out" ]; then
			[ "$1" = ib_write_bw ] && echo "$out" | tagged "$3"
			return 0
		fi
		try=$((try + 1))
	done
	echo "$3: $1 gave no result in $try tries"
}
peers() { # ROLE SUFFIX
	for p in $PEERS; do
		"peer_$1" "${p%%:*}" "${p##*:}" "$(peer_tag "${p%%:*}" "${p##*:}" "$2")"
	done
}

case "${1:-}" in
send)
	peers client ""
	bench_kv send $SENDER --in-flight "$DEPTH" $KV_ARGS
	rc=$?
	peers client _after
	;;
recv)
	peers server ""
	bench_kv recv $SENDER --credits "$CREDITS" --out /out $KV_ARGS
	rc=$?
	peers server _after
	;;
*)
	echo "usage: kv_bench.sh send|recv" >&2
	exit 2
	;;
esac
exit $rc
