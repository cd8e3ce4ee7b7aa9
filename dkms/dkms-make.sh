#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# DKMS's MAKE for dmaplane.ko (dkms.conf): build BUILDDIR/kernel against
# KDIR, with GPU buffers (kernel/Kbuild: DMAPLANE_NV_P2P=y, the header in
# BUILDDIR/nvidia) when NVIDIA's kernel sources are installed, as
# nvidia-kernel-dkms, nvidia-open-kernel-dkms or NVIDIA's installer put
# them: /usr/src/nvidia-*/nvidia/nv-p2p.h or
# /usr/src/nvidia-*/kernel-open/nvidia/nv-p2p.h (the newest version).
# Without them the module is built without GPU buffers, which then report
# EOPNOTSUPP. DMAPLANE_NVIDIA_SRC searches another directory than /usr/src.
#
#   dkms-make.sh KDIR BUILDDIR
set -eu

kdir=$1
build=$2
where=${DMAPLANE_NVIDIA_SRC:-/usr/src}

header=$(ls -d "$where"/nvidia-*/nvidia/nv-p2p.h \
	"$where"/nvidia-*/kernel-open/nvidia/nv-p2p.h 2>/dev/null | sort -V | tail -n 1)
rm -rf "$build/nvidia"
if [ -n "$header" ]; then
	mkdir -p "$build/nvidia"
	cp "$header" "$build/nvidia/nv-p2p.h"
	echo "dmaplane: GPU buffers, with $header"
	exec make -C "$kdir" M="$build/kernel" DMAPLANE_NV_P2P=y modules
fi
echo "dmaplane: no NVIDIA sources under $where (nv-p2p.h): without GPU buffers"
exec make -C "$kdir" M="$build/kernel" modules
