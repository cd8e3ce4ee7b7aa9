#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# In the guest (tools/vmrun, busybox init, no udev): what udev does with the
# dmaplane-dkms package's rule, done by hand from the rule's own KERNEL,
# GROUP and MODE; then quickstart as a member of that group (it must run)
# and as a user outside it (it must be refused).
set -eu
rule=/etc/udev/rules.d/60-dmaplane.rules
field() { sed -n "s/.*$1==*\"\([^\"]*\)\".*/\1/p" "$rule" | head -n 1; }
node=$(field KERNEL) group=$(field GROUP) mode=$(field MODE)
echo "rule: KERNEL=$node GROUP=$group MODE=$mode"
[ "$node" = dmaplane ] && [ -n "$group" ] && [ -n "$mode" ] || { echo "FAIL: cannot read $rule"; exit 1; }
# The users and groups addgroup --system and an administrator would make.
cat >/etc/passwd <<PASSWD
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:member:/tmp:/bin/sh
bob:x:1001:1001:outsider:/tmp:/bin/sh
PASSWD
cat >/etc/group <<GROUP
root:x:0:
$group:x:999:alice
alice:x:1000:
bob:x:1001:
GROUP
ls -l /dev/$node
chgrp "$group" /dev/$node
chmod "$mode" /dev/$node
ls -l /dev/$node
su -s /bin/sh alice -c 'id; quickstart' >/tmp/alice.log 2>&1 || { cat /tmp/alice.log; echo "FAIL: quickstart as a group member"; exit 1; }
cat /tmp/alice.log
grep -q "groups=.*($group)" /tmp/alice.log || { echo "FAIL: alice is not in $group"; exit 1; }
grep -q "^dmaplane device /dev/$node (library " /tmp/alice.log || { echo "FAIL: quickstart printed no device"; exit 1; }
if su -s /bin/sh bob -c quickstart >/tmp/bob.log 2>&1; then
	cat /tmp/bob.log; echo "FAIL: a user outside $group opened /dev/$node"; exit 1
fi
grep -q "Permission denied" /tmp/bob.log || { cat /tmp/bob.log; echo "FAIL: bob was refused, but not with EACCES"; exit 1; }
echo "ok: quickstart ran as alice (member of $group), bob was refused: $(cat /tmp/bob.log | head -n 1)"
