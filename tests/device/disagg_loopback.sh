#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# examples/disagg in one guest (the vm suite's examples test): both sides in
# one process over rdma_cm loopback, with a small model.
#  1. two requests at once, with crc32c digests and --verify;
#  2. a llama2.c checkpoint written by `disagg write-checkpoint` and loaded
#     with --checkpoint generates the same tokens as the seeded weights it
#     was written from, with bf16 KV this time, and --json output.
set -eu
model="--layers 4 --dim 32 --hidden 32 --heads 4 --kv-heads 2 --seq-len 256"
disagg --loopback 169.254.77.1 $model --requests 2 --integrity --verify --tokens 6 \
	--prompt 'both sides in one process'
disagg write-checkpoint /tmp/model.bin $model --seed 7
tokens() { sed -n 's/.*"tokens": \[\([0-9, ]*\)\].*/\1/p'; }
a=$(disagg --loopback 169.254.77.1 $model --seed 7 --dtype bf16 --verify --tokens 8 \
	--json --prompt 'from a checkpoint' | tokens)
b=$(disagg --loopback 169.254.77.1 --checkpoint /tmp/model.bin --dtype bf16 --verify \
	--tokens 8 --json --prompt 'from a checkpoint' | tokens)
echo "seeded: [$a]; checkpoint: [$b]"
[ -n "$a" ] && [ "$a" = "$b" ]
echo "disagg loopback: ok"
