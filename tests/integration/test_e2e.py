"""The whole offload path with every real part: redis-server, the sample origin, the
origin-shim, two boxes in two PoPs and the redirector. Viewers from each PoP's addresses
follow the redirect with curl (h2c, TLS h2, HTTP/1.1); the bytes are compared with the
origin's, the offload ratio echosctl reports is checked against the exact bytes the test
moved, and a killed box stops receiving viewers."""
import hashlib
import json
import time

import pytest

from conftest import echos_bin, free_port, run, wait_for, wait_port, write_conf

MASTER = "1:" + "5a" * 32
BOXES = [("box-p1", "127.0.1.1", "pop1"), ("box-p2", "127.0.2.1", "pop2")]
VIEWER = {"pop1": "127.0.1.100", "pop2": "127.0.2.100", "nowhere": "127.0.9.9"}


class System:
    """All daemons of one test, on free ports."""

    def __init__(self, procs, redis, origin, certs, tmp_path):
        self.redis, self.origin, self.procs = redis, origin, procs
        self.ctl = echos_bin("echosctl")
        shim_port = free_port()
        self.shim_url = f"http://127.0.0.1:{shim_port}"
        conf = write_conf(tmp_path / "shim.conf", {
            "listen": f"127.0.0.1:{shim_port}", "upstream_url": origin.url,
            "spool_dir": str(tmp_path), "redis.addr": redis.addr})
        shim = procs.start("shim", [echos_bin("echos-origin-shim"), "-c", conf])
        wait_port(shim_port, proc=shim)

        self.box = {}
        for box_id, ip, pop in BOXES:
            port, tls_port = free_port(), free_port()
            cache = tmp_path / f"cache-{box_id}"
            cache.mkdir()
            key = run([self.ctl, "derive-key", "--master", MASTER, "--box", box_id]).stdout
            conf = write_conf(tmp_path / f"{box_id}.conf", {
                "box.id": box_id, "box.url": f"https://{ip}:{tls_port}", "box.pop": pop,
                "box.region": "r1", "box.uplink": "10G",
                "listen": f"{ip}:{port}", "listen_tls": f"{ip}:{tls_port}",
                "tls.cert": certs.cert, "tls.key": certs.key, "cache.dir": str(cache),
                "shim.url": self.shim_url, "redis.addr": redis.addr,
                "token.key": key.strip()})
            p = procs.start(box_id, [echos_bin("echos-edge"), "-c", conf])
            wait_port(tls_port, host=ip, proc=p)
            self.box[box_id] = p

        topo = tmp_path / "topology.txt"
        topo.write_text("127.0.1.0/24 pop1 r1\n127.0.2.0/24 pop2 r1\n")
        self.rdr_port, self.rdr_tls = free_port(), free_port()
        conf = write_conf(tmp_path / "redirector.conf", {
            "listen": f"127.0.0.1:{self.rdr_port}",
            "listen_tls": f"127.0.0.1:{self.rdr_tls}",
            "tls.cert": certs.cert, "tls.key": certs.key, "redis.addr": redis.addr,
            "topology.file": str(topo), "token.master": MASTER, "token.sign_kid": 1,
            "origin.url": self.shim_url, "sla.max_class": "asn",
            "sla.min_good_heartbeats": 1})
        rdr = procs.start("redirector", [echos_bin("echos-redirector"), "-c", conf])
        wait_port(self.rdr_tls, proc=rdr)
        for pop in ("pop1", "pop2"):
            wait_for(lambda pop=pop: self.probe(pop).startswith("box-"), 15,
                     what=f"the redirector routing {pop} to a box")

    def probe(self, pop):
        r = run(["curl", "-s", "-o", "/dev/null", "-D", "-", "-I", "--interface",
                 VIEWER[pop], f"http://127.0.0.1:{self.rdr_port}/_probe"], timeout=10)
        for line in r.stdout.splitlines():
            name, _, value = line.partition(":")
            if name.lower() in ("echos-box", "echos-miss"):
                return value.strip()
        return ""

    def download(self, pop, path, proto, out):
        base = (f"https://127.0.0.1:{self.rdr_tls}" if proto == "h2"
                else f"http://127.0.0.1:{self.rdr_port}")
        flag = {"h1": "--http1.1", "h2c": "--http2-prior-knowledge", "h2": "--http2"}[proto]
        r = run(["curl", "-sS", "-L", "-k", "--max-time", "30", "--interface", VIEWER[pop],
                 flag, "-o", str(out), "-w", "%{url_effective}", base + path], timeout=40)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip(), out.read_bytes()

    def offload(self):
        r = run([self.ctl, "--redis", self.redis.addr, "--json", "offload"])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture
def system(procs, redis, origin, certs, tmp_path):
    return System(procs, redis, origin, certs, tmp_path)


def served_by(url):
    if "/t/" not in url:
        return "origin"
    host = url.split("/")[2].split(":")[0]
    return {ip: box for box, ip, _ in BOXES}[host]


def test_viewers_are_served_by_their_pop_and_the_ratio_adds_up(system, origin, tmp_path):
    movie = bytes((i * 7 + 3) % 251 for i in range(3 << 20))  # 3 MiB
    small = b"hello from the origin\n" * 10
    origin.put("/v/movie.mp4", movie)
    origin.put("/s/small.txt", small)
    out = tmp_path / "body"

    # A miss on pop1's box over h2c: the box fills from the shim and streams.
    url, body = system.download("pop1", "/v/movie.mp4", "h2c", out)
    assert served_by(url) == "box-p1"
    assert hashlib.sha256(body).digest() == hashlib.sha256(movie).digest()
    assert origin.hits("/v/movie.mp4") == 1
    # The same object again over TLS h2: a hit, the origin is not contacted.
    url, body = system.download("pop1", "/v/movie.mp4", "h2", out)
    assert served_by(url) == "box-p1" and body == movie
    assert origin.hits("/v/movie.mp4") == 1
    # pop2's viewer over HTTP/1.1 lands on pop2's box.
    url, body = system.download("pop2", "/v/movie.mp4", "h1", out)
    assert served_by(url) == "box-p2" and body == movie
    assert origin.hits("/v/movie.mp4") == 2
    # A viewer the topology does not know: no box in reach, the origin serves.
    url, body = system.download("nowhere", "/s/small.txt", "h1", out)
    assert served_by(url) == "origin" and body == small
    assert system.probe("nowhere") == "no_box_in_reach"

    box_bytes = 3 * len(movie)
    origin_bytes = len(small)
    want = box_bytes / (box_bytes + origin_bytes)
    got = wait_for(lambda: (lambda o: o if o["box_bytes"] == box_bytes
                            and o["origin_bytes"] == origin_bytes else None)(
                                system.offload()), 10, what="accounting flushed to Redis")
    assert got["box_requests"] == 3 and got["origin_requests"] == 1
    assert abs(got["byte_offload"] - want) < 1e-6
    assert got["origin_fill_bytes"] == 2 * len(movie)


def test_a_playlist_plays_through_one_token(system, origin, tmp_path):
    segs = {f"seg{i}.ts": bytes([i]) * (100_000 + i) for i in range(3)}
    origin.put("/hls/show/index.m3u8", ("#EXTM3U\n#EXT-X-TARGETDURATION:4\n" + "".join(
        f"#EXTINF:4.0,\n{name}\n" for name in segs) + "#EXT-X-ENDLIST\n").encode())
    for name, data in segs.items():
        origin.put(f"/hls/show/{name}", data)
    url, body = system.download("pop2", "/hls/show/index.m3u8", "h2", tmp_path / "pl")
    assert served_by(url) == "box-p2"
    base = url.rsplit("/", 1)[0]
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            r = run(["curl", "-sS", "-k", "--fail", "--http2", "-o", str(tmp_path / "seg"),
                     f"{base}/{line}"])
            assert r.returncode == 0, r.stderr
            assert (tmp_path / "seg").read_bytes() == segs[line]


def test_a_killed_box_gets_no_viewers_within_3s(system):
    assert system.probe("pop1") == "box-p1"
    system.box["box-p1"].kill9()
    t0 = time.monotonic()
    wait_for(lambda: system.probe("pop1") != "box-p1", 3.5, interval=0.1,
             what="the redirector dropping the killed box")
    assert time.monotonic() - t0 <= 3.5
    assert system.probe("pop2") == "box-p2"
