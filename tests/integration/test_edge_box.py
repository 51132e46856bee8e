"""echos-edge as a managed box: crash safety (kill -9 during a large fill), startup on
object files written in the store's format, a full disk (a 2 MiB tmpfs), the uplink cap
and the connection limit, drain mode (SIGUSR1 and echosctl drain), prefetch of assigned
and popular objects, and the inventory set in Redis."""
import hashlib
import http.server
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import echos_bin, free_port, run, wait_for
from edge_objfiles import object_file, write_many, write_object
from test_edge import BOX, Edge, curl, mint, start_shim

MiB = 1 << 20


# ---- a slow origin that answers like the shim (Content-Length, Repr-Digest) ---------------

class SlowOrigin:
    """Serves in-memory objects at about `rate` bytes/s, with the shim's Repr-Digest, so a
    box can be pointed at it directly (shim.url) and a fill takes a known time."""

    def __init__(self, rate):
        self.objects, self.hits, self.rate = {}, {}, rate
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = outer.objects.get(self.path)
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                import base64
                digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Repr-Digest", f"sha-256=:{digest}:")
                self.end_headers()
                chunk, t0, sent = 256 * 1024, time.monotonic(), 0
                try:
                    while sent < len(body):
                        self.wfile.write(body[sent:sent + chunk])
                        sent += chunk
                        ahead = sent / outer.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_origin():
    o = SlowOrigin(rate=24 * MiB)
    yield o
    o.close()


def parts(edge):
    return list((edge.cache / "tmp").glob("*.part"))


def part_size(edge):
    return sum(p.stat().st_size for p in parts(edge) if p.exists())


def sha(b):
    return hashlib.sha256(b).hexdigest()


def hb(redis):
    return redis.hgetall("echos:box:{%s}" % BOX)


# ---- crash safety ------------------------------------------------------------------------

def test_kill9_during_a_large_fill_never_serves_a_torn_object(procs, tmp_path, redis,
                                                              certs, slow_origin):
    data = os.urandom(64 * MiB)
    slow_origin.objects["/big/movie.mp4"] = data
    edge = Edge(procs, tmp_path, slow_origin.url, redis, certs,
                **{"cache.max_bytes": "512M", "uplink.enforce": "no"})
    url = edge.url("/big/movie.mp4", token=mint("/big/movie.mp4", ttl=600))
    final = object_file(edge.cache, "/big/movie.mp4")
    out = tmp_path / "viewer.bin"

    # kill -9 at several points of the fill: early, middle, near the end
    for i, at in enumerate((2 * MiB, 24 * MiB, 56 * MiB)):
        viewer = subprocess.Popen(["curl", "-sS", "--http1.1", "--max-time", "30", "-o",
                                   str(out), url], stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: part_size(edge) >= at, 20, interval=0.01,
                     what=f"fill past {at} bytes")
            assert not final.exists(), "an object file before the commit"
            edge.proc.kill9()
            viewer.wait(20)
        finally:
            if viewer.poll() is None:
                viewer.kill()
                viewer.wait(5)
        assert viewer.returncode != 0, "a viewer of a killed fill sees a cut transfer"
        assert out.stat().st_size < len(data)
        assert parts(edge), "the killed fill left its temp file behind"
        assert not final.exists()
        edge.start()
        assert parts(edge) == [], "startup removes unfinished fills"
        assert not final.exists()
        assert "removed unfinished fill" in edge.proc.log_text()
        assert edge.metric("echos_edge_cache_objects") == 0
        assert slow_origin.hits["/big/movie.mp4"] == i + 1

    # now let it finish: the whole, verified object, then a hit that survives kill -9
    rc, code, body, _ = curl(url, timeout=60)
    assert (rc, code) == (0, 200) and sha(body) == sha(data)
    wait_for(final.exists, 10, what="commit")
    assert slow_origin.hits["/big/movie.mp4"] == 4
    edge.proc.kill9()
    edge.start()
    assert edge.metric("echos_edge_cache_objects") == 1
    for proto in ("h1", "h2c"):
        rc, code, body, _ = curl(url, proto=proto, timeout=60)
        assert (rc, code) == (0, 200) and sha(body) == sha(data), proto
    rc, code, body, _ = curl(url, "-r", f"{32 * MiB}-{33 * MiB - 1}")
    assert (code, body) == (206, data[32 * MiB:33 * MiB])
    assert slow_origin.hits["/big/movie.mp4"] == 4, "served from the cache"


def test_startup_indexes_object_files_written_in_the_store_format(procs, tmp_path, redis,
                                                                   origin, certs):
    cache = tmp_path / "cache"
    sample = write_many(cache, 2000, size=700, prefix="/gen")
    # damaged neighbours: a truncated copy and a file under the wrong name
    bad = write_object(cache, "/gen/bad.bin", b"x" * 5000)
    with open(bad, "r+b") as fh:
        fh.truncate(3000)
    wrong = object_file(cache, "/gen/elsewhere.bin")
    wrong.parent.mkdir(parents=True, exist_ok=True)
    wrong.write_bytes(Path(write_object(cache, "/gen/moved.bin", b"y" * 10)).read_bytes())
    object_file(cache, "/gen/moved.bin").unlink()
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs)
    assert edge.metric("echos_edge_cache_objects") == 2000
    assert not bad.exists() and not wrong.exists()
    for path, body in sample.items():
        rc, code, got, h = curl(edge.url(path))
        assert (rc, code, got) == (0, 200, body), path
    assert origin.hits("/gen/0.bin") == 0
    # the inventory lists what the box holds
    inv = "echos:inv:{%s}" % BOX
    wait_for(lambda: redis.cli("SCARD", inv) == "2000", 10, what="inventory written")
    assert redis.cli("SISMEMBER", inv, "/gen/1999.bin") == "1"
    assert 0 < int(redis.cli("PTTL", inv))


# ---- full disk ------------------------------------------------------------------------------

def can_mount_tmpfs():
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d"
                        " && rmdir $d"], capture_output=True, timeout=10)
    return r.returncode == 0


def test_full_disk_abandons_the_fill_and_hits_keep_serving(procs, tmp_path, redis, origin,
                                                           certs):
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"cache.max_bytes": "64M"})
    edge.proc.stop()
    cache = edge.cache
    for p in sorted(cache.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    exe, conf = echos_bin("echos-edge"), edge.conf_path
    if can_mount_tmpfs():
        # a private mount namespace: the 2 MiB tmpfs exists for the box only
        argv = ["unshare", "-m", "sh", "-c",
                f"mount -t tmpfs -o size=2m tmpfs '{cache}' && exec '{exe}' -c '{conf}'"]
        expect = "No space left on device"
    else:
        # no mount namespace here (not root): a 2 MiB file size limit stands in for the
        # small disk; SIGXFSZ is ignored so that writes fail with EFBIG instead
        argv = ["sh", "-c", f"ulimit -f 4096; trap '' XFSZ; exec '{exe}' -c '{conf}'"]
        expect = "File too large"
    from conftest import wait_port
    edge.proc = procs.start("echos-edge", argv)
    wait_port(edge.port, 15, proc=edge.proc)
    wait_port(edge.admin_port, 15, proc=edge.proc)

    small, big, after = os.urandom(300 * 1024), os.urandom(3 * MiB), os.urandom(400 * 1024)
    origin.put("/fd/small.bin", small)
    origin.put("/fd/big.bin", big)
    origin.put("/fd/after.bin", after)
    assert curl(edge.url("/fd/small.bin"))[:3] == (0, 200, small)
    wait_for(lambda: edge.metric("echos_edge_cache_objects") == 1, 5, what="small cached")

    for proto in ("h1", "h2c"):
        rc, code, body, _ = curl(edge.url("/fd/big.bin"), proto=proto)
        assert (rc, code) == (0, 200) and sha(body) == sha(big), "the viewer gets its bytes"
        rc, code, body, _ = curl(edge.url("/fd/small.bin"), proto=proto)
        assert (rc, code, body) == (0, 200, small), "hits keep serving"
    log = edge.proc.log_text()
    assert f"{expect}; serving /fd/big.bin without caching" in log, log[-3000:]
    assert edge.metric("echos_edge_cache_write_errors_total") == 2
    assert origin.hits("/fd/big.bin") == 2 and origin.hits("/fd/small.bin") == 1
    # the abandoned temp file was removed: a smaller object still fits and is committed
    assert curl(edge.url("/fd/after.bin"))[:3] == (0, 200, after)
    wait_for(lambda: edge.metric("echos_edge_cache_objects") == 2, 5, what="after cached")
    assert curl(edge.url("/fd/after.bin"))[:3] == (0, 200, after)
    assert origin.hits("/fd/after.bin") == 1


# ---- uplink cap, connection limit ------------------------------------------------------------

def test_uplink_cap_holds_within_10_percent_with_parallel_downloads(procs, tmp_path, redis,
                                                                     origin, certs):
    rate_bps = 40_000_000  # 5 MB/s
    cache = tmp_path / "cache"
    objs = {f"/cap/{i}.bin": os.urandom(16 * MiB) for i in range(3)}
    for path, body in objs.items():
        write_object(cache, path, body)
    miss = os.urandom(16 * MiB)
    origin.put("/cap/miss.bin", miss)
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"box.uplink": str(rate_bps),
                                                         "heartbeat.interval": "500ms"})
    seconds = 5
    jobs = []
    for i, path in enumerate(list(objs) + ["/cap/miss.bin"]):
        argv = ["curl", "-s", "--max-time", str(seconds), "-o", "/dev/null", "-w",
                "%{size_download}"]
        argv.append("--http2-prior-knowledge" if i % 2 else "--http1.1")
        jobs.append(subprocess.Popen(argv + [edge.url(path)], stdout=subprocess.PIPE))
    egress = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds - 0.5:
        time.sleep(0.5)
        if time.monotonic() - t0 > 1.5:
            egress.append(int(hb(redis).get("egress_bps", 0)))
    total = sum(int(p.communicate(timeout=20)[0] or 0) for p in jobs)
    got = total * 8 / seconds
    print(f"uplink cap {rate_bps} bit/s: got {got:.0f} bit/s over {seconds}s with "
          f"{len(jobs)} downloads; heartbeat egress_bps {egress}")
    assert abs(got - rate_bps) <= 0.10 * rate_bps, got
    # the heartbeat reports what is sent as it is sent, not when a response closes
    assert egress and all(abs(e - rate_bps) <= 0.25 * rate_bps for e in egress), egress


def test_connection_limit_closes_extra_connections(procs, tmp_path, redis, origin, certs):
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"max_conns": "3"})
    origin.put("/mc.bin", b"m" * 100)
    req = ("GET /t/%s/mc.bin HTTP/1.1\r\nHost: x\r\n\r\n" % mint("/mc.bin")).encode()

    def get(s):
        s.sendall(req)
        s.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"m" * 100):
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
        return data

    held = [socket.create_connection(("127.0.0.1", edge.port), timeout=5) for _ in range(3)]
    try:
        for s in held:
            assert get(s).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as extra:
            try:
                extra.sendall(req)
                extra.settimeout(5)
                assert extra.recv(65536) == b"", "a 4th connection is closed at once"
            except (ConnectionResetError, BrokenPipeError):
                pass
        wait_for(lambda: hb(redis).get("conns") == "3", 5, what="conns in the heartbeat")
        held.pop().close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as again:
            assert get(again).startswith(b"HTTP/1.1 200"), "room again after a close"
    finally:
        for s in held:
            s.close()


# ---- drain ----------------------------------------------------------------------------------

def drain_case(procs, tmp_path, redis, origin, certs, enter, leave):
    cache = tmp_path / "cache"
    data = os.urandom(8 * MiB)
    write_object(cache, "/dr/long.bin", data)
    origin.put("/dr/new.bin", b"n" * 1000)
    shim = start_shim(procs, origin, redis)
    # 16 Mbit/s: the 8 MiB download takes about 4 s
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"box.uplink": "16M"})
    wait_for(lambda: hb(redis).get("status") == "up", 5, what="up")
    out = tmp_path / "long.bin"
    viewer = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-o", str(out),
                               edge.url("/dr/long.bin")], stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        enter(edge)
        wait_for(lambda: hb(redis).get("status") == "draining", 3, what="draining")
        assert viewer.poll() is None, "still in flight when the drain starts"
        # new requests are still answered (the redirector stops sending them)
        assert curl(edge.url("/dr/new.bin"))[:3] == (0, 200, b"n" * 1000)
        viewer.wait(30)
    finally:
        if viewer.poll() is None:
            viewer.kill()
            viewer.wait(5)
    assert viewer.returncode == 0 and sha(out.read_bytes()) == sha(data), \
        "the in-flight download finishes whole"
    assert hb(redis).get("status") == "draining"
    leave(edge)
    wait_for(lambda: hb(redis).get("status") == "up", 3, what="up again")
    assert edge.proc.alive()


def test_sigusr1_drains_and_keeps_serving_in_flight(procs, tmp_path, redis, origin, certs):
    drain_case(procs, tmp_path, redis, origin, certs,
               lambda e: e.proc.signal(signal.SIGUSR1),
               lambda e: e.proc.signal(signal.SIGUSR2))


def test_echosctl_drain_and_undrain(procs, tmp_path, redis, origin, certs):
    def ctl(cmd):
        r = run([echos_bin("echosctl"), "--redis", redis.addr, cmd, BOX])
        assert r.returncode == 0, r.stderr
    drain_case(procs, tmp_path, redis, origin, certs, lambda e: ctl("drain"),
               lambda e: ctl("undrain"))


# ---- prefetch and inventory -----------------------------------------------------------------

def shim_acct(redis, field):
    return int(redis.hgetall("echos:acct:total").get(field, 0))


def test_prefetch_of_an_assigned_object_makes_the_first_request_a_hit(procs, tmp_path, redis,
                                                                       origin, certs):
    data = os.urandom(2 * MiB)
    origin.put("/pf/assigned.bin", data)
    origin.put("/pf/popular.bin", b"p" * 5000)
    shim = start_shim(procs, origin, redis)
    # popularity exists too: an assignment takes precedence over it
    minute = int(time.time()) // 60
    redis.cli("ZINCRBY", "echos:pop:{region-1}:m:%d" % minute, 50, "/pf/popular.bin")
    redis.cli("SADD", "echos:assign:{%s}" % BOX, "/pf/assigned.bin", "/pf/../etc/passwd")
    edge = Edge(procs, tmp_path, shim, redis, certs, **{"prefetch.bps": "200M",
                                                         "prefetch.interval": "300ms"})
    inv = "echos:inv:{%s}" % BOX
    wait_for(lambda: redis.cli("SISMEMBER", inv, "/pf/assigned.bin") == "1", 15,
             what="assigned object in the inventory")
    assert origin.hits("/pf/assigned.bin") == 1
    wait_for(lambda: shim_acct(redis, "origin.prefetch_reqs") == 1, 5,
             what="the shim counted a prefetch")
    assert shim_acct(redis, "origin.fill_reqs") == 0
    assert edge.metric("echos_edge_prefetches_total", {"result": "ok"}) == 1
    assert edge.metric("echos_edge_prefetch_bytes_total") == len(data)
    wait_for(lambda: int(redis.hgetall("echos:acct:total").get("box.prefetch_bytes", 0))
             == len(data), 5, what="box.prefetch_bytes")
    # the first viewer of this box is served from the cache
    for proto in ("h2c", "h1"):
        rc, code, body, _ = curl(edge.url("/pf/assigned.bin"), proto=proto)
        assert (rc, code) == (0, 200) and sha(body) == sha(data)
    assert edge.metric("echos_edge_requests_total", {"result": "hit"}) == 2
    assert edge.metric("echos_edge_requests_total", {"result": "miss"}) == 0
    assert origin.hits("/pf/assigned.bin") == 1, "no new origin request"
    assert origin.hits("/pf/popular.bin") == 0, "assignments come first"
    assert origin.hits("/etc/passwd") == 0 and origin.hits("/pf/../etc/passwd") == 0

    # an evicted or removed object leaves the inventory
    redis.cli("DEL", "echos:assign:{%s}" % BOX)
    wait_for(lambda: redis.cli("SISMEMBER", inv, "/pf/popular.bin") == "1", 15,
             what="popular object prefetched once no assignment is left")
    assert origin.hits("/pf/popular.bin") == 1


def test_popular_prefetch_is_paced_and_never_evicts(procs, tmp_path, redis, origin, certs):
    cache = tmp_path / "cache"
    write_object(cache, "/keep/old.bin", os.urandom(5 * MiB))
    origin.put("/pp/slow.bin", os.urandom(3 * MiB))
    origin.put("/pp/huge.bin", os.urandom(4 * MiB))
    shim = start_shim(procs, origin, redis)
    minute = int(time.time()) // 60
    # counts over two minutes add up: huge.bin ranks first (3+3) but does not fit
    redis.cli("ZINCRBY", "echos:pop:{region-1}:m:%d" % minute, 3, "/pp/huge.bin")
    redis.cli("ZINCRBY", "echos:pop:{region-1}:m:%d" % (minute - 1), 3, "/pp/huge.bin")
    redis.cli("ZINCRBY", "echos:pop:{region-1}:m:%d" % (minute - 1), 4, "/pp/slow.bin")
    redis.cli("ZINCRBY", "echos:pop:{region-9}:m:%d" % minute, 99, "/pp/other-region.bin")
    t0 = time.monotonic()
    # 9 MiB of room: 5 MiB held, slow.bin (3 MiB) fits, huge.bin (4 MiB) would evict
    edge = Edge(procs, tmp_path, shim, redis, certs, **{
        "prefetch.bps": "8M", "prefetch.interval": "300ms", "cache.max_bytes": "9M"})
    inv = "echos:inv:{%s}" % BOX
    wait_for(lambda: redis.cli("SISMEMBER", inv, "/pp/slow.bin") == "1", 20,
             what="popular object prefetched")
    took = time.monotonic() - t0
    # 3 MiB at 8 Mbit/s (1 MB/s) takes about 3 s: well above what the link allows
    assert took >= 2.0, f"prefetch not paced: {took:.1f}s"
    wait_for(lambda: edge.metric("echos_edge_prefetches_total", {"result": "skipped"}) >= 1,
             10, what="huge.bin skipped")
    assert redis.cli("SISMEMBER", inv, "/keep/old.bin") == "1", "nothing evicted"
    assert redis.cli("SISMEMBER", inv, "/pp/huge.bin") == "0"
    assert "does not fit in the cache's free space" in edge.proc.log_text()
    assert origin.hits("/pp/other-region.bin") == 0
