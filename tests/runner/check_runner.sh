#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The guest runner's own failure detection, against real guest boots:
#  - a kernel "WARNING:" line in the console fails the run (exit 1) even
#    though the guest command succeeded;
#  - the guest command's exit status comes back;
#  - a guest that does not finish is killed at the timeout (exit 124);
#  - a lockdep report ("INFO: ...") and an IOMMU fault fail a run too;
#  - a kmemleak report naming the module fails a run (faked here by the
#    guest command: Debian's kernel has no kmemleak), one that does not
#    name it does not, and a kmemleak that cannot scan fails it;
#  - --iommu boots with DMAR on and the PCI devices in IOMMU groups;
#  - with the GPU stand-in (STANDIN, when built): --ivshmem and
#    --extra-module load it in one guest and in two, a failing rmmod of it
#    fails the run, and so does its leak report at unload (faked); a test
#    may unload and reload it;
#  - with the fake PCI NIC (FAKENIC, when built): --fake-nic adds the
#    pci-testdev it binds to (fakenic0; without it only fakenicnp0), and
#    its leak report at unload (faked) fails the run.
#   check_runner.sh VMRUN MODULE LOGDIR [STANDIN [FAKENIC]]
set -u
vmrun=$1 module=$2 logs=$3 standin=${4:-} fakenic=${5:-}
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
expect 1 lockdep -- 'echo "INFO: trying to register non-static key." > /dev/kmsg; true'
expect 1 dmar-fault -- 'echo "DMAR: [DMA Write NO_PASID] Request device [00:01.0] fault addr 0xdead000 [fault reason 0x05] PTE Write access is not set" > /dev/kmsg; true'
leak() {
	echo "echo @@DMAPLANE-KMEMLEAK-BEGIN loaded;"
	echo "echo \"unreferenced object 0xffff888003a1c000 (size 64):\";"
	echo "echo \"    [<ffffffffc0012345>] $1+0x45/0x300\";"
	echo "echo @@DMAPLANE-KMEMLEAK-END"
}
expect 1 kmemleak -- "$(leak 'dmaplane_buffer_create [dmaplane]')"
grep -q "kmemleak found 1 object(s) the module leaked" "$logs/kmemleak.out" ||
	{ echo "FAIL: no reason given for the leak"; failed=1; }
expect 0 kmemleak-other -- "$(leak 'kmalloc_trace')"
expect 1 kmemleak-off -- 'echo @@DMAPLANE-KMEMLEAK-FAILED loaded'
expect 0 iommu --iommu -- 'test -L /sys/bus/pci/devices/0000:00:01.0/iommu_group && dmesg | grep -q "DMAR: IOMMU enabled"'
if [ -n "$standin" ]; then
	gpu="--ivshmem 64M --extra-module $standin"
	# shellcheck disable=SC2086
	expect 0 standin $gpu -- 'test -c /dev/dmaplane_gpu_standin && grep -q "^dmaplane_gpu_standin " /proc/modules'
	# shellcheck disable=SC2086
	expect 0 standin-2 --guests 2 $gpu --cmd0 'test -c /dev/dmaplane_gpu_standin' \
		--cmd1 'test -c /dev/dmaplane_gpu_standin'
	# A process still holding the device at the end: rmmod fails.
	# shellcheck disable=SC2086
	expect 1 standin-busy $gpu -- 'sleep 600 3</dev/dmaplane_gpu_standin >/dev/null 2>&1 & true'
	grep -q "rmmod of an --extra-module failed" "$logs/standin-busy.out" ||
		{ echo "FAIL: no reason given for the failed rmmod"; failed=1; }
	# shellcheck disable=SC2086
	expect 1 standin-leak $gpu -- 'echo "dmaplane_gpu_standin: leaked 1 allocations, 0 page tables, 0 DMA mappings, 0 dma-bufs" > /dev/kmsg; true'
	# A test may unload it and load it again (and leave it unloaded).
	# shellcheck disable=SC2086
	expect 0 standin-reload $gpu -- 'rmmod dmaplane_gpu_standin && ! test -e /dev/dmaplane_gpu_standin && insmod /lib/modules/extra/dmaplane_gpu_standin.ko && test -c /dev/dmaplane_gpu_standin && rmmod dmaplane_gpu_standin'
	# Without an ivshmem device it loads and unloads, and has no device.
	expect 0 standin-no-device --extra-module "$standin" -- '! test -e /dev/dmaplane_gpu_standin'
fi
if [ -n "$fakenic" ]; then
	expect 0 fake-nic --fake-nic --extra-module "$fakenic" -- 'test -c /dev/dmaplane_fake_nic && rdma link show fakenic0/1 && rdma link show fakenicnp0/1'
	expect 0 fake-nic-no-device --extra-module "$fakenic" -- '! rdma link show fakenic0/1 2>/dev/null && rdma link show fakenicnp0/1'
	expect 1 fake-nic-leak --fake-nic --extra-module "$fakenic" -- 'echo "dmaplane_fake_nic: leaked 0 PDs, 0 CQs, 0 QPs, 1 MRs, 4 mapped pages" > /dev/kmsg; true'
	grep -q "kernel reported a problem" "$logs/fake-nic-leak.out" ||
		{ echo "FAIL: no reason given for the fake NIC's leak"; failed=1; }
fi
exit $failed
