#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The project's version is VERSION alone; what repeats it must agree:
# the generated <dmaplane/version.hpp> (macros and string), the top entry of
# debian/changelog, the generated dkms.conf, and the module's modinfo
# "version" when a module was built.
#   check_version.sh SOURCE_ROOT BUILD_ROOT [dmaplane.ko]
set -eu
src=$1 build=$2 ko=${3:-}
v=$(cat "$src/VERSION")
echo "$v" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$' || { echo "FAIL: VERSION is '$v', not MAJOR.MINOR.PATCH"; exit 1; }
major=${v%%.*} rest=${v#*.}
minor=${rest%%.*} patch=${rest#*.}
hpp=$build/include/dmaplane/version.hpp
for want in "DMAPLANE_VERSION_MAJOR $major" "DMAPLANE_VERSION_MINOR $minor" \
		"DMAPLANE_VERSION_PATCH $patch" "DMAPLANE_VERSION_STRING \"$v\""; do
	grep -q "^#define $want\$" "$hpp" || { echo "FAIL: $hpp lacks '#define $want'"; exit 1; }
done
# The macros as a compiler sees them.
printf '#include <dmaplane/version.hpp>\nstatic_assert(DMAPLANE_VERSION == %d);\nint main() { return dmaplane::version_string[0] == 0; }\n' \
	$((major * 10000 + minor * 100 + patch)) > "$build/version_check.cpp"
c++ -std=c++20 -I"$build/include" -fsyntax-only "$build/version_check.cpp" ||
	{ echo "FAIL: DMAPLANE_VERSION is not $((major * 10000 + minor * 100 + patch))"; exit 1; }
deb=$(sed -n '1s/^dmaplane (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ "${deb%%-*}" = "$v" ] || { echo "FAIL: debian/changelog is at $deb, VERSION at $v"; exit 1; }
if [ -f "$build/dkms/dkms.conf" ]; then
	grep -q "^PACKAGE_VERSION=\"$v\"\$" "$build/dkms/dkms.conf" ||
		{ echo "FAIL: dkms.conf's PACKAGE_VERSION is not $v"; exit 1; }
fi
if [ -n "$ko" ]; then
	mv=$(modinfo -F version "$ko")
	[ "$mv" = "$v" ] || { echo "FAIL: $ko has version '$mv', VERSION $v"; exit 1; }
fi
echo "ok: version $v in VERSION, version.hpp, debian/changelog${ko:+, dmaplane.ko}"
