#!/usr/bin/env bash
# redirector: echos-redirector (10,000 boxes heartbeating into a real redis-server, a
# 100,000-prefix topology, the MMDB files of tools/geoip, the full decision with signed
# tokens) against the two best Debian peers answering a constant redirect: nginx
# (`return 302`) and h2o (`redirect:`). Each server is pinned to core 1, the load
# generator and Redis to core 0. h2load over h2c (-c 100 -m 10, timed) and wrk over
# HTTP/1.1 (-c 100), alternating, RUNS runs each; h2load cycles over 1,000 object paths,
# wrk asks for one. Prints req/s, req/s per server core
# (server CPU time from /proc/<pid>/stat, which for echos includes keeping the box table
# in sync: its share of a core without load is printed first), p99 latency and RSS, then
# each run's echos/peer req/s-per-core ratios with their median (the noise); the
# last line is
#   redirector/best-peer h2c req/s-per-core ratio: X
# Env: RUNS (2), SECS (5), BOXES (10000), PREFIXES (100000), RDR (bin/echos-redirector),
# SYNC (the redirector's boxes.sync_interval, 1s),
# PERF=file: perf record -g PERF_SERVER (echos-redirector, nginx, h2o) during its first
# PERF_PROTO (h2c, or h1) run
# into that file. SYSCALLS=prefix: strace -c each server during its first run of each
# protocol into prefix.<server>.<proto> (slows that run: its figures are not comparable).
[ -z "${BASH_VERSION:-}" ] && exec bash "$0" "$@"   # `make bench` runs it with sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-2}
SECS=${SECS:-5}
BOXES=${BOXES:-10000}
PREFIXES=${PREFIXES:-100000}
RDR=${RDR:-$ROOT/bin/echos-redirector}
PY=/usr/bin/python3
SRV_CPU=1
GEN_CPU=0
[ "$(nproc)" -lt 2 ] && SRV_CPU=0

for tool in redis-server redis-cli nginx h2o h2load wrk taskset; do
	command -v "$tool" >/dev/null || { echo "redirector.sh: $tool is missing (apt-get install nginx-light h2o wrk nghttp2-client redis-server)" >&2; exit 1; }
done
[ -x "$RDR" ] || { echo "redirector.sh: $RDR missing: run make bin/echos-redirector" >&2; exit 1; }

W=$(mktemp -d /tmp/echos-bench-rdr.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "redirector.sh: port $1 never opened" >&2; return 1
}

# ---- Redis and the box registry -------------------------------------------------------
RPORT=$(free_port)
taskset -c $GEN_CPU redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$W" --logfile "$W/redis.log" --daemonize no &
PIDS+=($!)
wait_port "$RPORT"

# 10,000 boxes in 500 PoPs of 20 (pop-0000 holds 127.0.0.0/8, where the load comes from),
# all over the map; heartbeats every second, as echos-edge writes them (docs/redis.md)
cat > "$W/beat.py" <<'EOF'
import random, sys, time
n = int(sys.argv[1]); pops = max(1, n // 20)
rnd = random.Random(7)
loc = [(rnd.uniform(-45, 60), rnd.uniform(-125, 150)) for _ in range(pops)]
out = []
now = int(time.time() * 1000)
for i in range(n):
    p = i % pops
    lat, lon = loc[p]
    bid = f"b{i:05d}"
    kv = [("id", bid), ("url", f"https://10.{i >> 8 & 255}.{i & 255}.1:8443"),
          ("pop", f"pop-{p:04d}"), ("region", f"r{p % 20}"),
          ("lat", f"{lat + rnd.uniform(-.5, .5):.4f}"), ("lon", f"{lon + rnd.uniform(-.5, .5):.4f}"),
          ("asn", str(64500 + p % 100)), ("uplink_bps", "10000000000"),
          ("egress_bps", str(rnd.randrange(0, 5000000000))), ("conns", "10"), ("ttfb_ms", "20"),
          ("status", "up"), ("ts_ms", str(now)), ("cache_objects", "0")]
    kv.append(("hb", " ".join(f"{k}={v}" for k, v in kv)))
    out.append(f"HSET echos:box:{{{bid}}} " + " ".join(f'{k} "{v}"' for k, v in kv) + "\n")
    out.append(f"EXPIRE echos:box:{{{bid}}} 30\n")
    out.append(f"ZADD echos:{{boxes}} {now} {bid}\n")
sys.stdout.write("".join(out))
EOF
beat() { $PY "$W/beat.py" "$BOXES" | redis-cli -p "$RPORT" --pipe >/dev/null; }
beat
( while sleep 1; do beat || exit 0; done ) &
PIDS+=($!)

# ---- topology: 100,000 prefixes, 127.0.0.0/8 in pop-0000 -------------------------------
$PY - "$PREFIXES" "$BOXES" > "$W/topology.txt" <<'EOF'
import random, sys
n, boxes = int(sys.argv[1]), int(sys.argv[2]); pops = max(1, boxes // 20)
rnd = random.Random(3)
print("127.0.0.0/8 pop-0000 r0")
seen = set()
while len(seen) < n - 1:
    a = rnd.randrange(1, 224)
    if a in (10, 127):
        continue
    net = (a, rnd.randrange(256), rnd.randrange(256))
    if net in seen:
        continue
    seen.add(net)
    p = rnd.randrange(pops)
    if len(seen) % 10 == 0:
        print(f"2001:db8:{net[0]:x}{net[1]:02x}:{net[2]:x}00::/56 pop-{p:04d} r{p % 20}")
    else:
        print(f"{net[0]}.{net[1]}.{net[2]}.0/24 pop-{p:04d} r{p % 20}")
EOF

# ---- the three servers ---------------------------------------------------------------
EPORT=$(free_port); EADMIN=$(free_port)
cat > "$W/rdr.conf" <<EOF
listen = 127.0.0.1:$EPORT
admin.listen = 127.0.0.1:$EADMIN
redis.addr = 127.0.0.1:$RPORT
topology.file = $W/topology.txt
geoip.city = $ROOT/tools/geoip/GeoIP2-City-Test.mmdb
geoip.asn = $ROOT/tools/geoip/GeoLite2-ASN-Test.mmdb
token.master = 1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
origin.url = http://127.0.0.1:9/origin
boxes.sync_interval = ${SYNC:-1s}
sla.max_state_age = 5s
sla.min_good_heartbeats = 1
# the load hits one PoP at rates no real PoP sees: charge little, so boxes stay eligible
sla.viewer_bitrate = 1k
log.level = warn
EOF
taskset -c $SRV_CPU "$RDR" -c "$W/rdr.conf" 2>"$W/rdr.log" &
EPID=$!; PIDS+=($EPID)
wait_port "$EPORT"

NPORT=$(free_port); N2PORT=$(free_port)
cat > "$W/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $W/nginx-error.log warn;
pid $W/nginx.pid;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	http2_max_requests 100000000;
	client_body_temp_path $W; proxy_temp_path $W; fastcgi_temp_path $W;
	uwsgi_temp_path $W; scgi_temp_path $W;
	server {
		listen 127.0.0.1:$NPORT;
		listen 127.0.0.1:$N2PORT http2;
		location / { return 302 https://10.0.0.1:8443/t/1~1~0~b00000~e~-~x\$request_uri; }
	}
}
EOF
taskset -c $SRV_CPU nginx -c "$W/nginx.conf" -p "$W" 2>"$W/nginx.log" &
NPID=$!; PIDS+=($NPID)
wait_port "$NPORT"; wait_port "$N2PORT"

HPORT=$(free_port)
cat > "$W/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $HPORT
num-threads: 1
access-log: /dev/null
error-log: $W/h2o-error.log
pid-file: $W/h2o.pid
http2-idle-timeout: 60
hosts:
  default:
    paths:
      /:
        redirect:
          url: https://10.0.0.1:8443/t/1~1~0~b00000~e~-~x/
          status: 302
EOF
taskset -c $SRV_CPU h2o -c "$W/h2o.conf" >"$W/h2o.log" 2>&1 &
HPID=$!; PIDS+=($HPID)
wait_port "$HPORT"

# wait until the redirector answers with a box (table loaded), at most 30 s
for _ in $(seq 300); do
	curl -s -m 2 -o /dev/null -D - "http://127.0.0.1:$EPORT/v/warm.ts" | grep -qi '^echos-box:' && break
	sleep 0.1
done
if ! curl -s -m 2 -o /dev/null -D - "http://127.0.0.1:$EPORT/v/warm.ts" | grep -qi '^echos-box:'; then
	echo "redirector.sh: the redirector never chose a box in 30 s; its answer, state and log:" >&2
	curl -s -m 2 -o /dev/null -D - "http://127.0.0.1:$EPORT/v/warm.ts" >&2
	curl -s -m 2 "http://127.0.0.1:$EADMIN/metrics" |
		grep -E '^echos_redirector_(boxes|box_syncs_total|box_table_age|redis_up|fallbacks_total)' >&2
	echo "registered: $(redis-cli -p "$RPORT" zcard 'echos:{boxes}')" >&2
	cat "$W/rdr.log" >&2
	exit 1
fi

# ---- measuring -------------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
RESULTS="$W/results.txt"
: > "$RESULTS"

# one run: name proto pid url
measure() {
	local name=$1 proto=$2 pid=$3 url=$4 t0 t1 reqs p99 out
	t0=$(cpu_ticks "$pid")
	if [ -n "${PERF:-}" ] && [ "$name" = "${PERF_SERVER:-echos-redirector}" ] && [ "$proto" = "${PERF_PROTO:-h2c}" ] && [ ! -e "$PERF" ]; then
		perf record -g -o "$PERF" -p "$pid" -- sleep "$SECS" >/dev/null 2>&1 &
	fi
	if [ -n "${SYSCALLS:-}" ] && [ ! -e "$SYSCALLS.$name.$proto" ]; then
		timeout -s INT "$SECS" strace -c -f -p "$pid" -o "$SYSCALLS.$name.$proto" >/dev/null 2>&1 &
	fi
	if [ "$proto" = h2c ]; then
		# 1,000 objects, as a popular catalogue: rendezvous, tokens and popularity vary
		awk -v u="${url%/v/*}" 'BEGIN { for (i = 0; i < 1000; i++)
			printf "%s/v/movie%d/seg%d.ts\n", u, i % 50, i }' > "$W/uris.txt"
		out=$(taskset -c $GEN_CPU h2load -c 100 -m 10 -D "$SECS" -i "$W/uris.txt" \
			--log-file="$W/h2load.log" 2>&1)
		reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
		p99=$($PY -c '
import sys
v = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
print("%.2f" % (v[int(len(v) * 0.99)] / 1000.0) if v else "nan")' "$W/h2load.log")
	else
		out=$(taskset -c $GEN_CPU wrk -t 1 -c 100 -d "${SECS}s" --latency "$url" 2>&1)
		reqs=$(echo "$out" | awk '/requests in/ {print $1}')
		p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000}
			else if (v ~ /ms$/) sub(/ms$/,"",v); else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}
			print v}')
	fi
	t1=$(cpu_ticks "$pid")
	echo "$name $proto ${reqs:-0} $(( t1 - t0 )) ${p99:-nan} $SECS" >> "$RESULTS"
	if [ "${reqs:-0}" = 0 ]; then echo "redirector.sh: $name $proto: no requests; output:" >&2; echo "$out" >&2; fi
}

# the redirector's own work without load: keeping the box table in sync (one read of every
# heartbeat per boxes.sync_interval), counted in its req/s-per-core figures below
t0=$(cpu_ticks "$EPID"); sleep 3; IDLE_TICKS=$(( $(cpu_ticks "$EPID") - t0 ))

for run in $(seq "$RUNS"); do
	for proto in h2c h1; do
		measure echos-redirector $proto $EPID "http://127.0.0.1:$EPORT/v/movie/seg1.ts"
		if [ $proto = h2c ]; then
			measure nginx $proto $NPID "http://127.0.0.1:$N2PORT/v/movie/seg1.ts"
		else
			measure nginx $proto $NPID "http://127.0.0.1:$NPORT/v/movie/seg1.ts"
		fi
		measure h2o $proto $HPID "http://127.0.0.1:$HPORT/v/movie/seg1.ts"
	done
done

# a redirect to the origin would mean the decision was not on: check it
ORIGIN_N=$(curl -s "http://127.0.0.1:$EADMIN/metrics" | awk -F' ' '/^echos_redirector_requests_total\{proto="h2",outcome="origin"\}/ {print $2}')
BOX_N=$(curl -s "http://127.0.0.1:$EADMIN/metrics" | awk -F' ' '/^echos_redirector_requests_total\{proto="h2",outcome="box"\}/ {print $2}')

$PY - "$RESULTS" "$HZ" "$(rss_kib $EPID)" "$(rss_kib $NPID)" "$(rss_kib $HPID)" \
	"${BOX_N:-0}" "${ORIGIN_N:-0}" "$BOXES" "$PREFIXES" "$IDLE_TICKS" <<'EOF'
import sys
from collections import defaultdict
path, hz = sys.argv[1], float(sys.argv[2])
rss = {"echos-redirector": sys.argv[3], "nginx": sys.argv[4], "h2o": sys.argv[5]}
agg = defaultdict(lambda: [0, 0.0, [], 0.0])
runs = defaultdict(list)  # per run req/s per core: the runs alternate, so run k of each
for line in open(path):   # server saw the same machine, and their ratios show the noise
    name, proto, reqs, ticks, p99, secs = line.split()
    runs[(name, proto)].append(int(reqs) * hz / int(ticks) if int(ticks) > 0 else 0)
    a = agg[(name, proto)]
    a[0] += int(reqs); a[1] += int(ticks) / hz; a[3] += float(secs)
    if p99 != "nan":
        a[2].append(float(p99))
print(f"redirector.sh: {sys.argv[8]} boxes, {sys.argv[9]} prefixes; echos h2 redirects: "
      f"{float(sys.argv[6]):.0f} to a box, {float(sys.argv[7]):.0f} to the origin; "
      f"without load it uses {float(sys.argv[10]) / hz / 3 * 100:.1f}% of a core (box sync)")
print(f"{'server':18} {'proto':5} {'req/s':>10} {'req/s/core':>11} {'cpu':>5} {'p99 ms':>7} {'RSS MiB':>8}")
per_core = {}
for (name, proto), (reqs, cpu, p99s, secs) in sorted(agg.items()):
    rps = reqs / secs if secs else 0
    pc = reqs / cpu if cpu > 0 else 0
    per_core[(name, proto)] = pc
    p99 = max(p99s) if p99s else float("nan")
    print(f"{name:18} {proto:5} {rps:10.0f} {pc:11.0f} {cpu / secs:5.2f} {p99:7.2f} "
          f"{int(rss[name]) / 1024:8.1f}")
for proto in ("h1", "h2c"):
    for peer in ("nginx", "h2o"):
        rs = [e / p for e, p in zip(runs[("echos-redirector", proto)], runs[(peer, proto)]) if p]
        if rs:
            med = sorted(rs)[len(rs) // 2]
            print(f"per run, echos/{peer} {proto} req/s-per-core: "
                  f"{' '.join(f'{r:.2f}' for r in rs)} (median {med:.2f})")
best = max(per_core.get(("nginx", "h2c"), 0), per_core.get(("h2o", "h2c"), 0))
ratio = per_core.get(("echos-redirector", "h2c"), 0) / best if best else 0
print(f"redirector/best-peer h2c req/s-per-core ratio: {ratio:.2f}")
EOF
