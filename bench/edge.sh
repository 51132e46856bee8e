#!/bin/bash
# bench/edge.sh: echos-edge against nginx, h2o and varnish serving the same files as cache
# hits, each server pinned to core 1 and the load generator (wrk for HTTP/1.1, h2load for
# h2c) to core 0: 4 KiB objects (requests/s), 1 MiB objects (GB/s), a 1 MiB range of a
# 64 MiB file; with each server's CPU seconds per GB and RSS. Last line:
#   edge/nginx 1MiB http1 throughput ratio: X
# Needs: make (bin/), nginx-light (or nginx), h2o, varnish, wrk, nghttp2-client (h2load).
# Runs about 3 minutes. Usage: bench/edge.sh [SECONDS per run, default 5]
# Env, to look at one figure: CASES (4KiB, 1MiB, "1MiB range of 64MiB"), PROTOS (http1,
# h2c), SERVERS (echos-edge, nginx, h2o, varnish), comma-separated; PERF=file: perf record
# -g echos-edge during its first run into that file.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
missing=
for t in nginx h2o varnishd wrk h2load taskset; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "bench/edge.sh: missing:$missing (apt-get install nginx-light h2o varnish wrk" \
	     "nghttp2-client util-linux)" >&2
	exit 1
fi
[ -x "$TOP/bin/echos-edge" ] && [ -x "$TOP/bin/echosctl" ] || {
	echo "bench/edge.sh: build first (make)" >&2; exit 1; }
exec /usr/bin/python3 "$TOP/bench/edge_bench.py" "$@"
