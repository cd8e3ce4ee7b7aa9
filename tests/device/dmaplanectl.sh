#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# dmaplanectl end to end: every command, as text and as JSON, with its exit
# status and values that must hold (ABI 1, the new feature bits, a histogram
# of exactly the entries run with p50 <= p99 <= max, top's refreshes seeing
# a busy channel, tracepoints streaming while entries run and switched off
# afterwards), and the errors (exit 1, one line naming the cause).
#
#   dmaplanectl.sh                 in the guest: dmaplanectl from PATH on
#                                  /dev/dmaplane, everything
#   dmaplanectl.sh TOOL DEVICE     on the host: TOOL built against the fake
#                                  kernel (tests/unit), DEVICE /dev/zero; the
#                                  module's topology, RDMA devices and
#                                  tracepoints exist only in the guest, so
#                                  topo and trace are left to the guest run
set -u
tool=${1:-dmaplanectl}
host=0
if [ $# -ge 2 ]; then
	host=1
	set -- --device "$2"
else
	set --
fi
failures=0
tmp=${TMPDIR:-/tmp}/dmaplanectl.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# run NAME ARGS...: runs the tool, keeps stdout in $tmp/NAME.out and stderr
# in $tmp/NAME.err, and fails unless it exited 0.
run() {
	name=$1
	shift
	"$tool" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$name: exit $rc: $(cat "$tmp/$name.err")"
		return 1
	fi
	echo "ok: $name"
	return 0
}

# run_fails NAME PATTERN ARGS...: the tool must exit 1 with PATTERN on stderr.
run_fails() {
	name=$1 pattern=$2
	shift 2
	"$tool" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		fail "$name: exit $rc, expected 1"
	elif ! grep -qF -- "$pattern" "$tmp/$name.err"; then
		fail "$name: stderr lacks '$pattern': $(cat "$tmp/$name.err")"
	else
		echo "ok: $name (exit 1: $(head -n 1 "$tmp/$name.err"))"
	fi
}

# has NAME PATTERN: the output of NAME holds PATTERN (fixed string).
has() {
	grep -qF -- "$2" "$tmp/$1.out" || fail "$1: output lacks '$2'"
}

# num KEY FILE: the first number a JSON document gives KEY.
num() {
	grep -o "\"$1\":[0-9]*" "$2" | head -n 1 | cut -d: -f2
}

# A one-line JSON document.
is_json() {
	[ "$(wc -l <"$tmp/$1.out")" -eq 1 ] && head -c 1 "$tmp/$1.out" | grep -q '{' ||
		fail "$1: not one JSON document"
}

# info
if run info "$@" info; then
	has info "abi_version             1"
	has info "histograms"
fi
if run info_json "$@" --json info; then
	is_json info_json
	has info_json '"abi_version":1'
	for f in credits histograms observe busy_poll inet6; do
		has info_json "\"$f\""
	done
	if [ $host = 0 ]; then
		has info_json '"domains"'
		has info_json '"rdma_devices":[{"name":"rxe0"'
		has info_json '"state":"ACTIVE"'
		has info_json '"type":"RoCE v2"'
	fi
fi

# stat
if run stat "$@" stat; then
	has stat "live_contexts"
	has stat "ops_completed"
fi
if run stat_json "$@" stat --json; then
	is_json stat_json
	has stat_json '"live_contexts":'
	has stat_json '"cq_overflows":0'
fi

# hist: exactly the entries run, ordered percentiles, the mapped copy agreeing.
if run hist_json "$@" hist --op nop --count 10000 --json; then
	is_json hist_json
	f=$tmp/hist_json.out
	count=$(num count "$f")
	p50=$(num p50_ns "$f") p99=$(num p99_ns "$f") max=$(num max_ns "$f")
	mapped=$(sed 's/.*"mapped"://' "$f" | grep -o '"count":[0-9]*' | head -n 1 | cut -d: -f2)
	[ "$count" = 10000 ] || fail "hist: count $count, expected 10000"
	[ "$mapped" = 10000 ] || fail "hist: mapped count $mapped, expected 10000"
	# The library's percentiles of the mapped copy are the module's.
	sed 's/.*"mapped"://' "$f" >"$tmp/mapped.json"
	for k in mean_ns p50_ns p90_ns p99_ns p999_ns; do
		[ "$(num $k "$tmp/mapped.json")" = "$(num $k "$f")" ] ||
			fail "hist: $k of the mapped copy $(num $k "$tmp/mapped.json"), module $(num $k "$f")"
	done
	[ "$(num failed "$f")" = 0 ] || fail "hist: entries failed"
	if [ -n "$p50" ] && [ -n "$p99" ] && [ -n "$max" ] &&
		[ "$p50" -le "$p99" ] && [ "$p99" -le "$max" ] && [ "$p50" -gt 0 ]; then
		echo "ok: hist p50 $p50 <= p99 $p99 <= max $max ns"
	else
		fail "hist: p50 '$p50' p99 '$p99' max '$max' out of order"
	fi
	has hist_json '"rows":[{"low_ns":'
fi
for op in copy fill checksum; do
	if run "hist_$op" "$@" hist --op $op --count 2000 --size 65536; then
		has "hist_$op" "hist: 2000 $op entries of 64.0 KiB"
		has "hist_$op" "count 2000"
		has "hist_$op" "p99.9"
		has "hist_$op" "#"
	fi
done

# top: refreshes on their own, and a channel busy in another process.
if run top "$@" top --count 2 --interval 200; then
	[ "$(grep -c '^dmaplane top:' "$tmp/top.out")" = 2 ] || fail "top: not 2 refreshes"
	has top "SUBMIT/s"
fi
if run top_json "$@" top --count 2 --interval 200 --json; then
	is_json top_json
	[ "$(grep -o '"taken_ns":' "$tmp/top_json.out" | wc -l)" = 2 ] ||
		fail "top --json: not 2 refreshes"
	has top_json '"module":{"live_contexts":'
fi

# The rest runs beside a process keeping a channel busy (in the guest: the
# fake kernel of the host run is private to each process).
# Its name (the task name in trace lines) holds a byte that is not UTF-8,
# which trace --json must not pass through.
if [ $host = 0 ]; then
	odd="$tmp/busy$(printf '\377')ctl"
	ln -s "$(command -v "$tool")" "$odd" || fail "no link to $tool"
	"$odd" hist --op nop --count 1000000000 >/dev/null 2>&1 &
	busy=$!
	sleep 1
	if run top_busy top --count 2 --interval 200 --json; then
		has top_busy '"type":"channel"'
		if grep -o '"submitted_per_sec":[0-9.]*' "$tmp/top_busy.out" | grep -qv ':0.000$'; then
			echo "ok: top sees the busy channel"
		else
			fail "top --json: no channel with submissions per second"
		fi
	fi
fi

# trace (the module's tracepoints in tracefs), while entries run.
if [ $host = 0 ]; then
	if run trace_list trace --list; then
		for e in dmaplane_channel_submit dmaplane_channel_complete dmaplane_buffer_alloc \
			dmaplane_rdma_post dmaplane_credit_stall dmaplane_error; do
			has trace_list "$e"
		done
	fi
	run trace_list_json --json trace --list && has trace_list_json '"events":["dmaplane_'
	if run trace trace --duration 2; then
		has trace "dmaplane_channel_submit: "
		has trace "dmaplane_channel_complete: "
	fi
	if run trace_json --json trace --events channel_complete --duration 1; then
		is_json trace_json
		has trace_json '"event":"dmaplane_channel_complete"'
		grep -q '"event":"dmaplane_channel_submit"' "$tmp/trace_json.out" &&
			fail "trace --events channel_complete: other events traced"
		has trace_json 'busy\ufffdctl'
		grep -q "$(printf '\377')" "$tmp/trace_json.out" &&
			fail "trace --json: a byte that is not UTF-8 passed through"
	fi
	# A reader that goes away stops the trace early, and it still cleans up.
	start=$(date +%s)
	"$tool" trace --duration 60 2>"$tmp/trace_head.err" | head -n 3 >"$tmp/trace_head.out"
	took=$(($(date +%s) - start))
	[ "$(wc -l <"$tmp/trace_head.out")" = 3 ] || fail "trace | head: not 3 lines"
	[ "$took" -lt 30 ] && echo "ok: trace | head stops in ${took} s" ||
		fail "trace | head: ran ${took} s after its reader left"
	tracefs=/sys/kernel/tracing
	[ -d $tracefs/events/dmaplane ] || tracefs=/sys/kernel/debug/tracing
	for e in $tracefs/events/dmaplane/*/enable; do
		[ "$(cat "$e")" = 0 ] || fail "trace left $e on"
	done
	run_fails trace_bad_event "no such event: dmaplane_nosuch" trace --events nosuch
	kill "$busy" 2>/dev/null
	wait "$busy" 2>/dev/null
fi

# topo (the module's NUMA view; the guest has nodes 0, 1 and a memoryless 2)
if [ $host = 0 ]; then
	if run topo topo; then
		has topo "numa topology"
		has topo "distances"
	fi
	if run topo_json --json topo; then
		is_json topo_json
		has topo_json '"nodes":[{"node":0'
		has topo_json '"distances":[['
	fi
	if run topo_bench --json topo --bench --size 65536 --iterations 1; then
		has topo_bench '"bandwidth":[{"cpu_node":'
		has topo_bench '"bytes_per_sec":'
	fi
fi

# errors: exit 1 and one line that says why
run_fails no_device "cannot open /nonexistent/dmaplane: No such file or directory" \
	--device /nonexistent/dmaplane info
run_fails bad_command "unknown command frobnicate" "$@" frobnicate
run_fails bad_op "--op: one of nop, copy, fill, checksum" "$@" hist --op bogus
run_fails bad_number "--count: not a number: ten" "$@" hist --count ten
run_fails bad_option "unknown option --nope" "$@" stat --nope
run_fails topo_size_alone "--size and --iterations go with --bench" "$@" topo --size 4096
run_fails top_json_forever "--json needs a --count above 0" "$@" top --json --count 0
"$tool" --help >"$tmp/help.out" 2>&1 && grep -q "stats_view" "$tmp/help.out" ||
	fail "--help: exit status or text"

if [ "$failures" -ne 0 ]; then
	echo "dmaplanectl: $failures failures"
	exit 1
fi
echo "dmaplanectl: all checks passed"
exit 0
