#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# GPU memory to GPU memory between two guests (tests/multi, suite vm2, test
# gpu-rdma-2vm), each guest with its own ivshmem BAR and GPU stand-in
# (tests/gpu-standin, test infrastructure):
#
#   gpu_rdma_2vm receiver ADDR    on guest 0
#   gpu_rdma_2vm sender ADDR      on guest 1
#
# 1. examples/gpu_rdma --listen / --connect: 64 KiB, 256 KiB, 1 MiB and
#    4 MiB, twice each, from the sender's GPU memory (filled through its WC
#    mapping) into the receiver's with WRITE_IMM; the receiver checks every
#    byte through its WC mapping and through the stand-in's own mapping.
#    Both must exit 0.
# 2. The same with the sender flipping one byte of round 3 (--corrupt 3):
#    the receiver must name the byte and exit 1, the sender must report the
#    receiver's verdict and exit 1. (A second port: the first receiver may
#    still be tearing down its listener when the sender connects again.)
set -u
role=$1
addr=$2
opts="--size 4194304 --iterations 2"
if [ "$role" = receiver ]; then
	gpu_rdma --listen "$addr" $opts || exit 1
	expect="round 3: byte [0-9]* (inside the written range) read through the WC mapping"
	gpu_rdma --listen "$addr:18518" $opts 2>/tmp/err
else
	gpu_rdma --connect "$addr" $opts || exit 1
	expect="the receiver found round 3's bytes wrong"
	gpu_rdma --connect "$addr:18518" $opts --corrupt 3 2>/tmp/err
fi
rc=$?
cat /tmp/err
if [ $rc -ne 1 ] || ! grep -q "$expect" /tmp/err; then
	echo "gpu_rdma_2vm: $role: round 3 corrupted: status $rc, expected 1 and \"$expect\""
	exit 1
fi
echo "gpu_rdma_2vm: $role: ok (a clean run passed, a corrupted one failed on both sides)"
