#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Runs inside a guest (tools/bench-rdma): perftest and bench_rdma on the same
# rxe device in the same boot. Every measurement prints "TAG: RESULT ...".
#   rdma_bench.sh one            loopback bandwidth, latency, registration
#   rdma_bench.sh server|client  two guests: bandwidth between them
set -u
SIZE=65536 DEPTH=16 BW_ITERS=${BW_ITERS:-3000} LAT_ITERS=${LAT_ITERS:-2000}
SERVER=169.254.77.1

gid_index() {
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
		$(echo "$DMAPLANE_SELF_IP" | tr . ' '))
	for f in /sys/class/infiniband/rxe0/ports/1/gids/*; do
		i=${f##*/}
		[ "$(cat "$f")" = "$want" ] || continue
		[ "$(cat /sys/class/infiniband/rxe0/ports/1/gid_attrs/types/$i)" = "RoCE v2" ] &&
			echo "$i" && return
	done
}
GID=$(gid_index)

# perftest prints a table; keep the line after the header.
perf_bw() { awk '/BW average/ {getline; print "RESULT bw_gbps=" $4; exit}'; }
perf_lat() { awk '/t_typical/ {getline; print "RESULT lat_p50_us=" $5 " lat_p99_us=" $8; exit}'; }

case "$1" in
one)
	ib_write_bw -d rxe0 -x "$GID" -s $SIZE -t $DEPTH -n $BW_ITERS -F --report_gbits >/dev/null 2>&1 &
	sleep 1
	ib_write_bw -d rxe0 -x "$GID" -s $SIZE -t $DEPTH -n $BW_ITERS -F --report_gbits $SERVER 2>&1 |
		perf_bw | sed 's/^/ib_write_bw: /'
	wait
	bench_rdma bw $SERVER $SIZE $DEPTH $BW_ITERS | sed 's/^/dmaplane_write_bw: /'
	# Latency is noisy here: alternating rounds, medians taken by bench-rdma.
	for _ in $(seq ${LAT_ROUNDS:-3}); do
		ib_write_lat -d rxe0 -x "$GID" -s 8 -n $LAT_ITERS -F >/dev/null 2>&1 &
		sleep 1
		ib_write_lat -d rxe0 -x "$GID" -s 8 -n $LAT_ITERS -F $SERVER 2>&1 |
			perf_lat | sed 's/^/ib_write_lat: /'
		wait
		bench_rdma lat $SERVER 8 $LAT_ITERS poll | sed 's/^/dmaplane_write_imm_lat: /'
		bench_rdma lat $SERVER 8 $LAT_ITERS spin | sed 's/^/dmaplane_write_imm_lat_spin: /'
	done
	bench_rdma reg 1048576 20 | sed 's/^/reg_1MiB: /'
	bench_rdma overhead $SERVER ${OVERHEAD_ROUNDS:-7} | sed 's/^/observe_overhead: /'
	bench_rdma reg 268435456 3 | sed 's/^/reg_256MiB: /'
	;;
server)
	ib_write_bw -d rxe0 -x "$GID" -s $SIZE -t $DEPTH -n $BW_ITERS -F --report_gbits >/dev/null 2>&1
	bench_rdma bw-server $SERVER $SIZE
	;;
client)
	sleep 2
	ib_write_bw -d rxe0 -x "$GID" -s $SIZE -t $DEPTH -n $BW_ITERS -F --report_gbits $SERVER 2>&1 |
		perf_bw | sed 's/^/ib_write_bw_2guests: /'
	sleep 1
	bench_rdma bw-client $SERVER $SIZE $DEPTH $BW_ITERS | sed 's/^/dmaplane_write_bw_2guests: /'
	;;
esac
