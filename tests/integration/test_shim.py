"""echos-origin-shim in front of tools/sample-origin.py, with a real redis-server: digests,
ranges, HEAD, upstream failures, request checks, and byte accounting by kind in
/metrics and in Redis (docs/redis.md). Requests go through http.client so that targets
reach the shim exactly as written."""
import base64
import email.utils
import hashlib
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import echos_bin, free_port, run, wait_for, wait_port, write_conf

DIGEST_RE = re.compile(r"^sha-256=:[A-Za-z0-9+/]{43}=:$")  # RFC 9530, one sha-256 member


def blob(n, seed):
    """n deterministic pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:n])


def repr_digest(data):
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


class Shim:
    def __init__(self, procs, tmp_path, upstream, redis_addr="", **extra):
        self.port = free_port()
        self.admin_port = free_port()
        spool = tmp_path / "spool"
        spool.mkdir(exist_ok=True)
        conf = {
            "listen": f"127.0.0.1:{self.port}",
            "upstream_url": upstream,
            "redis.addr": redis_addr,
            "admin.listen": f"127.0.0.1:{self.admin_port}",
            "spool_dir": str(spool),
            "upstream.timeout": "2s",
            "upstream.connect_timeout": "1s",
            "log.level": "debug",
        }
        conf.update({k.replace("__", "."): v for k, v in extra.items()})
        self.conf = write_conf(tmp_path / f"shim-{self.port}.conf", conf)
        self.proc = procs.start("echos-origin-shim",
                                [echos_bin("echos-origin-shim"), "-c", self.conf])
        wait_port(self.port, 10, proc=self.proc)
        wait_port(self.admin_port, 10, proc=self.proc)

    def request(self, path, method="GET", headers=None):
        """(status, headers with lower-case names, body) for one request sent as written."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            assert r.status == 200
            text = r.read().decode()
        finally:
            c.close()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


def test_digest_header_is_sha256_of_the_bytes(procs, origin, tmp_path):
    data = blob(300_000, 1)
    origin.put("/v/a/seg0.ts", data)
    shim = Shim(procs, tmp_path, origin.url)
    status, h, body = shim.request("/v/a/seg0.ts")
    assert status == 200
    assert body == data
    assert DIGEST_RE.match(h["repr-digest"]), h["repr-digest"]
    assert h["repr-digest"] == repr_digest(data)
    assert h["content-length"] == str(len(data))
    assert h["content-type"] == "video/mp2t"
    assert h["accept-ranges"] == "bytes"
    assert "last-modified" in h
    assert h["etag"].startswith('"')  # the origin's strong ETag
    assert h["access-control-allow-origin"] == "*"
    expose = {x.strip().lower() for x in h["access-control-expose-headers"].split(",")}
    assert {"content-length", "content-range", "repr-digest", "etag"} <= expose


class _NoStrongETag(BaseHTTPRequestHandler):
    """An origin whose ETags are weak or absent: the shim must make its own."""
    protocol_version = "HTTP/1.1"
    body = b"an object without a strong validator\n"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        if self.path == "/weak":
            self.send_header("ETag", 'W/"v1"')
        self.end_headers()
        self.wfile.write(self.body)


def test_etag_falls_back_to_the_digest_when_upstream_has_no_strong_etag(procs, tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _NoStrongETag)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        shim = Shim(procs, tmp_path, f"http://127.0.0.1:{srv.server_address[1]}")
        want = '"' + hashlib.sha256(_NoStrongETag.body).hexdigest()[:16] + '"'
        for path in ("/none", "/weak"):
            status, h, body = shim.request(path)
            assert status == 200 and body == _NoStrongETag.body
            assert h["etag"] == want, path
            assert h["content-type"] == "application/octet-stream"
            assert "last-modified" not in h
    finally:
        srv.shutdown()
        srv.server_close()


def test_ranges_answer_206_with_exact_content_range_and_416_when_unsatisfiable(
        procs, origin, tmp_path):
    data = blob(10_000, 2)
    origin.put("/r.bin", data)
    shim = Shim(procs, tmp_path, origin.url)
    n = len(data)
    cases = [("bytes=10-19", 10, 19), ("bytes=9990-", 9990, n - 1), ("bytes=-5", n - 5, n - 1),
             ("bytes=9995-20000", 9995, n - 1), ("bytes=0-0", 0, 0)]
    for rng, first, last in cases:
        status, h, body = shim.request("/r.bin", headers={"Range": rng})
        assert status == 206, rng
        assert h["content-range"] == f"bytes {first}-{last}/{n}", rng
        assert body == data[first:last + 1], rng
        assert h["content-length"] == str(last - first + 1)
        assert h["repr-digest"] == repr_digest(data), "Repr-Digest is the full object's"
    for rng in ("bytes=10000-", "bytes=20000-20001", "bytes=-0"):
        status, h, body = shim.request("/r.bin", headers={"Range": rng})
        assert status == 416, rng
        assert h["content-range"] == f"bytes */{n}", rng
    # a list of ranges and a malformed range are ignored: the whole object
    for rng in ("bytes=0-1,5-6", "bytes=5-2", "items=0-1"):
        status, h, body = shim.request("/r.bin", headers={"Range": rng})
        assert status == 200 and body == data, rng


def test_head_has_the_headers_and_no_body_and_counts_no_bytes(procs, origin, tmp_path):
    data = blob(5000, 3)
    origin.put("/h.mp4", data)
    shim = Shim(procs, tmp_path, origin.url)
    status, h, body = shim.request("/h.mp4", method="HEAD")
    assert status == 200
    assert body == b""
    assert h["content-length"] == str(len(data))
    assert h["repr-digest"] == repr_digest(data)
    assert h["content-type"] == "video/mp4"
    m = shim.metrics()
    assert m['echos_shim_bytes_total{kind="fallback"}'] == 0
    assert m['echos_shim_requests_total{kind="fallback",code="200"}'] == 1


def test_upstream_404_is_404_and_query_is_passed_through(procs, origin, tmp_path):
    shim = Shim(procs, tmp_path, origin.url)
    status, _, _ = shim.request("/no/such/object.ts")
    assert status == 404
    origin.put("/q.txt", b"q")
    shim.request("/q.txt")
    status, _, body = shim.request("/_hits?path=/q.txt")
    assert status == 200
    assert b'"hits": 1' in body, body


def test_dead_upstream_is_502_and_the_shim_keeps_serving(procs, origin, tmp_path):
    data = blob(1000, 4)
    origin.put("/d.bin", data)
    shim = Shim(procs, tmp_path, origin.url)
    assert shim.request("/d.bin")[0] == 200
    origin.proc.kill9()
    status, _, body = shim.request("/d.bin")
    assert status == 502
    assert body.count(b"\n") == 1
    wait_for(lambda: "answering 502" in shim.proc.log_text(), 5, what="the 502 log line")
    assert re.search(r"upstream http://127\.0\.0\.1:\d+/d\.bin: .*; answering 502",
                     shim.proc.log_text())
    assert shim.metrics()["echos_shim_upstream_errors_total"] >= 1
    origin.proc.start()
    wait_port(origin.port, 10, proc=origin.proc)
    status, _, body = shim.request("/d.bin")
    assert status == 200 and body == data


def test_upstream_5xx_and_silent_upstream_are_502(procs, origin, tmp_path):
    shim = Shim(procs, tmp_path, origin.url)
    assert shim.request("/_status/503")[0] == 502
    assert shim.request("/_status/403")[0] == 403  # other 4xx pass through
    # an upstream that accepts and never answers: upstream.timeout (1s) applies
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        shim2 = Shim(procs, tmp_path, f"http://127.0.0.1:{port}", upstream__timeout="1s")
        t0 = time.monotonic()
        status, _, _ = shim2.request("/x")
        assert status == 502
        assert time.monotonic() - t0 < 8


def test_object_over_max_object_size_is_502(procs, origin, tmp_path):
    origin.put("/big.bin", blob(4096, 5))
    origin.put("/ok.bin", blob(512, 6))
    shim = Shim(procs, tmp_path, origin.url, max_object_size="1K")
    assert shim.request("/big.bin")[0] == 502
    assert shim.request("/ok.bin")[0] == 200


def test_upstream_repr_digest_is_passed_through_unchanged(procs, origin, tmp_path):
    origin.put("/p/x.ts", b"these bytes do not match the digest below")
    wrong = "sha-256=:" + base64.b64encode(b"\0" * 32).decode() + ":"
    origin.put("/p/x.ts.repr-digest", (wrong + "\n").encode())
    shim = Shim(procs, tmp_path, origin.url)
    status, h, _ = shim.request("/p/x.ts")
    assert status == 200
    assert h["repr-digest"] == wrong
    status, h, _ = shim.request("/p/x.ts", headers={"Range": "bytes=0-3"})
    assert status == 206 and h["repr-digest"] == wrong


@pytest.mark.parametrize("target", [
    "/v/../etc/passwd", "/v/%2e%2e/x", "/v/%2E./x", "/a/./b", "/a%2fb", "/a%2Fb", "/a%5cb",
    "/a%00b", "/a%zzb", "/a\\b", "/a%0ab", "*", "http://127.0.0.1/x",
])
def test_path_traversal_and_bad_targets_are_400(procs, origin, tmp_path, target):
    shim = Shim(procs, tmp_path, origin.url)
    status, h, body = shim.request(target)
    assert status == 400, target
    assert body.count(b"\n") == 1
    assert h["access-control-allow-origin"] == "*"
    assert origin.hits("/etc/passwd") == 0


def test_methods_other_than_get_and_head_are_405(procs, origin, tmp_path):
    shim = Shim(procs, tmp_path, origin.url)
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        status, h, _ = shim.request("/x", method=method)
        assert status == 405, method
        assert h["allow"] == "GET, HEAD"
    status, h, _ = shim.request("/x", method="OPTIONS", headers={
        "Origin": "null", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert status == 204
    assert "Range" in h["access-control-allow-headers"]


def test_fill_and_fallback_bytes_are_counted_in_metrics_and_redis(procs, origin, redis,
                                                                  tmp_path):
    a, b, c = blob(1000, 7), blob(2000, 8), blob(3000, 9)
    origin.put("/a.ts", a)
    origin.put("/b.ts", b)
    origin.put("/c.ts", c)
    shim = Shim(procs, tmp_path, origin.url, redis_addr=redis.addr)
    assert shim.request("/a.ts")[0] == 200
    assert shim.request("/a.ts", method="HEAD")[0] == 200
    for _ in range(2):
        assert shim.request("/b.ts", headers={"Echos-Fill": "box-1"})[0] == 200
    assert shim.request("/c.ts", headers={"Echos-Fill": "box-2",
                                          "Echos-Fill-Kind": "prefetch"})[0] == 200
    assert shim.request("/b.ts", headers={"Echos-Fill": "box-1",
                                          "Range": "bytes=0-99"})[0] == 206

    m = shim.metrics()
    assert m['echos_shim_bytes_total{kind="fallback"}'] == len(a)
    assert m['echos_shim_bytes_total{kind="fill"}'] == 2 * len(b) + 100
    assert m['echos_shim_bytes_total{kind="prefetch"}'] == len(c)
    assert m['echos_shim_requests_total{kind="fill",code="200"}'] == 2
    assert m['echos_shim_requests_total{kind="fill",code="206"}'] == 1
    assert m['echos_shim_requests_total{kind="fallback",code="200"}'] == 2

    want = {
        "origin.fallback_bytes": str(len(a)), "origin.fallback_reqs": "2",
        "origin.fill_bytes": str(2 * len(b) + 100), "origin.fill_reqs": "3",
        "origin.prefetch_bytes": str(len(c)),
    }

    def flushed():
        got = redis.hgetall("echos:acct:total")
        return all(got.get(k) == v for k, v in want.items()) and got
    wait_for(flushed, 5, what="accounting in echos:acct:total")
    minutes = [k for k in redis.cli("KEYS", "echos:acct:m:*").splitlines() if k]
    assert minutes
    for key in minutes:
        assert 0 < int(redis.cli("TTL", key)) <= 172800
    total = sum(int(redis.hgetall(k).get("origin.fill_bytes", 0)) for k in minutes)
    assert total == 2 * len(b) + 100
    assert shim.proc.stop() == 0  # SIGTERM drains and exits 0 (and ASan finds no leak)


def test_redis_down_at_start_then_counts_arrive_once_it_runs(procs, origin, redis,
                                                             tmp_path):
    data = blob(4321, 10)
    origin.put("/late.ts", data)
    redis.stop()
    shim = Shim(procs, tmp_path, origin.url, redis_addr=redis.addr)
    assert shim.request("/late.ts")[0] == 200
    assert shim.request("/late.ts", headers={"Echos-Fill": "b"})[0] == 200
    wait_for(lambda: "keeping counts, retrying in 1s" in shim.proc.log_text(), 5,
             what="the outage log line")
    redis.start()
    wait_for(lambda: redis.hgetall("echos:acct:total").get("origin.fallback_bytes")
             == str(len(data)), 10, what="counts kept during the outage")
    got = redis.hgetall("echos:acct:total")
    assert got["origin.fill_bytes"] == str(len(data))
    assert got["origin.fallback_reqs"] == "1"
    assert shim.proc.log_text().count("keeping counts") == 1  # once per outage


def test_bad_config_exits_2_naming_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("listen = 127.0.0.1:1\nthreads = many\nno_such_key = 1\n"
                    "upstream_url = ftp://origin\n")
    for extra in (["-t"], []):
        r = run([echos_bin("echos-origin-shim"), "-c", conf, *extra], timeout=20)
        assert r.returncode == 2, r.stderr
        assert f"{conf}:2: threads" in r.stderr
        assert f"{conf}:3: no_such_key" in r.stderr
        assert f"{conf}:4: upstream_url" in r.stderr
    good = tmp_path / "good.conf"
    good.write_text(f"spool_dir = {tmp_path}\nredis.addr =\n")
    r = run([echos_bin("echos-origin-shim"), "-c", good, "-t"], timeout=20)
    assert r.returncode == 0, r.stderr
    r = run([echos_bin("echos-origin-shim"), "--help"], timeout=20)
    assert r.returncode == 0 and "upstream_url" in r.stdout
    r = run([echos_bin("echos-origin-shim"), "--version"], timeout=20)
    assert r.returncode == 0 and r.stdout.startswith("echos-origin-shim ")


def test_sighup_reloads_the_log_level(procs, origin, tmp_path):
    origin.put("/s.txt", b"s")
    shim = Shim(procs, tmp_path, origin.url)
    text = open(shim.conf).read().replace("log.level = debug", "log.level = warn")
    open(shim.conf, "w").write(text)
    shim.proc.signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP: reloaded" in shim.proc.log_text(), 5, what="reload log")
    before = shim.proc.log_text().count("debug:")
    assert shim.request("/s.txt")[0] == 200
    time.sleep(0.2)
    assert shim.proc.log_text().count("debug:") == before


def test_head_after_get_uses_the_digest_cache_and_never_a_stale_one(procs, origin,
                                                                    tmp_path):
    data = blob(50_000, 11)
    origin.put("/hc.bin", data)
    shim = Shim(procs, tmp_path, origin.url)
    assert shim.request("/hc.bin")[0] == 200
    status, h, body = shim.request("/hc.bin", method="HEAD")
    assert status == 200 and body == b""
    assert h["repr-digest"] == repr_digest(data)
    assert h["content-length"] == str(len(data))
    assert h["content-type"] == "application/octet-stream"
    assert origin.hits("/hc.bin") == 1  # validators checked by an upstream HEAD only
    # new bytes of the same length: the validators change, the digest follows
    new = blob(50_000, 12)
    origin.put("/hc.bin", new)
    status, h, _ = shim.request("/hc.bin", method="HEAD")
    assert status == 200 and h["repr-digest"] == repr_digest(new)
    assert origin.hits("/hc.bin") == 2
    status, h, _ = shim.request("/hc.bin", method="HEAD")
    assert h["repr-digest"] == repr_digest(new)
    assert origin.hits("/hc.bin") == 2
    # the origin's own digest on HEAD needs no download at all
    origin.put("/hd.ts", b"with a digest of its own")
    own = "sha-256=:" + base64.b64encode(b"\1" * 32).decode() + ":"
    origin.put("/hd.ts.repr-digest", (own + "\n").encode())
    status, h, _ = shim.request("/hd.ts", method="HEAD")
    assert status == 200 and h["repr-digest"] == own
    assert h["content-length"] == str(len(b"with a digest of its own"))
    assert origin.hits("/hd.ts") == 0
    m = shim.metrics()
    assert m['echos_shim_head_digests_total{source="cache"}'] == 2
    assert m['echos_shim_head_digests_total{source="fetch"}'] == 1
    assert m['echos_shim_head_digests_total{source="upstream"}'] == 1
    # upstream gone: a HEAD is 502, once, without a second attempt by GET
    origin.proc.kill9()
    assert shim.request("/hc.bin", method="HEAD")[0] == 502


class _LastModifiedOnly(BaseHTTPRequestHandler):
    """An origin with Last-Modified and no ETag; `modified` is the object's mtime."""
    protocol_version = "HTTP/1.1"
    body = b"version one\n"
    modified = 0.0
    gets = 0

    def log_message(self, *args):
        pass

    def head_fields(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(type(self).body)))
        self.send_header("Last-Modified", email.utils.formatdate(type(self).modified,
                                                                 usegmt=True))
        self.end_headers()

    def do_HEAD(self):
        self.head_fields()

    def do_GET(self):
        type(self).gets += 1
        self.head_fields()
        self.wfile.write(type(self).body)


def test_head_digest_cache_trusts_last_modified_only_when_it_is_old(procs, tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _LastModifiedOnly)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        shim = Shim(procs, tmp_path, f"http://127.0.0.1:{srv.server_address[1]}")
        _LastModifiedOnly.modified = time.time() + 5  # not before Date: a weak validator
        for _ in range(2):
            status, h, _ = shim.request("/o", method="HEAD")
            assert status == 200 and h["repr-digest"] == repr_digest(b"version one\n")
        assert _LastModifiedOnly.gets == 2
        _LastModifiedOnly.modified = time.time() - 3600  # strong (RFC 9110 8.8.2.2)
        assert shim.request("/o")[0] == 200
        assert shim.request("/o", method="HEAD")[2] == b""
        assert _LastModifiedOnly.gets == 3
    finally:
        srv.shutdown()
        srv.server_close()
