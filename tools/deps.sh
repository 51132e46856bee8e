#!/bin/sh
# Installs the Debian packages echos needs to build, test and run its demo (and, with
# --bench, the peers the benchmarks compare against), and nothing when all are present
# at the required versions. Run as root on Debian 12.
set -eu

# package[:minimum version] — minimums carry security fixes the build depends on.
PKGS="
build-essential pkg-config make gcc
libnghttp2-dev:1.52.0-1+deb12u3 libnghttp2-14:1.52.0-1+deb12u3 nghttp2-client
libevent-dev:2.1.12-stable-8+deb12u1 libevent-2.1-7:2.1.12-stable-8+deb12u1
libevent-openssl-2.1-7:2.1.12-stable-8+deb12u1
libmicrohttpd-dev libhiredis-dev libmaxminddb-dev mmdb-bin libssl-dev openssl
libcurl4-openssl-dev curl libhttp-parser-dev libcmocka-dev
redis-server redis-tools
python3 python3-pytest python3-httpx python3-h2
chromium
"
# Peers and load generators for `make bench` only (tools/deps.sh --bench).
BENCH_PKGS="nginx-light h2o varnish wrk nghttp2-client util-linux procps linux-perf"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS $BENCH_PKGS"

missing=""
for spec in $PKGS; do
	pkg=${spec%%:*}
	min=""
	[ "$pkg" != "$spec" ] && min=${spec#*:}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)
	case "$have" in
	"install ok installed "*)
		ver=${have#install ok installed }
		if [ -n "$min" ] && ! dpkg --compare-versions "$ver" ge "$min"; then
			missing="$missing $pkg"
		fi ;;
	*) missing="$missing $pkg" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: not root; install these Debian packages:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "deps: done"
