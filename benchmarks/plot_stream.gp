# SPDX-License-Identifier: GPL-2.0-only
# Throughput over time of bench_stream runs, one line per run, with the
# peer's average as a dashed line (tools/bench-stream runs it on the host):
#
#   gnuplot -e "out='a.png'; heading='...'; files='w2.csv w16.csv'; \
#               titles='\"window 2\" \"window 16\"'; peer=0.05; peer_title='ib_write_bw'" \
#           plot_stream.gp
#
# Each CSV is bench_stream's: second,GBps,ops_per_s after a header line.
if (!exists("peer")) peer = -1
if (!exists("peer_title")) peer_title = "peer"
if (strstrt(GPVAL_TERMINALS, "pngcairo")) { set terminal pngcairo size 960,540 noenhanced } else { set terminal png size 960,540 noenhanced }
set output out
set datafile separator ","
set title heading
set xlabel "second of the run (1-s windows)"
set xtics 1
set ylabel "GB/s"
set yrange [0:*]
set grid
set key below
plot for [i = 1:words(files)] word(files, i) skip 1 using 1:2 with linespoints \
	title word(titles, i), \
     (peer >= 0 ? peer : 1/0) with lines dashtype 2 linecolor rgb "black" title peer_title
