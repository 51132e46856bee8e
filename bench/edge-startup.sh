#!/bin/bash
# bench/edge-startup.sh: how long echos-edge takes to start with many cached objects.
# Writes N (default 100000) small valid object files in the store's format
# (tests/integration/edge_objfiles.py), starts bin/echos-edge on them and times the start
# until its listener accepts; then once more after a kill -9 (the restart path).
# Usage: bench/edge-startup.sh [N] [SIZE]    Needs: make (bin/), python3, curl.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000}
SIZE=${2:-1024}
BIN=${ECHOS_BIN:-$TOP/bin}
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/echos-edge-startup.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
KEY=$("$BIN/echosctl" derive-key --master "7:$(printf '%064d' 0)" --box bench-box)
cat > "$WORK/edge.conf" <<CONF
box.id = bench-box
box.url = http://127.0.0.1:$PORT
listen = 127.0.0.1:$PORT
cache.dir = $WORK/cache
cache.max_bytes = 64G
shim.url = http://127.0.0.1:1
redis.addr = 127.0.0.1:1
token.key = $KEY
log.level = info
CONF

echo "edge-startup: writing $N objects of $SIZE bytes"
$PY "$TOP/tests/integration/edge_objfiles.py" "$WORK/cache" "$N" "$SIZE"

start_timed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$BIN/echos-edge" -c "$WORK/edge.conf" > "$WORK/edge.log" 2>&1 &
	PID=$!
	until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
		kill -0 "$PID" 2>/dev/null || { cat "$WORK/edge.log"; exit 1; }
		sleep 0.01
	done
	t1=$(date +%s.%N)
	echo "edge-startup: $1: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s to listen; $(grep -o 'cache [^:]*: [0-9]* objects' "$WORK/edge.log" | sed 's/.*: //')"
}

# cold page cache when allowed (root outside a container), else warm: say which
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then CACHE=cold; else CACHE=warm; fi
start_timed "first start, $CACHE page cache"
RSS=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
start_timed "restart after kill -9"
echo "edge-startup: RSS with $N objects indexed: $((RSS / 1024)) MiB"
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
PID=
