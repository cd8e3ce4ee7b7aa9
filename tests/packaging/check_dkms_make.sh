#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# DKMS's make script (dkms/dkms-make.sh) with NVIDIA's kernel sources
# installed (faked under WORK/src: two versions, each an nv-p2p.h): it
# stages the newest version's header and builds dmaplane.ko with GPU
# buffers (-DDMAPLANE_HAVE_NV_P2P). Without them (no /usr/src/nvidia-* on
# the build machines) the packaging test's DKMS build covers.
#   check_dkms_make.sh SRCROOT WORK NV_P2P_H [KDIR]
set -eu
src=$1 work=$2 header=$3
kdir=${4:-}
[ -n "$kdir" ] || kdir=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)

rm -rf "$work"
mkdir -p "$work/build/include/dmaplane" "$work/src/nvidia-9.1/nvidia" \
	"$work/src/nvidia-560.35/kernel-open/nvidia"
# The DKMS source tree's layout (dkms/meson.build).
cp -r "$src/kernel" "$work/build/kernel"
cp -r "$src/include/dmaplane/uapi" "$work/build/include/dmaplane/"
cp "$src/VERSION" "$src/dkms/dkms-make.sh" "$work/build/"
echo "#error the older NVIDIA version was chosen" >"$work/src/nvidia-9.1/nvidia/nv-p2p.h"
cp "$header" "$work/src/nvidia-560.35/kernel-open/nvidia/nv-p2p.h"

DMAPLANE_NVIDIA_SRC=$work/src sh "$work/build/dkms-make.sh" "$kdir" "$work/build" \
	>"$work/make.log" 2>&1 || { cat "$work/make.log"; exit 1; }
grep -q "GPU buffers, with $work/src/nvidia-560.35/kernel-open/nvidia/nv-p2p.h" \
	"$work/make.log" || { echo "FAIL: it did not say which header"; cat "$work/make.log"; exit 1; }
cmp "$header" "$work/build/nvidia/nv-p2p.h" || { echo "FAIL: not the newest header"; exit 1; }
[ -f "$work/build/kernel/dmaplane.ko" ] || { echo "FAIL: no dmaplane.ko"; exit 1; }
grep -q -- "-DDMAPLANE_HAVE_NV_P2P" "$work/build/kernel/.main.o.cmd" ||
	{ echo "FAIL: built without DMAPLANE_HAVE_NV_P2P"; exit 1; }
echo "ok: dkms-make.sh built dmaplane.ko with GPU buffers from the newest NVIDIA sources"
