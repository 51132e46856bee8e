#!/usr/bin/env bash
# echos demo: the whole offload path on loopback. Starts a local redis-server, a sample
# origin, the origin-shim, the control plane, a redirector and three boxes in two PoPs,
# plays a scripted viewer scenario with curl (HTTP/2 over TLS and HTTP/1.1, following
# redirects), verifies every byte against the origin, and prints the offload ratio.
# --once: exit 0 after the summary; otherwise keep running until Ctrl-C.
# Everything it starts is stopped by pid. State lives in demo-run/ (not in git).
set -euo pipefail

ONCE=0
[ "${1:-}" = "--once" ] && ONCE=1

TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ECHOS_DEMO_BIN:-$TOP/bin}
RUN=$TOP/demo-run
PY=/usr/bin/python3
GEO=$TOP/tools/geoip

# Ports (loopback only). Viewers of PoP "paris" come from 127.0.1.0/24, of "lyon" from
# 127.0.2.0/24; boxes listen on addresses of their PoP.
P_REDIS=17379 P_DASH=17090 P_ORIGIN=17080 P_SHIM=17081 P_RDR=17000 P_RDR_TLS=17443 P_RDR_ADMIN=17001
BOXES=("box-paris-1 127.0.1.1 paris eu-west"
       "box-paris-2 127.0.1.2 paris eu-west"
       "box-lyon-1 127.0.2.1 lyon eu-west")
P_BOX=17100 P_BOX_TLS=17143 P_BOX_ADMIN=17101

PIDS=()
stop_all() {
	local pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[$i]}
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap 'stop_all' EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

wait_port() { # host port name
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "$3 did not start listening on $1:$2; see $RUN/logs/$3.log"
}

start() { # name argv...
	local name=$1; shift
	"$@" >"$RUN/logs/$name.log" 2>&1 &
	PIDS+=($!)
}

for port in $P_REDIS $P_DASH $P_ORIGIN $P_SHIM $P_RDR $P_RDR_TLS $P_RDR_ADMIN; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port on 127.0.0.1 is in use (another demo running?)"
	fi
done

rm -rf "$RUN"
mkdir -p "$RUN"/{logs,conf,tls,origin,cache,spool}

say "== echos demo: setting up in $RUN"
# TLS: a local CA-less self-signed certificate for every loopback address used.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
	-subj "/CN=echos-demo" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.1.1,IP:127.0.1.2,IP:127.0.2.1" \
	-keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" >/dev/null 2>&1 \
	|| die "openssl could not make a certificate"
MASTER="1:$(openssl rand -hex 32)"

$PY "$TOP/tools/sample-origin.py" --make-sample "$RUN/origin" >/dev/null

cat >"$RUN/conf/topology.txt" <<EOF
# operator topology: CIDR  PoP  region
127.0.1.0/24  paris  eu-west
127.0.2.0/24  lyon   eu-west
EOF

start redis redis-server --port $P_REDIS --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$RUN" --protected-mode no
wait_port 127.0.0.1 $P_REDIS redis
start origin $PY "$TOP/tools/sample-origin.py" --root "$RUN/origin" --host 127.0.0.1 \
	--port $P_ORIGIN --quiet
wait_port 127.0.0.1 $P_ORIGIN origin

cat >"$RUN/conf/shim.conf" <<EOF
listen = 127.0.0.1:$P_SHIM
upstream_url = http://127.0.0.1:$P_ORIGIN
spool_dir = $RUN/spool
redis.addr = 127.0.0.1:$P_REDIS
topology.file = $RUN/conf/topology.txt
service = vod=/v/
service = files=/big/
EOF
start shim "$BIN/echos-origin-shim" -c "$RUN/conf/shim.conf"
wait_port 127.0.0.1 $P_SHIM shim

cat >"$RUN/conf/policy.conf" <<EOF
redis.addr = 127.0.0.1:$P_REDIS
interval = 2s
http.listen = 127.0.0.1:$P_DASH
EOF
start policy "$BIN/echos-policy" -c "$RUN/conf/policy.conf"

for b in "${BOXES[@]}"; do
	read -r id ip pop region <<<"$b"
	mkdir -p "$RUN/cache/$id"
	cat >"$RUN/conf/$id.conf" <<EOF
box.id = $id
box.url = https://$ip:$P_BOX_TLS
box.pop = $pop
box.region = $region
box.uplink = 1G
listen = $ip:$P_BOX
listen_tls = $ip:$P_BOX_TLS
tls.cert = $RUN/tls/cert.pem
tls.key = $RUN/tls/key.pem
admin.listen = $ip:$P_BOX_ADMIN
cache.dir = $RUN/cache/$id
cache.max_bytes = 256M
shim.url = http://127.0.0.1:$P_SHIM
redis.addr = 127.0.0.1:$P_REDIS
token.key = $("$BIN/echosctl" derive-key --master "$MASTER" --box "$id")
service = vod=/v/
service = files=/big/
EOF
	start "$id" "$BIN/echos-edge" -c "$RUN/conf/$id.conf"
done
for b in "${BOXES[@]}"; do
	read -r id ip _ <<<"$b"
	wait_port "$ip" $P_BOX_TLS "$id"
done

cat >"$RUN/conf/redirector.conf" <<EOF
listen = 127.0.0.1:$P_RDR
listen_tls = 127.0.0.1:$P_RDR_TLS
tls.cert = $RUN/tls/cert.pem
tls.key = $RUN/tls/key.pem
admin.listen = 127.0.0.1:$P_RDR_ADMIN
redis.addr = 127.0.0.1:$P_REDIS
topology.file = $RUN/conf/topology.txt
geoip.city = $GEO/GeoIP2-City-Test.mmdb
geoip.asn = $GEO/GeoLite2-ASN-Test.mmdb
token.master = $MASTER
token.sign_kid = 1
origin.url = http://127.0.0.1:$P_SHIM
sla.max_class = asn
service = name=vod prefix=/v/
service = name=files prefix=/big/
EOF
start redirector "$BIN/echos-redirector" -c "$RUN/conf/redirector.conf"
wait_port 127.0.0.1 $P_RDR_TLS redirector

# Wait until the redirector routes viewers of both PoPs to boxes: a box needs a couple of
# good heartbeats (one a second) before it gets viewers.
for src in 127.0.1.100 127.0.2.100; do
	for _ in $(seq 100); do
		curl -s -o /dev/null -D - --interface $src -I "http://127.0.0.1:$P_RDR/_probe" |
			grep -qi '^echos-box:' && break
		sleep 0.1
	done
done

# --- the viewer scenario ---------------------------------------------------------------
say ""
say "== viewers"
printf '%-8s %-11s %-9s %-24s %-26s %10s  %s\n' VIEWER FROM PROTOCOL OBJECT "SERVED BY" BYTES VERIFIED
FAILS=0
CACERT=(--cacert "$RUN/tls/cert.pem")

# fetch VIEWER SRC_IP PROTO URL [curl args...]: follows the redirect, checks the bytes.
fetch() {
	local viewer=$1 src=$2 proto=$3 url=$4; shift 4
	local out="$RUN/body" info served path want got verified
	info=$(curl -sS -L --max-time 30 --interface "$src" "${CACERT[@]}" "$@" \
		-D "$RUN/headers" -o "$out" -w '%{url_effective} %{http_version} %{size_download}' "$url") || {
		say "  $viewer: curl failed for $url"; FAILS=$((FAILS + 1)); return; }
	read -r eff ver size <<<"$info"
	path=${url#*://*/}
	path=/${path%%\?*}
	case "$path" in /t/*) path=${path#/t/}; path=/${path#*/} ;; esac
	case "$eff" in
	*"/t/"*) served=$(awk -v u="$eff" 'BEGIN{split(u,a,"/"); print a[3]}')
		for b in "${BOXES[@]}"; do read -r id ip _ <<<"$b"
			[ "${served%%:*}" = "$ip" ] && served=$id; done ;;
	*:$P_SHIM/*) served="origin ($(tr -d '\r' <"$RUN/headers" |
		awk -F': ' 'tolower($1)=="echos-miss"{print $2}'))" ;;
	*) served="?" ;;
	esac
	want=$(sha256sum <"$RUN/origin$path" | cut -c1-64)
	got=$(sha256sum <"$out" | cut -c1-64)
	if [ "$want" = "$got" ]; then verified="sha-256 ok"; else
		verified="MISMATCH"; FAILS=$((FAILS + 1)); fi
	printf '%-8s %-11s %-9s %-24s %-26s %10s  %s\n' "$viewer" "$src" "$proto" \
		"$path" "$served" "$size" "$verified"
	LAST_URL=$eff
}

RDR=https://127.0.0.1:$P_RDR_TLS
RDR_H1=http://127.0.0.1:$P_RDR
# Alice in Paris watches the HLS stream over HTTP/2: playlist via the redirector, then
# every segment straight from the box, relative to the tokenized playlist URL.
fetch alice 127.0.1.100 h2 "$RDR/v/demo/playlist.m3u8" --http2
base=${LAST_URL%/*}
for seg in $(grep -v '^#' "$RUN/origin/v/demo/playlist.m3u8"); do
	fetch alice 127.0.1.100 h2 "$base/$seg" --http2
done
# Bob, also in Paris, watches the same stream: now cache hits.
fetch bob 127.0.1.101 h2 "$RDR/v/demo/playlist.m3u8" --http2
base=${LAST_URL%/*}
for seg in $(grep -v '^#' "$RUN/origin/v/demo/playlist.m3u8" | head -3); do
	fetch bob 127.0.1.101 h2 "$base/$seg" --http2
done
# Carol in Lyon downloads the movie over HTTP/1.1, twice (miss, then hit).
fetch carol 127.0.2.100 http1.1 "$RDR_H1/big/movie.mp4" --http1.1
fetch carol 127.0.2.100 http1.1 "$RDR_H1/big/movie.mp4" --http1.1
# Dave's network is unknown to the operator: no box in reach, the origin serves him.
fetch dave 127.0.9.9 http1.1 "$RDR_H1/small/hello.txt" --http1.1
fetch dave 127.0.9.9 h2 "$RDR/big/movie.mp4" --http2

say ""
say "== boxes (echosctl boxes)"
sleep 2.5 # one accounting flush from every daemon
"$BIN/echosctl" --redis 127.0.0.1:$P_REDIS boxes
say ""
say "== offload (echosctl offload)"
"$BIN/echosctl" --redis 127.0.0.1:$P_REDIS offload
ratio=$("$BIN/echosctl" --redis 127.0.0.1:$P_REDIS --json offload |
	$PY -c 'import json,sys; r=json.load(sys.stdin)["byte_offload"]; print("n/a (no traffic)" if r is None else "%.1f%%" % (100*r))')

[ "$FAILS" -eq 0 ] || die "$FAILS viewer requests failed; logs in $RUN/logs"

if [ "$ONCE" -eq 0 ]; then
	say ""
	say "== echos is running; try (Ctrl-C stops everything):"
	say "  curl -L --cacert $RUN/tls/cert.pem --interface 127.0.1.100 $RDR/v/demo/playlist.m3u8"
	say "  curl -L -v --http1.1 --interface 127.0.2.100 $RDR_H1/small/hello.txt"
	say "  dashboard: http://127.0.0.1:$P_DASH/"
	say "  curl http://127.0.0.1:$P_RDR_ADMIN/metrics"
	say "  $BIN/echosctl --redis 127.0.0.1:$P_REDIS offload"
	say "  logs: $RUN/logs/"
	while :; do sleep 3600 & wait $!; done
fi
stop_all
say ""
say "byte offload: $ratio"
