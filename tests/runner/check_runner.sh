#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The guest runner's own failure detection, against real guest boots:
#  - a kernel "WARNING:" line in the console fails the run (exit 1) even
#    though the guest command succeeded;
#  - the guest command's exit status comes back;
#  - a guest that does not finish is killed at the timeout (exit 124).
#   check_runner.sh VMRUN MODULE LOGDIR
set -u
vmrun=$1 module=$2 logs=$3
failed=0
expect() {
	want=$1 name=$2
	shift 2
	# Each boot is bounded (a few seconds normally) so that a guest that
	# hangs is reported with its console tail instead of the whole test
	# being killed by meson's timeout.
	"$vmrun" --module "$module" --log-dir "$logs/$name" --quiet --timeout 90 "$@" \
		>"$logs/$name.out" 2>&1
	got=$?
	if [ "$got" = "$want" ]; then
		echo "ok: $name (exit $got)"
	else
		echo "FAIL: $name: runner exited $got, expected $want"
		cat "$logs/$name.out"
		failed=1
	fi
}
mkdir -p "$logs"
expect 1 warning -- 'echo "WARNING: CPU: 0 PID: 1 at runner-self-test" > /dev/kmsg; true'
grep -q "kernel reported a problem" "$logs/warning.out" || { echo "FAIL: no reason given for the WARNING"; failed=1; }
expect 7 status -- 'exit 7'
expect 124 timeout --timeout 20 -- 'sleep 600'
expect 0 clean -- 'test -c /dev/dmaplane'
exit $failed
