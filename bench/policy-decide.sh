#!/bin/sh
# policy-decide: decisions per second of the box choice with 10,000 boxes, indexed and
# linear, and through the decision memo on a popular catalogue, on one pinned core. Builds bench/policy_decide.c against policy/pol_*.c (release
# flags) into build/bench/ unless `make bin/policy-decide` already made it.
# Usage: sh bench/policy-decide.sh [boxes] [seconds]
set -eu
cd "$(dirname "$0")/.."
bin=bin/policy-decide
if [ ! -x "$bin" ] || [ bench/policy_decide.c -nt "$bin" ]; then
	bin=build/bench/policy-decide
	mkdir -p build/bench
	${CC:-cc} -std=gnu11 -O2 -g -D_GNU_SOURCE -Ipolicy -Icommon -o "$bin" \
		bench/policy_decide.c policy/pol_hash.c policy/pol_score.c policy/pol_sla.c \
		policy/pol_index.c policy/pol_memo.c -lm
fi
pin=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then pin="taskset -c 1"; fi
exec $pin "$bin" "${1:-10000}" "${2:-1}"
