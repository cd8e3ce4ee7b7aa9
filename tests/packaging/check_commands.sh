#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# dmaplanectl's commands, the same in its --help, its man page (rendered
# by man(1)) and its bash completion; and each listed command is one the
# tool accepts (it gets as far as opening the device).
#   check_commands.sh SOURCE_ROOT DMAPLANECTL
set -eu
src=$1 ctl=$2
help=$("$ctl" --help)
from_help=$(printf '%s\n' "$help" | sed -n '/^commands:/,$p' |
	sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' | sort -u | tr '\n' ' ')

# The man page as man(1) renders it: each command under COMMANDS opens an
# indented paragraph with its name, followed by a description.
page=$(MANWIDTH=100 man -l "$src/tools/dmaplanectl.1" 2>&1 | col -bx)
from_man=$(printf '%s\n' "$page" | sed -n '/^COMMANDS/,/^[A-Z]/p' |
	sed -n 's/^       \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' | sort -u | tr '\n' ' ')
warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
	"$src/tools/dmaplanectl.1" 2>&1 >/dev/null || true)
[ -z "$warnings" ] || { echo "FAIL: man page warnings:"; echo "$warnings"; exit 1; }

# The completion as bash runs it, for the first word after dmaplanectl
# (bash-completion's _init_completion stubbed when it is not installed).
from_completion=$(bash -c '
	type _init_completion >/dev/null 2>&1 || _init_completion() {
		cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD; }
	. "$1"
	COMP_WORDS=(dmaplanectl "") COMP_CWORD=1
	_dmaplanectl
	printf "%s\n" "${COMPREPLY[@]}"' sh "$src/tools/dmaplanectl.bash-completion" |
	grep -v '^-' | sort -u | tr '\n' ' ')
hist_ops=$(bash -c '
	type _init_completion >/dev/null 2>&1 || _init_completion() {
		cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD; }
	. "$1"
	COMP_WORDS=(dmaplanectl hist --op "") COMP_CWORD=3
	_dmaplanectl
	printf "%s\n" "${COMPREPLY[@]}"' sh "$src/tools/dmaplanectl.bash-completion" | sort | tr '\n' ' ')

echo "help:       $from_help"
echo "man page:   $from_man"
echo "completion: $from_completion"
[ -n "$from_help" ] || { echo "FAIL: no commands in --help"; exit 1; }
[ "$from_help" = "$from_man" ] || { echo "FAIL: the man page's commands differ from --help's"; exit 1; }
[ "$from_help" = "$from_completion" ] || { echo "FAIL: the completion's commands differ from --help's"; exit 1; }
[ "$hist_ops" = "checksum copy fill nop " ] || { echo "FAIL: hist --op completes to '$hist_ops'"; exit 1; }

# Every listed command is accepted: it fails opening a missing device, not
# as an unknown command; a command that is not listed is refused.
for c in $from_help; do
	case $c in trace) continue ;; esac	# tracefs, not the device
	err=$("$ctl" --device /nonexistent/dmaplane "$c" 2>&1 >/dev/null || true)
	case $err in *"unknown command"*|"") echo "FAIL: '$c': $err"; exit 1 ;; esac
done
err=$("$ctl" --device /nonexistent/dmaplane frobnicate 2>&1 >/dev/null || true)
case $err in *"unknown command frobnicate"*) ;; *) echo "FAIL: an unlisted command gave: $err"; exit 1 ;; esac
echo "ok: $(echo $from_help | wc -w) commands, the same in --help, the man page and the completion"
