#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# dmaplane installed as a user installs it, from the release tarball:
#  1. `meson dist` makes the tarball and passes its own check (configured
#     with -Dtest_set=dist: headers, UAPI, version);
#  2. dpkg-buildpackage -b builds the three packages from the unpacked
#     tarball, and lintian reports no error or warning;
#  3. dpkg -i installs them on this machine (root): the dmaplane group, the
#     udev rule, DKMS building and installing dmaplane.ko for the guest's
#     kernel (the newest in /lib/modules), dmaplanectl and its man page;
#  4. consumers build against the installed files, each compiling
#     examples/quickstart/main.cpp unchanged: CMake find_package, pkg-config,
#     and Meson with a wrap of the dist tarball;
#  5. a guest boots with the DKMS-built module and runs the CMake-built
#     quickstart as a non-root member of the dmaplane group (and a
#     non-member is refused);
#  6. dpkg --purge leaves nothing behind: no files, no DKMS tree or
#     module, no group.
#   check_packages.sh SOURCE_ROOT WORKDIR
set -eu
src=$(cd "$1" && pwd)
work=$2
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: installs packages on this machine: run as root"
	exit 77
fi
for tool in dpkg-buildpackage lintian dkms cmake man; do
	command -v $tool >/dev/null || { echo "FAIL: $tool not installed (tools/dev setup installs it)"; exit 1; }
done
for p in dmaplane-dkms libdmaplane-dev dmaplane-tools; do
	if dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -qv "not-installed"; then
		echo "FAIL: $p is already on this machine; this test installs and purges it: dpkg --purge $p first"
		exit 1
	fi
done
version=$(cat "$src/VERSION")
kver=$(ls /lib/modules | sort -V | tail -n 1)
[ -f "/boot/vmlinuz-$kver" ] && [ -d "/lib/modules/$kver/build" ] ||
	{ echo "FAIL: no kernel image and headers for $kver (linux-image-amd64 linux-headers-amd64)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }

purge() {
	dpkg --purge dmaplane-tools libdmaplane-dev dmaplane-dkms >"$work/purge.log" 2>&1
}
installed=0
cleanup() { [ $installed = 0 ] || purge || cat "$work/purge.log"; }
trap cleanup EXIT

# 1. The release tarball, checked by meson dist.
step "meson dist"
if [ -n "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	echo "note: uncommitted changes are not in the tarball (meson dist packs HEAD)"
fi
meson setup "$work/dist-build" "$src" -Dmodule=disabled -Dexamples=disabled \
	-Dbenchmarks=disabled -Dtools=disabled -Dtests=enabled -Dtest_set=dist \
	>"$work/dist-setup.log" 2>&1 || { cat "$work/dist-setup.log"; exit 1; }
meson dist -C "$work/dist-build" --formats xztar --allow-dirty >"$work/dist.log" 2>&1 ||
	{ tail -n 40 "$work/dist.log"; exit 1; }
tarball=$work/dist-build/meson-dist/dmaplane-$version.tar.xz
[ -f "$tarball" ] || { echo "FAIL: no $tarball"; exit 1; }
grep -E '^Ok:|^Fail:' "$work/dist.log" | tr '\n' ' '; echo

# 2. The packages, from the unpacked tarball.
step "dpkg-buildpackage"
mkdir -p "$work/pkg"
tar -C "$work/pkg" -xf "$tarball"
(cd "$work/pkg/dmaplane-$version" && dpkg-buildpackage -b -us -uc) >"$work/buildpackage.log" 2>&1 ||
	{ tail -n 40 "$work/buildpackage.log"; exit 1; }
debs="$work/pkg/dmaplane-dkms_${version}_all.deb $work/pkg/libdmaplane-dev_${version}_all.deb
$work/pkg/dmaplane-tools_${version}_$(dpkg --print-architecture).deb"
step "lintian"
lintian --fail-on error,warning \
	"$work/pkg/dmaplane_${version}_$(dpkg --print-architecture).changes" >"$work/lintian.log" 2>&1 ||
	{ echo "FAIL: lintian:"; cat "$work/lintian.log"; exit 1; }
grep -v '^running with root' "$work/lintian.log" || true

# 3. Installed, and DKMS builds the module for the guest's kernel.
step "dpkg -i, dkms install -k $kver"
installed=1
# shellcheck disable=SC2086
dpkg -i $debs >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
getent group dmaplane >/dev/null || { echo "FAIL: no dmaplane group after install"; exit 1; }
dkms status -m dmaplane -v "$version" | grep -q . || { echo "FAIL: dkms does not know dmaplane/$version"; exit 1; }
# The postinst builds for every kernel when the running one is not
# installed (a container's or chroot's host kernel), else for the running
# and the newest one; install for the guest's kernel if it did not.
if ! dkms status -m dmaplane -v "$version" -k "$kver" | grep -q ": installed"; then
	dkms install -m dmaplane -v "$version" -k "$kver" >"$work/dkms.log" 2>&1 ||
		{ cat "$work/dkms.log"; find /var/lib/dkms/dmaplane -name make.log -exec cat {} +; exit 1; }
fi
ko=/lib/modules/$kver/updates/dkms/dmaplane.ko
[ -f "$ko" ] || ko=$ko.xz
[ -f "$ko" ] || { echo "FAIL: dkms installed no module under /lib/modules/$kver/updates/dkms"; exit 1; }
modinfo -F version "$ko" | grep -qx "$version" || { echo "FAIL: $ko is not version $version"; exit 1; }
modinfo -k "$kver" -n dmaplane 2>/dev/null | grep -q updates/dkms ||
	{ echo "FAIL: modprobe does not resolve dmaplane to the DKMS module"; exit 1; }
dkms status -m dmaplane -v "$version" -k "$kver"
MANWIDTH=100 man dmaplanectl 2>/dev/null | col -bx | grep -q '^       hist' ||
	{ echo "FAIL: man dmaplanectl does not show the installed page"; exit 1; }
[ -f /usr/share/bash-completion/completions/dmaplanectl ] || { echo "FAIL: no completion"; exit 1; }
dmaplanectl --help | grep -q '^commands:' || { echo "FAIL: dmaplanectl --help"; exit 1; }

# 4. Consumers of the installed package, each compiling the quickstart.
step "consumers: CMake, pkg-config, Meson wrap"
mkdir -p "$work/cmake"
cp "$src/examples/quickstart/main.cpp" "$work/cmake/"
cp "$src/tests/consumer/CMakeLists.txt" "$work/cmake/"
cmake -S "$work/cmake" -B "$work/cmake/build" -DWANT_VERSION="${version%.*}" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
grep -q "dmaplane $version: include=/usr/include features=cxx_std_20 options=opts-NOTFOUND libs=libs-NOTFOUND defs=defs-NOTFOUND" \
	"$work/cmake.log" || { echo "FAIL: dmaplane::dmaplane carries more than the include directory and C++20:"; grep 'dmaplane ' "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake/build" >"$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; exit 1; }
quickstart=$work/cmake/build/quickstart
[ -x "$quickstart" ] || { echo "FAIL: CMake built no quickstart"; exit 1; }

# shellcheck disable=SC2046
c++ -std=c++20 $(pkg-config --cflags dmaplane) "$src/examples/quickstart/main.cpp" \
	-o "$work/quickstart-pc" $(pkg-config --libs dmaplane) ||
	{ echo "FAIL: the quickstart does not build with pkg-config"; exit 1; }
[ "$(pkg-config --modversion dmaplane)" = "$version" ] || { echo "FAIL: dmaplane.pc is not $version"; exit 1; }

mkdir -p "$work/wrap/subprojects/packagecache"
cp "$src/examples/quickstart/main.cpp" "$work/wrap/"
cp "$tarball" "$work/wrap/subprojects/packagecache/"
cat >"$work/wrap/meson.build" <<'MESON'
project('consumer', 'cpp', default_options: ['cpp_std=c++20'])
executable('quickstart', 'main.cpp', dependencies: dependency('dmaplane'))
MESON
cat >"$work/wrap/subprojects/dmaplane.wrap" <<WRAP
[wrap-file]
directory = dmaplane-$version
source_url = https://dmaplane.invalid/dmaplane-$version.tar.xz
source_filename = dmaplane-$version.tar.xz
source_hash = $(sha256sum "$tarball" | cut -d' ' -f1)

[provide]
dmaplane = dmaplane_dep
WRAP
# The installed package must not satisfy dependency('dmaplane') here: the
# wrap must (force_fallback_for).
(cd "$work/wrap" && meson setup build --wrap-mode=nodownload \
	--force-fallback-for=dmaplane && meson compile -C build) >"$work/wrap.log" 2>&1 ||
	{ cat "$work/wrap.log"; exit 1; }
grep -q "Subproject dmaplane finished" "$work/wrap.log" || { echo "FAIL: the wrap was not used"; exit 1; }
[ -x "$work/wrap/build/quickstart" ] || { echo "FAIL: the wrap consumer built nothing"; exit 1; }

# 5. The guest: the DKMS-built module, the package's udev rule, quickstart
#    as a member of the group.
step "guest: quickstart as a member of the dmaplane group"
"$src/tools/vmrun" --module "$ko" --file "$quickstart" \
	--file /lib/udev/rules.d/60-dmaplane.rules:/etc/udev/rules.d/60-dmaplane.rules \
	--file "$src/tests/packaging/guest_group.sh:/opt/dmaplane/bin/guest_group.sh" \
	--log-dir "$work/vm" --timeout 300 -- sh /opt/dmaplane/bin/guest_group.sh ||
	{ echo "FAIL: the guest run failed"; exit 1; }

# 6. Purge, and nothing left.
step "dpkg --purge"
purge || { cat "$work/purge.log"; exit 1; }
installed=0
left=
for p in dmaplane-dkms libdmaplane-dev dmaplane-tools; do
	dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -qv "not-installed" && left="$left package:$p"
done
for f in /usr/src/dmaplane-"$version" /var/lib/dkms/dmaplane /etc/modprobe.d/dmaplane.conf \
	/lib/udev/rules.d/60-dmaplane.rules /usr/include/dmaplane /usr/share/cmake/dmaplane \
	/usr/share/pkgconfig/dmaplane.pc /usr/bin/dmaplanectl /usr/share/man/man1/dmaplanectl.1.gz \
	/usr/share/bash-completion/completions/dmaplanectl /usr/share/doc/dmaplane-dkms; do
	[ -e "$f" ] && left="$left $f"
done
left="$left $(find /lib/modules -name 'dmaplane.ko*' 2>/dev/null | tr '\n' ' ')"
grep -l dmaplane /lib/modules/*/modules.dep 2>/dev/null && left="$left modules.dep"
getent group dmaplane >/dev/null && left="$left group:dmaplane"
left=$(echo $left)
[ -z "$left" ] || { echo "FAIL: left behind after purge: $left"; exit 1; }
step "ok: packages built, lintian clean, DKMS module ran in the guest as a group member, 3 consumers, purge left nothing"
