#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Two guests (tools/vmrun --guests 2): each has dmaplane loaded and Soft-RoCE
# on eth0. Checks that each guest's rxe device carries the RoCE v2 GID of
# its own IPv4 address, that the peer answers ping over that netdev, and
# that an RC queue pair between the two moves traffic, with each side seeing
# the other's GID. Guest 0 serves, guest 1 connects.
set -u
fail() { echo "rxe_peers: FAIL: $*"; exit 1; }

quickstart || fail "quickstart could not talk to /dev/dmaplane"

# RoCE v2 GID of an IPv4 address: ::ffff:a.b.c.d.
ipv4_gid() {
	echo "$1" | awk -F. '{ printf "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x\n", $1, $2, $3, $4 }'
}
self_gid=$(ipv4_gid "$DMAPLANE_SELF_IP")
gid_index=
for f in /sys/class/infiniband/rxe0/ports/1/gids/*; do
	i=${f##*/}
	[ "$(cat "$f")" = "$self_gid" ] || continue
	type=$(cat /sys/class/infiniband/rxe0/ports/1/gid_attrs/types/"$i" 2>/dev/null)
	[ "$type" = "RoCE v2" ] && gid_index=$i && break
done
[ -n "$gid_index" ] || fail "no RoCE v2 GID $self_gid on rxe0"
echo "rxe0: RoCE v2 GID $self_gid at index $gid_index"

ping -c 3 -W 5 "$DMAPLANE_PEER_IP" >/tmp/ping.log 2>&1 || { cat /tmp/ping.log; fail "no ping reply from $DMAPLANE_PEER_IP"; }
echo "ping $DMAPLANE_PEER_IP: ok"

peer_short="::ffff:$DMAPLANE_PEER_IP"
if [ "$DMAPLANE_GUEST" = 0 ]; then
	ibv_rc_pingpong -d rxe0 -g "$gid_index" -n 50 -s 4096 >/tmp/pp.log 2>&1
	rc=$?
else
	rc=1
	for try in $(seq 1 60); do
		ibv_rc_pingpong -d rxe0 -g "$gid_index" -n 50 -s 4096 "$DMAPLANE_PEER_IP" >/tmp/pp.log 2>&1
		rc=$?
		grep -q "Couldn't connect" /tmp/pp.log || break
		sleep 1
	done
fi
cat /tmp/pp.log
[ "$rc" = 0 ] || fail "ibv_rc_pingpong exited with $rc"
grep -q "remote address:.*GID $peer_short\$" /tmp/pp.log || fail "peer GID $peer_short not seen"
grep -q "50 iters" /tmp/pp.log || fail "not all 50 iterations completed"
echo "rxe_peers: guest $DMAPLANE_GUEST saw peer GID $peer_short, 50 RC round trips: ok"
