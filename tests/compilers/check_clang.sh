#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The project's C++ must build warning-free with clang as well as g++ (the
# Meson build itself uses g++ with warning_level=3 and werror). Compiles
# every C++ source of the project with clang++ at the same warning level,
# -Werror, syntax only.
#   check_clang.sh SOURCE_ROOT GENERATED_INCLUDE (<dmaplane/version.hpp>) [CUDA_INCLUDE]
# CUDA_INCLUDE (empty without the CUDA toolkit): the CUDA runtime's headers,
# for the sources with a CUDA part (benchmarks/gpu_tiers.cpp,
# examples/gpu_rdma/main.cpp), which are then compiled twice: with the CUDA
# part (DMAPLANE_HAVE_CUDA) and without it, as a build without the toolkit
# has them.
set -eu
src=$1 gen=$2 cuda=${3:-}
clangxx=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$clangxx" ] || { echo "FAIL: clang++ not installed (apt-get install clang)"; exit 1; }
n=0
for f in $(find "$src/tests" "$src/examples" "$src/benchmarks" "$src/tools" -name '*.cpp' \
		-not -path '*/consumer/*' | sort); do
	extra=
	case "$f" in *no_exceptions*) extra="-fno-exceptions -fno-rtti" ;; esac
	variants=plain
	case "$f" in */gpu_tiers.cpp|*/gpu_rdma/main.cpp)
		[ -z "$cuda" ] || variants="plain cuda" ;;
	esac
	for v in $variants; do
		with=
		[ "$v" = plain ] || with="-isystem $cuda -DDMAPLANE_HAVE_CUDA=1"
		# tests/gpu-standin: the GPU stand-in's interface (gpu_standin.h),
		# which the GPU tests, benchmark and example include; tests/fake-nic:
		# the fake PCI NIC's (fake_nic.h), which the gpu-nic tests include.
		# shellcheck disable=SC2086
		"$clangxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $extra $with \
			-I"$src/include" -I"$gen" -I/usr/include/libdrm -I"$src/tests/gpu-standin" \
			-I"$src/tests/fake-nic" "$f"
		n=$((n + 1))
	done
done
echo "ok: $n C++ sources clean under $("$clangxx" --version | head -n 1)"
