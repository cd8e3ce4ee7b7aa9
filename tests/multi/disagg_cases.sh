#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Bad input between two guests (tests/multi, suite vm2, test disagg-bad-input):
#
#   disagg_cases prefill ADDR    on guest 0: one prefill per case, in order
#   disagg_cases decode ADDR     on guest 1: one decode per case, in order
#
# Each case is a prefill serving one link and a decode that must fail with
# a given error (--expect-error: exit 0 only then, and only when the module
# counts no live object after the decode's teardown). Each prefill stops
# listening once it has its link, so the next decode waits for the next
# prefill. Every prefill must end cleanly (status 0) whatever its peer did.
set -eu
role=$1
addr=$2
model="--layers 4 --dim 32 --hidden 32 --heads 4 --kv-heads 2 --seq-len 256"
prompt="--prompt 'a prompt of some forty bytes, in 3 blocks' --tokens 4 --timeout 30"

# prefill options | decode options | the error decode must report
cases='
| --dtype bf16 | refused request 1 (field dtype)
--pool-blocks 2 | | refused request 1 (field capacity_blocks)
| --pool-blocks 1 | the decode pool cannot hold request 1
| --bad-handshake truncated | refused request 0 (field message)
| --bad-handshake absurd | refused request 0 (field message)
| --bad-handshake version | refused request 0 (field message)
--corrupt 1:0 | --integrity | crc32c mismatch in request 1, layer 1, block 1
--inject-imm unknown | | names slot 63 generation 0, which has no request
--inject-imm duplicate | | duplicate operation
--vocab 100 | | refused request 1 (field payload)
--link-timeout 2 | --bad-handshake silent | link: control receive failed
'

n=0
echo "$cases" | while IFS='|' read -r popts dopts expect; do
	[ -n "$popts$dopts$expect" ] || continue
	n=$((n + 1))
	expect=$(echo "$expect" | sed 's/^ *//; s/ *$//')
	if [ "$role" = prefill ]; then
		echo "=== case $n: prefill $popts"
		eval "disagg prefill --listen $addr --links 1 $model $popts"
	else
		echo "=== case $n: decode $dopts, expecting: $expect"
		eval "disagg decode --connect $addr $model $prompt $dopts" \
			"--expect-error \"\$expect\""
	fi
done
echo "$role: every case done"
