"""echos-edge against the real origin-shim, sample origin and redis-server, driven by curl
(HTTP/1.1, h2c, TLS h2) and raw sockets: misses and hits, ranges and preconditions, token
and path refusals, playlists through one prefix token, digest mismatches, the heartbeat and
accounting in Redis, restart recovery of the cache directory, and Redis outages."""
import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, echos_bin, free_port, run, sha256_file, wait_for, wait_port, write_conf

MASTER_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
MASTER = "7:" + MASTER_HEX
BOX = "box-a"


# ---- keys and tokens (docs/tokens.md; echosctl when it is built) ---------------------

def hkdf_sha256(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def box_key_hex(box_id, master_hex=MASTER_HEX):
    return hkdf_sha256(bytes.fromhex(master_hex), b"echos-box-key-v1", box_id.encode()).hex()


def have_ctl():
    return (BIN / "echosctl").exists()


def derive_key(box_id):
    if have_ctl():
        r = run([echos_bin("echosctl"), "derive-key", "--master", MASTER, "--box", box_id])
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    return "7:" + box_key_hex(box_id)


def mint(path, box=BOX, prefix_segments=None, ttl=60, kid=7, key_box=None):
    """A token for `path` on `box`, signed with key_box's derived key (default: box's)."""
    key_box = key_box or box
    if have_ctl() and key_box == box and ttl > 0 and kid == 7:
        argv = [echos_bin("echosctl"), "token", "--master", MASTER, "--box", box,
                "--path", path, "--ttl", str(ttl)]
        if prefix_segments:
            argv += ["--prefix-segments", str(prefix_segments)]
        r = run(argv)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    exp = int(time.time()) + ttl
    if prefix_segments:
        kind, scope_field = "d", f"d{prefix_segments}"
        scope_path = "/".join(path.split("/")[:prefix_segments + 1]) + "/"
    else:
        kind, scope_field, scope_path = "e", "e", path
    canon = f"echos-token-v1\n{kid}\n{exp}\n{box}\n{kind}\n{scope_path}\n-\n"
    key = bytes.fromhex(box_key_hex(key_box))
    mac = base64.urlsafe_b64encode(
        hmac.new(key, canon.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"1~{kid}~{exp}~{box}~{scope_field}~-~{mac}"


# ---- processes -----------------------------------------------------------------------

def start_shim(procs, origin, redis):
    port = free_port()
    conf = write_conf(Path(origin.root).parent / f"shim-{port}.conf", {
        "listen": f"127.0.0.1:{port}",
        "upstream_url": origin.url,
        "redis.addr": redis.addr,
        "log.level": "info",
    })
    p = procs.start("echos-origin-shim", [echos_bin("echos-origin-shim"), "-c", conf])
    wait_port(port, 10, proc=p)
    return f"http://127.0.0.1:{port}"


class Edge:
    def __init__(self, procs, tmp_path, shim_url, redis, certs, **extra):
        self.procs = procs
        self.port = free_port()
        self.tls_port = free_port()
        self.admin_port = free_port()
        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        self.cache = Path(tmp_path) / "cache"
        self.conf = {
            "box.id": BOX,
            "box.url": f"https://127.0.0.1:{self.tls_port}",
            "box.pop": "pop-a",
            "box.region": "region-1",
            "box.lat": "48.85",
            "box.lon": "2.35",
            "box.uplink": "200M",
            "listen": f"127.0.0.1:{self.port}",
            "listen_tls": f"127.0.0.1:{self.tls_port}",
            "tls.cert": certs.cert,
            "tls.key": certs.key,
            "admin.listen": f"127.0.0.1:{self.admin_port}",
            "cache.dir": str(self.cache),
            "cache.max_bytes": "64M",
            "shim.url": shim_url,
            "redis.addr": redis.addr,
            "token.key": derive_key(BOX),
            "heartbeat.interval": "200ms",
            "heartbeat.ttl": "2s",
            "log.level": "debug",
        }
        self.conf.update(extra)
        self.conf_path = write_conf(Path(tmp_path) / "edge.conf", self.conf)
        self.proc = None
        self.start()

    def start(self):
        self.proc = self.procs.start("echos-edge", [echos_bin("echos-edge"), "-c",
                                                     self.conf_path])
        wait_port(self.port, 15, proc=self.proc)
        wait_port(self.tls_port, 15, proc=self.proc)
        wait_port(self.admin_port, 15, proc=self.proc)
        return self

    def url(self, path, token=None, scheme="http", query=""):
        token = token if token is not None else mint(path)
        port = self.tls_port if scheme == "https" else self.port
        return f"{scheme}://127.0.0.1:{port}/t/{token}{path}" + (f"?{query}" if query else "")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics",
                                    timeout=5) as r:
            return r.read().decode()

    def metric(self, name, labels=None):
        """Sum of the series `name` whose labels include all of `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            m = re.match(r"([a-z_]+)(\{[^}]*\})?\s+(\S+)", line)
            if not m or m.group(1) != name:
                continue
            if labels and not all(f'{k}="{v}"' in (m.group(2) or "")
                                  for k, v in labels.items()):
                continue
            total += float(m.group(3))
        return total

    def objects(self):
        return sorted(p for p in (self.cache / "objects").glob("*/*") if p.is_file())


def curl(url, *args, proto="h1", timeout=20):
    """Runs curl; returns (exit code, status, body bytes, headers dict lowercased)."""
    fd_body = f"/tmp/edge-body-{os.getpid()}-{time.monotonic_ns()}"
    hdr_path = fd_body + ".h"
    argv = ["curl", "-sS", "--max-time", str(timeout), "-o", fd_body, "-D", hdr_path,
            "-w", "%{http_code}"]
    if proto == "h2c":
        argv.append("--http2-prior-knowledge")
    elif proto == "h2":
        argv += ["--http2", "-k"]
    elif proto == "h1tls":
        argv += ["--http1.1", "-k"]
    else:
        argv.append("--http1.1")
    r = subprocess.run(argv + list(args) + [url], capture_output=True, timeout=timeout + 10)
    body = Path(fd_body).read_bytes() if Path(fd_body).exists() else b""
    headers = {}
    if Path(hdr_path).exists():
        for line in Path(hdr_path).read_text(errors="replace").splitlines():
            if ":" in line and not line.startswith("HTTP/"):
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            elif line.startswith("HTTP/"):
                headers[":status-line"] = line
        Path(hdr_path).unlink()
    if Path(fd_body).exists():
        Path(fd_body).unlink()
    status = int(r.stdout.decode() or 0)
    return r.returncode, status, body, headers


@pytest.fixture
def setup(procs, tmp_path, redis, origin, certs):
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs)
    return edge, origin, redis


# ---- tests -----------------------------------------------------------------------------

def test_miss_then_hit_over_h1_h2c_and_tls_h2(setup):
    edge, origin, redis = setup
    data = os.urandom(700 * 1024 + 123)
    f = origin.put("/v/movie.bin", data)
    want = hashlib.sha256(data).hexdigest()

    rc, code, body, h = curl(edge.url("/v/movie.bin"))
    assert (rc, code) == (0, 200)
    assert hashlib.sha256(body).hexdigest() == want == sha256_file(f)
    assert h["access-control-allow-origin"] == "*"
    assert h["accept-ranges"] == "bytes"
    assert "etag" in h
    assert origin.hits("/v/movie.bin") == 1
    wait_for(lambda: len(edge.objects()) == 1, 5, what="object committed")

    for proto in ("h2c", "h2", "h1tls", "h1"):
        scheme = "https" if proto in ("h2", "h1tls") else "http"
        rc, code, body, h = curl(edge.url("/v/movie.bin", scheme=scheme), proto=proto)
        assert (rc, code) == (0, 200), proto
        assert hashlib.sha256(body).hexdigest() == want, proto
        assert int(h["content-length"]) == len(data), proto
    # the query string is not part of the cache key
    rc, code, body, _ = curl(edge.url("/v/movie.bin", query="x=1"))
    assert (rc, code, len(body)) == (0, 200, len(data))
    assert origin.hits("/v/movie.bin") == 1, "hits must not reach the origin"

    rc, code, body, h = curl(edge.url("/v/movie.bin"), "-I")  # curl -I: -o gets headers
    assert (rc, code) == (0, 200) and body.startswith(b"HTTP/1.1 200") and len(body) < 1000
    assert int(h["content-length"]) == len(data)

    assert edge.metric("echos_edge_requests_total", {"result": "hit", "code": "200"}) >= 5
    assert edge.metric("echos_edge_requests_total", {"result": "miss"}) == 1
    assert edge.metric("echos_edge_fill_bytes_total") == len(data)
    assert edge.metric("echos_edge_cache_objects") == 1
    wait_for(lambda: edge.metric("echos_edge_bytes_served_total") >= 6 * len(data), 5,
             what="bytes served counted")


def test_head_and_range_on_a_miss_are_answered_after_the_commit(setup):
    edge, origin, _ = setup
    data = os.urandom(50000)
    origin.put("/r/a.bin", data)
    origin.put("/r/b.bin", data)
    rc, code, body, h = curl(edge.url("/r/a.bin"), "-r", "100-199")
    assert (rc, code, body) == (0, 206, data[100:200])
    assert h["content-range"] == f"bytes 100-199/{len(data)}"
    rc, code, body, h = curl(edge.url("/r/b.bin"), "-I")
    assert (rc, code) == (0, 200) and len(body) < 1000
    assert int(h["content-length"]) == len(data)
    assert origin.hits("/r/a.bin") == 1 and origin.hits("/r/b.bin") == 1


def test_ranges_and_preconditions_on_hits(setup):
    edge, origin, _ = setup
    data = bytes(range(256)) * 40
    origin.put("/c/x.bin", data)
    rc, code, body, h = curl(edge.url("/c/x.bin"))
    assert (rc, code, body) == (0, 200, data)
    etag, lastmod = h["etag"], h["last-modified"]

    cases = [
        (["-r", "10-19"], 206, data[10:20], f"bytes 10-19/{len(data)}"),
        (["-r", "-5"], 206, data[-5:], f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"),
        (["-r", "10000-"], 206, data[10000:], f"bytes 10000-{len(data) - 1}/{len(data)}"),
        (["-r", "0-1,5-6"], 200, data, None),
        (["-r", "99999-"], 416, None, f"bytes */{len(data)}"),
        (["-H", f"If-None-Match: {etag}"], 304, b"", None),
        (["-H", "If-None-Match: \"nope\""], 200, data, None),
        (["-H", f"If-Modified-Since: {lastmod}"], 304, b"", None),
        (["-H", f"If-Range: {etag}", "-r", "0-3"], 206, data[0:4], f"bytes 0-3/{len(data)}"),
        (["-H", "If-Range: \"old\"", "-r", "0-3"], 200, data, None),
        (["-H", "If-Match: \"nope\""], 412, None, None),
    ]
    for proto in ("h1", "h2c"):
        for args, want_code, want_body, want_cr in cases:
            rc, code, body, h = curl(edge.url("/c/x.bin"), *args, proto=proto)
            assert code == want_code, (proto, args, code)
            if want_body is not None:
                assert body == want_body, (proto, args)
            if want_cr is not None:
                assert h.get("content-range") == want_cr, (proto, args)
    assert origin.hits("/c/x.bin") == 1


def test_cors_preflight_and_other_methods(setup):
    edge, _, _ = setup
    rc, code, _, h = curl(edge.url("/any"), "-X", "OPTIONS", "-H", "Origin: null",
                          "-H", "Access-Control-Request-Method: GET")
    assert code == 204
    assert h["access-control-allow-origin"] == "*"
    assert "GET" in h["access-control-allow-methods"]
    for method in ("POST", "DELETE", "PUT"):
        rc, code, _, h = curl(edge.url("/any"), "-X", method)
        assert code == 405, method
        assert "GET" in h["allow"]


@pytest.mark.parametrize("case,path_tok,reason", [
    ("tampered", "tamper", "bad signature"),
    ("expired", "expired", "token expired"),
    ("other box", "otherbox", "another box"),
    ("unknown key id", "kid", "unknown key id 9"),
    ("another path", "otherpath", "bad signature"),
    ("malformed", "garbage", ""),
])
def test_bad_tokens_get_403_with_a_reason(setup, case, path_tok, reason):
    edge, origin, _ = setup
    origin.put("/s/f.bin", b"secret")
    good = mint("/s/f.bin")
    tok = {
        "tamper": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "expired": mint("/s/f.bin", ttl=-10),
        "otherbox": mint("/s/f.bin", box="box-b"),
        "kid": mint("/s/f.bin", kid=9),
        "otherpath": mint("/s/other.bin"),
        "garbage": "1~x~y",
    }[path_tok]
    rc, code, body, _ = curl(edge.url("/s/f.bin", token=tok))
    assert code == 403, (case, body)
    assert body.endswith(b"\n") and body.count(b"\n") == 1
    assert reason.encode() in body, (case, body)
    assert tok.encode() not in Path(edge.proc.log_path).read_bytes(), "token logged"
    assert origin.hits("/s/f.bin") == 0
    assert edge.metric("echos_edge_token_rejects_total") >= 1


@pytest.mark.parametrize("raw", [
    "/t/TOKEN/a/../b.bin", "/t/TOKEN/a/%2e%2e/b.bin", "/t/TOKEN/a/%2E%2E/b.bin",
    "/t/TOKEN/a%2fb.bin", "/t/TOKEN/a%5cb.bin", "/t/TOKEN/a//b.bin", "/t/TOKEN/a/%00.bin",
    "/t/TOKEN/a\\b.bin", "/t//a/b.bin", "/t/TOKEN", "/x/TOKEN/a/b.bin", "/t/TOKEN/a/%zz",
])
def test_traversal_and_malformed_paths_get_400(setup, raw):
    edge, origin, _ = setup
    raw = raw.replace("TOKEN", mint("/a/b.bin"))
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(f"GET {raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        s.settimeout(5)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    assert resp.startswith(b"HTTP/1.1 400"), resp[:200]
    assert sum(origin.hits(p) for p in ("/a/b.bin", "/b.bin")) == 0


def test_nul_in_path_over_a_raw_socket_is_400(setup):
    edge, _, _ = setup
    tok = mint("/a/b.bin")
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(b"GET /t/" + tok.encode() + b"/a/\x00b.bin HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        s.settimeout(5)
        resp = s.recv(65536)
    assert resp.startswith(b"HTTP/1.1 400"), resp[:200]


def test_playlist_segments_resolve_under_one_prefix_token(setup):
    edge, origin, _ = setup
    segs = {f"seg{i}.ts": os.urandom(30000 + i) for i in range(3)}
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n" + "".join(
        f"#EXTINF:4.0,\n{name}\n" for name in segs) + "#EXT-X-ENDLIST\n"
    origin.put("/hls/show/index.m3u8", playlist.encode())
    for name, data in segs.items():
        origin.put(f"/hls/show/{name}", data)
    tok = mint("/hls/show/index.m3u8", prefix_segments=2)
    url = edge.url("/hls/show/index.m3u8", token=tok)
    rc, code, body, h = curl(url, proto="h2c")
    assert (rc, code) == (0, 200)
    assert h["content-type"].startswith("application/vnd.apple.mpegurl")
    names = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    assert names == list(segs)
    for name in names:
        seg_url = urllib.parse.urljoin(url, name)
        assert f"/t/{tok}/hls/show/{name}" in seg_url
        rc, code, seg, _ = curl(seg_url, proto="h2c")
        assert (rc, code) == (0, 200)
        assert seg == segs[name]
    # outside the token's directory: refused
    rc, code, body, _ = curl(urllib.parse.urljoin(url, "/t/" + tok + "/hls/other/x.ts"))
    assert code == 403


def test_digest_mismatch_is_never_cached_or_served_whole(setup):
    edge, origin, _ = setup
    data = os.urandom(400 * 1024)
    f = origin.put("/bad/evil.bin", data)
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    f.with_name(f.name + ".repr-digest").write_text(f"sha-256=:{wrong}:")
    for attempt in (1, 2):
        rc, code, body, _ = curl(edge.url("/bad/evil.bin"))
        assert rc != 0 or len(body) < len(data), "a mismatched body must look cut"
        assert origin.hits("/bad/evil.bin") == attempt
    assert edge.objects() == []
    assert list((edge.cache / "tmp").iterdir()) == []
    assert edge.metric("echos_edge_digest_mismatch_total") == 2
    # a waiter (range) gets an error, never the bytes
    rc, code, body, _ = curl(edge.url("/bad/evil.bin"), "-r", "0-9")
    assert code == 502


def test_origin_errors_map_to_404_and_502(procs, tmp_path, redis, origin, certs):
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs)
    rc, code, body, _ = curl(edge.url("/missing.bin"))
    assert code == 404
    rc, code, body, _ = curl(edge.url("/_status/503"))
    assert code == 502 and body.count(b"\n") == 1
    # nothing listening behind shim.url: 502, logged
    dead = Edge(procs, tmp_path / "dead", f"http://127.0.0.1:{free_port()}", redis, certs)
    rc, code, body, _ = curl(dead.url("/x.bin"))
    assert code == 502


def test_heartbeat_and_accounting_in_redis(setup):
    edge, origin, redis = setup
    key = "echos:box:{%s}" % BOX
    h = wait_for(lambda: redis.hgetall(key) or None, 5, what="heartbeat hash")
    for field in ("id", "url", "pop", "region", "lat", "lon", "uplink_bps", "egress_bps",
                  "conns", "ttfb_ms", "status", "ts_ms", "cache_bytes", "cache_max_bytes",
                  "cache_objects", "hits", "misses"):
        assert field in h, field
    assert h["id"] == BOX and h["status"] == "up" and h["pop"] == "pop-a"
    assert h["uplink_bps"] == "200000000"
    assert h["cache_max_bytes"] == str(64 << 20)
    assert abs(int(h["ts_ms"]) - time.time() * 1000) < 5000
    # hb: every other field again, as name=value pairs, for readers taking one HGET
    packed = dict(pair.split("=", 1) for pair in h["hb"].split(" "))
    assert packed == {k: v for k, v in h.items() if k != "hb"}
    assert 0 < int(redis.cli("PTTL", key)) <= 2000
    assert redis.cli("ZSCORE", "echos:{boxes}", BOX) != ""

    data = os.urandom(10000)
    origin.put("/acct.bin", data)
    for _ in range(3):
        assert curl(edge.url("/acct.bin"))[1] == 200

    def acct():
        t = redis.hgetall("echos:acct:total")
        return t if int(t.get("box.reqs", 0)) >= 3 else None
    t = wait_for(acct, 5, what="accounting")
    assert int(t["box.bytes"]) == 3 * len(data)
    assert int(t[f"box.{BOX}.bytes"]) == 3 * len(data)
    assert int(t[f"box.{BOX}.reqs"]) == 3
    assert int(t["box.hits"]) == 2 and int(t["box.misses"]) == 1
    assert int(t["box.fill_bytes"]) == len(data)
    minute = [k for k in redis.cli("KEYS", "echos:acct:m:*").splitlines() if k]
    assert minute and 0 < int(redis.cli("TTL", minute[0])) <= 172800

    redis.cli("HSET", "echos:ctl:{%s}" % BOX, "drain", "1")
    wait_for(lambda: redis.hgetall(key).get("status") == "draining", 5, what="draining")
    redis.cli("HDEL", "echos:ctl:{%s}" % BOX, "drain")
    wait_for(lambda: redis.hgetall(key).get("status") == "up", 5, what="up again")


def test_restart_removes_torn_and_truncated_files_and_keeps_good_objects(setup):
    edge, origin, _ = setup
    good, victim = os.urandom(20000), os.urandom(30000)
    origin.put("/k/good.bin", good)
    origin.put("/k/victim.bin", victim)
    assert curl(edge.url("/k/good.bin"))[2] == good
    assert curl(edge.url("/k/victim.bin"))[2] == victim
    wait_for(lambda: len(edge.objects()) == 2, 5, what="two objects")
    edge.proc.stop()
    victim_file = [p for p in edge.objects()
                   if p.name == hashlib.sha256(b"/k/victim.bin").hexdigest()][0]
    with open(victim_file, "r+b") as fh:
        fh.truncate(victim_file.stat().st_size - 1000)
    torn = edge.cache / "tmp" / "deadbeefdeadbeef.part"
    torn.write_bytes(b"ECHOSOBJ" + os.urandom(100))
    edge.start()
    assert not torn.exists()
    assert not victim_file.exists()
    assert curl(edge.url("/k/good.bin"))[2] == good
    assert origin.hits("/k/good.bin") == 1, "a valid object survives a restart as a hit"
    assert curl(edge.url("/k/victim.bin"))[2] == victim
    assert origin.hits("/k/victim.bin") == 2
    log = edge.proc.log_text()
    assert "torn or truncated" in log and "deadbeefdeadbeef.part" in log


def test_redis_down_hits_keep_serving_and_counts_arrive_later(setup):
    edge, origin, redis = setup
    data = os.urandom(5000)
    origin.put("/rd.bin", data)
    assert curl(edge.url("/rd.bin"))[2] == data
    wait_for(lambda: int(redis.hgetall("echos:acct:total").get("box.reqs", 0)) >= 1, 5,
             what="first count")
    redis.stop()
    wait_for(lambda: edge.metric("echos_edge_redis_up") == 0, 10, what="redis down seen")
    for _ in range(4):
        rc, code, body, _ = curl(edge.url("/rd.bin"))
        assert (rc, code, body) == (0, 200, data)
    assert origin.hits("/rd.bin") == 1
    redis.start()
    wait_for(lambda: int(redis.hgetall("echos:acct:total").get("box.reqs", 0)) >= 4, 15,
             what="counts kept through the outage")
    wait_for(lambda: redis.hgetall("echos:box:{%s}" % BOX).get("status") == "up", 10,
             what="heartbeat back")


def test_sighup_reloads_keys_and_refuses_a_bad_config(setup):
    edge, origin, _ = setup
    origin.put("/hup.bin", b"x" * 100)
    assert curl(edge.url("/hup.bin"))[1] == 200
    text = Path(edge.conf_path).read_text()
    Path(edge.conf_path).write_text(text + "box.lat = north\n")
    edge.proc.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in edge.proc.log_text(), 5, what="refusal logged")
    assert curl(edge.url("/hup.bin"))[1] == 200, "old keys stay"
    new_master = "8:" + "ff" * 32
    key = "8:" + hkdf_sha256(bytes.fromhex("ff" * 32), b"echos-box-key-v1",
                             BOX.encode()).hex()
    Path(edge.conf_path).write_text(text.replace(
        f"token.key = {edge.conf['token.key']}", f"token.key = {key}"))
    edge.proc.signal(signal.SIGHUP)
    wait_for(lambda: "reload: 1 token keys" in edge.proc.log_text(), 5, what="reload")
    assert curl(edge.url("/hup.bin"))[1] == 403, "the old key is gone"
    del new_master


def test_bad_config_exits_2_naming_the_file(tmp_path):
    conf = write_conf(tmp_path / "bad.conf", {"box.id": "bad id!", "cache.max_bytes": "lots"})
    r = run([echos_bin("echos-edge"), "-c", conf])
    assert r.returncode == 2
    assert "bad.conf" in r.stderr and "cache.max_bytes" in r.stderr
    good = write_conf(tmp_path / "good.conf", {
        "box.id": "b1", "box.url": "https://127.0.0.1:1", "listen": "127.0.0.1:1",
        "cache.dir": str(tmp_path / "c"), "shim.url": "http://127.0.0.1:2",
        "token.key": "7:" + box_key_hex("b1")})
    r = run([echos_bin("echos-edge"), "-t", "-c", good])
    assert r.returncode == 0, r.stderr
    r = run([echos_bin("echos-edge"), "-c", good, "-o", "box.id="])
    assert r.returncode == 2 and "box.id" in r.stderr


def test_sigterm_drains_and_reports_draining(setup):
    edge, origin, redis = setup
    wait_for(lambda: redis.hgetall("echos:box:{%s}" % BOX).get("status") == "up", 5,
             what="up")
    edge.proc.signal(signal.SIGTERM)
    wait_for(lambda: edge.proc.popen.poll() is not None, 15, what="exit after drain")
    assert edge.proc.popen.returncode == 0
    assert redis.hgetall("echos:box:{%s}" % BOX).get("status") == "draining"


def test_concurrent_misses_coalesce_into_one_fill(setup):
    edge, origin, _ = setup
    data = os.urandom(6 << 20)
    origin.put("/co/big.bin", data)
    url = edge.url("/co/big.bin")
    jobs = []
    for i in range(8):
        out = f"/tmp/edge-co-{os.getpid()}-{i}"
        argv = ["curl", "-sS", "--max-time", "30", "-o", out, "-w", "%{http_code}"]
        argv += ["--http2-prior-knowledge"] if i % 2 else ["--http1.1"]
        if i == 7:
            argv += ["-r", "1000-1999"]
        jobs.append((out, subprocess.Popen(argv + [url], stdout=subprocess.PIPE)))
    for i, (out, p) in enumerate(jobs):
        code = p.communicate(timeout=40)[0].decode()
        body = Path(out).read_bytes()
        Path(out).unlink()
        if i == 7:
            assert (p.returncode, code, body) == (0, "206", data[1000:2000])
        else:
            assert (p.returncode, code) == (0, "200"), i
            assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), i
    assert origin.hits("/co/big.bin") == 1


def test_slow_viewer_is_dropped_and_the_fill_completes_for_others(procs, tmp_path, redis,
                                                                   origin, certs):
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"fill.viewer_stall": "1s"})
    data = os.urandom(24 << 20)
    origin.put("/slow/big.bin", data)
    url = edge.url("/slow/big.bin")
    out = f"/tmp/edge-slow-{os.getpid()}"
    slow = subprocess.Popen(["curl", "-sS", "--max-time", "40", "--limit-rate", "100K",
                             "-o", out, url], stderr=subprocess.PIPE)
    try:
        # the fill finishes for the cache although the only viewer is slow
        wait_for(lambda: len(edge.objects()) == 1, 30, what="commit despite a slow viewer")
        rc, code, body, _ = curl(url)
        assert (rc, code) == (0, 200) and body == data
        slow.wait(40)
        assert slow.returncode != 0, "the slow viewer is cut, not served a whole body"
        assert Path(out).stat().st_size < len(data)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait(5)
        Path(out).unlink(missing_ok=True)
    assert origin.hits("/slow/big.bin") == 1
    assert edge.metric("echos_edge_viewers_dropped_total") == 1


def test_disk_failure_during_fill_serves_without_caching(setup):
    edge, origin, _ = setup
    data, other = os.urandom(300 * 1024), os.urandom(1000)
    origin.put("/df/a.bin", data)
    origin.put("/df/hit.bin", other)
    assert curl(edge.url("/df/hit.bin"))[2] == other
    # failure injection: tmp/ is no longer a directory, so the temp file cannot be created
    tmp = edge.cache / "tmp"
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    tmp.write_bytes(b"")
    try:
        rc, code, body, _ = curl(edge.url("/df/a.bin"))
        assert (rc, code) == (0, 200) and body == data
        rc, code, body, _ = curl(edge.url("/df/hit.bin"))
        assert (rc, code, body) == (0, 200, other), "hits keep serving"
        assert "serving /df/a.bin without caching" in edge.proc.log_text()
        assert edge.metric("echos_edge_cache_write_errors_total") == 1
        assert len(edge.objects()) == 1
    finally:
        tmp.unlink()
        tmp.mkdir()
