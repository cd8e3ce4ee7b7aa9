# SPDX-License-Identifier: GPL-2.0-only
# A queue depth sweep of bench_stream: bandwidth and p99 latency against
# depth, the peer's bandwidth at the same depths, and the saturation depth
# (tools/bench-stream runs it on the host):
#
#   gnuplot -e "out='s.png'; heading='...'; file='sweep.csv'; peer_file='peer.csv'; \
#               peer_title='ib_write_bw'; saturation=16" plot_sweep.gp
#
# file is bench_stream's CSV (depth,GBps,ops_per_s,p50_us,p99_us,p999_us,
# stalls,retries); peer_file has depth,GBps. Both start with a header line.
if (!exists("peer_title")) peer_title = "peer"
if (strstrt(GPVAL_TERMINALS, "pngcairo")) { set terminal pngcairo size 960,540 noenhanced } else { set terminal png size 960,540 noenhanced }
set output out
set datafile separator ","
set title heading
set logscale x 2
set xlabel "depth (operations in flight at the sender)"
set ylabel "GB/s"
set yrange [0:*]
set ytics nomirror
set y2label "p99 latency, ENTER to completion (ms)"
set logscale y2
set y2tics
set grid
set key below
if (exists("saturation") && saturation > 0) {
	set arrow from saturation, graph 0 to saturation, graph 1 nohead dashtype 3
	set label sprintf("saturation: depth %d", saturation) at saturation, graph 0.95 right offset -1, 0
}
plot file skip 1 using 1:2 with linespoints title "dmaplane GB/s", \
     (exists("peer_file") ? peer_file : file) skip 1 \
	using 1:(exists("peer_file") ? $2 : 1/0) with linespoints title peer_title." GB/s", \
     file skip 1 using 1:($5 / 1000) axes x1y2 with linespoints dashtype 2 title "dmaplane p99 (ms)"
