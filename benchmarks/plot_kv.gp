# SPDX-License-Identifier: GPL-2.0-only
# Layer-wise streaming of a KV cache (tools/bench-kv runs it on the host):
# per layer, when its compute ended and when its last write completed on
# the peer, streamed (each layer handed over as soon as it is computed) and
# serial (every layer computed first), from the start of the compute:
#
#   gnuplot -e "out='layers.png'; heading='...'; detail='...'; file='kv-layers.csv'" plot_kv.gp
#
# The CSV is bench_kv's: layer,compute_end_ms,handed_ms,arrival_ms,
# serial_compute_end_ms,serial_arrival_ms after a header line.
if (strstrt(GPVAL_TERMINALS, "pngcairo")) { set terminal pngcairo size 960,540 noenhanced } else { set terminal png size 960,540 noenhanced }
set output out
set datafile separator ","
if (!exists("detail")) detail = ""
set title heading."\n".detail
set xlabel "layer"
set ylabel "ms since the start of the compute (sender's clock)"
set yrange [0:*]
set grid
set key below maxrows 2
plot file skip 1 using 1:2 with linespoints pointtype 7 title "streamed: compute ended", \
     file skip 1 using 1:4 with linespoints pointtype 5 title "streamed: on the peer (last write completed)", \
     file skip 1 using 1:5 with lines dashtype 2 title "serial: compute ended", \
     file skip 1 using 1:6 with lines dashtype 3 title "serial: on the peer"
