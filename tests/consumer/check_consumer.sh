#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# dmaplane as a Meson subproject: dependency('dmaplane') resolves through
# meson.override_dependency, the consumer builds and runs, the subproject
# defines no tests, benchmarks, examples or module target, and pushes no
# compile flags onto the consumer. Then a top-level install provides the
# headers, dmaplane.pc and the CMake package (find_package from DESTDIR).
#   check_consumer.sh SOURCE_ROOT CONSUMER_DIR WORKDIR
set -eu
src=$1 consumer=$2 work=$3
rm -rf "$work"
mkdir -p "$work/proj/subprojects"
cp "$consumer/main.cpp" "$work/proj/"
cp "$consumer/meson.build.in" "$work/proj/meson.build"
ln -s "$src" "$work/proj/subprojects/dmaplane"
cd "$work/proj"
meson setup build >setup.log 2>&1 || { cat setup.log; exit 1; }
meson compile -C build >compile.log 2>&1 || { cat compile.log; exit 1; }
./build/consumer || { echo "FAIL: consumer did not run"; exit 1; }
targets=$(meson introspect --targets build | python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
[ "$targets" = "consumer" ] || { echo "FAIL: subproject added targets: $targets"; exit 1; }
tests=$(meson introspect --tests build | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$tests" = 0 ] || { echo "FAIL: subproject added $tests tests"; exit 1; }
# The consumer's compile line carries the include directory, nothing of ours.
cmd=$(meson introspect --targets build | python3 -c '
import json, sys
t = json.load(sys.stdin)[0]
print(" ".join(t["target_sources"][0]["parameters"]))')
for flag in -Werror -Wconversion -Wshadow -fno-exceptions; do
	case " $cmd " in *" $flag "*) echo "FAIL: dependency pushed $flag"; exit 1;; esac
done
case "$cmd" in *subprojects/dmaplane/include*) ;; *) echo "FAIL: no include directory in: $cmd"; exit 1;; esac
echo "ok: subproject consumer builds, no extra targets, tests or flags"

# Installed headers and pkg-config file from a top-level build.
meson setup "$work/top" "$src" -Dmodule=disabled -Dtests=disabled \
	-Dbenchmarks=disabled -Dexamples=disabled --prefix=/usr >"$work/top.log" 2>&1 ||
	{ cat "$work/top.log"; exit 1; }
DESTDIR="$work/dest" meson install -C "$work/top" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; exit 1; }
pc=$(find "$work/dest" -name dmaplane.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no dmaplane.pc installed"; exit 1; }
for h in dmaplane.hpp result.hpp fd.hpp device.hpp detail/sys.hpp uapi/dmaplane.h; do
	[ -f "$work/dest/usr/include/dmaplane/$h" ] || { echo "FAIL: $h not installed"; exit 1; }
done
echo 'int main() { return 0; }' > "$work/pc.cpp"
PKG_CONFIG_SYSROOT_DIR="$work/dest" PKG_CONFIG_PATH=$(dirname "$pc") \
	sh -c "c++ -std=c++20 \$(pkg-config --cflags dmaplane) -include dmaplane/dmaplane.hpp '$work/pc.cpp' -o '$work/pc'" ||
	{ echo "FAIL: cannot build against the installed pkg-config file"; exit 1; }
echo "ok: installed headers and dmaplane.pc usable"

# The CMake package from the same install, found under DESTDIR (its
# include directory is relative to the config file): the unchanged
# quickstart builds, and the target carries the include directory and C++20
# and nothing else.
[ -f "$work/dest/usr/include/dmaplane/version.hpp" ] || { echo "FAIL: version.hpp not installed"; exit 1; }
mkdir -p "$work/cmake"
cp "$src/examples/quickstart/main.cpp" "$work/cmake/"
cp "$consumer/CMakeLists.txt" "$work/cmake/"
cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$work/dest/usr" \
	>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
grep -q "dmaplane $(cat "$src/VERSION"): include=$work/dest/usr/include features=cxx_std_20 options=opts-NOTFOUND libs=libs-NOTFOUND defs=defs-NOTFOUND" \
	"$work/cmake.log" || { echo "FAIL: dmaplane::dmaplane is not the include directory and C++20 alone:"; grep 'dmaplane ' "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake/build" >"$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; exit 1; }
[ -x "$work/cmake/build/quickstart" ] || { echo "FAIL: no quickstart from CMake"; exit 1; }
# A version the package does not satisfy is refused.
if cmake -S "$work/cmake" -B "$work/cmake/build99" -DCMAKE_PREFIX_PATH="$work/dest/usr" \
	-DWANT_VERSION=99 >"$work/cmake99.log" 2>&1; then
	echo "FAIL: find_package(dmaplane 99) accepted $(cat "$src/VERSION")"; exit 1
fi
echo "ok: CMake find_package(dmaplane) builds the quickstart; version 99 refused"
