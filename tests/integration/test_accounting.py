"""Offload per service and per region, written by the real daemons: redis-server, the
sample origin, the origin-shim (topology and services), two boxes in two regions, the
redirector (services by prefix, one always over capacity) and echos-policy. A scripted
run of box hits, fills and origin fallbacks of known sizes from both regions and three
services must show the exact expected sums and ratios in `echosctl offload --json
--service S / --region R`, `echosctl fallbacks`, echos-policy's /api/offload and, for
the totals, in every daemon's /metrics."""
import json
import urllib.error
import urllib.request

import pytest

from conftest import echos_bin, free_port, run, wait_for, wait_port, write_conf

MASTER = "1:" + "3c" * 32
# box id, address, PoP, region
BOXES = [("box-n", "127.0.1.1", "pop-n", "north"), ("box-s", "127.0.2.1", "pop-s", "south")]
VIEWER = {"north": "127.0.1.100", "south": "127.0.2.100"}
# probes that wait for the routing come from addresses the topology puts in a region of
# their own, under a service of their own, so they stay out of the numbers checked
PROBE = {"north": "127.0.1.200", "south": "127.0.2.200"}
TOPOLOGY = ("127.0.1.0/24 pop-n north\n127.0.2.0/24 pop-s south\n"
            "127.0.1.200/32 pop-n probe\n127.0.2.200/32 pop-s probe\n")
SERVICES = ["vod=/v/", "files=/big/", "probe=/_probe"]

A, F1, F2, D = 300_000, 100_000, 50_000, 1_000


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metric(text, name, labels=None):
    want = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(want):
            return float(line.split()[-1])
    raise AssertionError(f"{want.strip()} not in /metrics:\n{text}")


class System:
    def __init__(self, procs, redis, origin, certs, tmp_path):
        self.redis, self.procs = redis, procs
        self.ctl = echos_bin("echosctl")
        topo = tmp_path / "topology.txt"
        topo.write_text(TOPOLOGY)

        shim_port, self.shim_admin = free_port(), free_port()
        self.shim_url = f"http://127.0.0.1:{shim_port}"
        conf = write_conf(tmp_path / "shim.conf", {
            "listen": f"127.0.0.1:{shim_port}", "upstream_url": origin.url,
            "spool_dir": str(tmp_path), "redis.addr": redis.addr,
            "admin.listen": f"127.0.0.1:{self.shim_admin}",
            "topology.file": str(topo), "service": SERVICES})
        shim = procs.start("shim", [echos_bin("echos-origin-shim"), "-c", conf])
        wait_port(shim_port, proc=shim)

        self.box_admin = {}
        for box_id, ip, pop, region in BOXES:
            port, tls_port, admin = free_port(), free_port(), free_port()
            cache = tmp_path / f"cache-{box_id}"
            cache.mkdir()
            key = run([self.ctl, "derive-key", "--master", MASTER, "--box", box_id]).stdout
            conf = write_conf(tmp_path / f"{box_id}.conf", {
                "box.id": box_id, "box.url": f"https://{ip}:{tls_port}", "box.pop": pop,
                "box.region": region, "box.uplink": "10G",
                "listen": f"{ip}:{port}", "listen_tls": f"{ip}:{tls_port}",
                "admin.listen": f"{ip}:{admin}",
                "tls.cert": certs.cert, "tls.key": certs.key, "cache.dir": str(cache),
                "shim.url": self.shim_url, "redis.addr": redis.addr,
                "token.key": key.strip(), "service": SERVICES})
            p = procs.start(box_id, [echos_bin("echos-edge"), "-c", conf])
            wait_port(tls_port, host=ip, proc=p)
            self.box_admin[box_id] = f"http://{ip}:{admin}"

        self.rdr_port, self.rdr_admin = free_port(), free_port()
        conf = write_conf(tmp_path / "redirector.conf", {
            "listen": f"127.0.0.1:{self.rdr_port}",
            "admin.listen": f"127.0.0.1:{self.rdr_admin}", "redis.addr": redis.addr,
            "topology.file": str(topo), "token.master": MASTER, "token.sign_kid": 1,
            "origin.url": self.shim_url, "sla.max_class": "pop",
            "sla.min_good_heartbeats": 1,
            # `files` asks more per viewer than any box has: always all_over_capacity
            "service": ["name=vod prefix=/v/", "name=files prefix=/big/ viewer_bitrate=1T",
                        "name=probe prefix=/_probe"]})
        rdr = procs.start("redirector", [echos_bin("echos-redirector"), "-c", conf])
        wait_port(self.rdr_port, proc=rdr)

        self.pol_port = free_port()
        conf = write_conf(tmp_path / "policy.conf", {
            "redis.addr": redis.addr, "http.listen": f"127.0.0.1:{self.pol_port}",
            "place.interval": "0"})
        pol = procs.start("echos-policy", [echos_bin("echos-policy"), "-c", conf])
        wait_port(self.pol_port, proc=pol)
        self.pol_url = f"http://127.0.0.1:{self.pol_port}"

        for region, (box_id, *_rest) in zip(("north", "south"), BOXES):
            wait_for(lambda r=region, b=box_id: self.probe(r) == b, 15,
                     what=f"the redirector routing {region} to {box_id}")

    def probe(self, region):
        r = run(["curl", "-s", "-o", "/dev/null", "-D", "-", "-I", "--interface",
                 PROBE[region], f"http://127.0.0.1:{self.rdr_port}/_probe"], timeout=10)
        for line in r.stdout.splitlines():
            name, _, value = line.partition(":")
            if name.lower() in ("echos-box", "echos-miss"):
                return value.strip()
        return ""

    def get(self, region, path, out):
        """A viewer of `region` follows the redirect; returns (where it ended, body)."""
        r = run(["curl", "-sS", "-L", "-k", "--max-time", "30", "--interface",
                 VIEWER[region], "-o", str(out), "-w", "%{url_effective}",
                 f"http://127.0.0.1:{self.rdr_port}{path}"], timeout=40)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip(), out.read_bytes()

    def ctl_json(self, *args):
        r = run([self.ctl, "--redis", self.redis.addr, "--json", *args])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def api(self, query):
        status, body = http_get(f"{self.pol_url}/api/offload?{query}")
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def system(procs, redis, origin, certs, tmp_path):
    return System(procs, redis, origin, certs, tmp_path)


def where(url):
    if "/t/" not in url:
        return "origin"
    return {ip: box for box, ip, _, _ in BOXES}[url.split("/")[2].split(":")[0]]


def ratio(part, other):
    return part / (part + other)


# What each scope must show after the run below: box bytes/requests, origin fallback
# bytes/requests, origin fill bytes (the shim's, by service only), redirects to a box
# and to the origin.
EXPECTED = {
    ("--region", "north"): dict(box=(2 * A, 2), fb=(F1, 1), rdr=(2, 1)),
    ("--region", "south"): dict(box=(A + D, 2), fb=(2 * F2, 2), rdr=(2, 2)),
    ("--service", "vod"): dict(box=(3 * A, 3), fb=(0, 0), rdr=(3, 0), fill=2 * A),
    ("--service", "files"): dict(box=(0, 0), fb=(F1 + 2 * F2, 3), rdr=(0, 3), fill=0),
    ("--service", "default"): dict(box=(D, 1), fb=(0, 0), rdr=(1, 0), fill=D),
}


def test_offload_per_service_and_region_agrees_everywhere(system, origin, tmp_path):
    blobs = {"/v/a.bin": bytes((i * 13 + 1) % 256 for i in range(A)),
             "/big/f1.bin": b"1" * F1, "/big/f2.bin": b"2" * F2, "/other/d.txt": b"d" * D}
    for path, data in blobs.items():
        origin.put(path, data)
    out = tmp_path / "body"
    script = [("north", "/v/a.bin", "box-n"),      # fill on box-n
              ("north", "/v/a.bin", "box-n"),      # hit
              ("south", "/v/a.bin", "box-s"),      # fill on box-s
              ("north", "/big/f1.bin", "origin"),  # files: all_over_capacity
              ("south", "/big/f2.bin", "origin"),
              ("south", "/big/f2.bin", "origin"),
              ("south", "/other/d.txt", "box-s")]  # no service prefix: "default"
    for region, path, want in script:
        url, body = system.get(region, path, out)
        assert where(url) == want, (region, path, url)
        assert body == blobs[path]

    box_bytes, fb_bytes = 3 * A + D, F1 + 2 * F2

    def flushed():
        doc = system.ctl_json("offload", "--window", "total")
        regions = {r["name"]: r for r in doc["regions"]}
        ok = (doc["box_bytes"] == box_bytes and doc["origin_bytes"] == fb_bytes and
              doc["origin_fill_bytes"] == 2 * A + D and
              regions.get("south", {}).get("redirects_origin") == 2 and
              regions.get("north", {}).get("box_bytes") == 2 * A)
        return doc if ok else None
    total = wait_for(flushed, 15, what="every daemon's accounting flushed to Redis")
    assert total["byte_offload"] == ratio(box_bytes, fb_bytes)

    for (flag, name), e in EXPECTED.items():
        query = f"{flag[2:]}={name}"
        for w in ("1m", "total"):
            cli = system.ctl_json("offload", "--window", w, flag, name)
            api = system.api(f"window={w}&{query}")
            for doc in (cli, api):
                got = (doc["box_bytes"], doc["box_requests"], doc["origin_bytes"],
                       doc["origin_requests"], doc["redirects_box"],
                       doc["redirects_origin"])
                assert got == (*e["box"], *e["fb"], *e["rdr"]), (flag, name, w, doc)
                assert doc["byte_offload"] == ratio(e["box"][0], e["fb"][0])
                assert doc["request_offload"] == ratio(e["box"][1], e["fb"][1])
                if "fill" in e:
                    assert doc["origin_fill_bytes"] == e["fill"], (flag, name, doc)
            cli.pop("now_ms"), api.pop("now_ms")
            assert cli == api

    # the rows of the unscoped document carry the same numbers
    services = {s["name"]: s for s in total["services"]}
    regions = {r["name"]: r for r in total["regions"]}
    assert {"vod", "files", "default", "probe"} <= set(services)
    assert {"north", "south", "probe"} <= set(regions)
    assert services["vod"]["byte_offload"] == 1.0
    assert services["files"]["byte_offload"] == 0.0
    assert regions["north"]["byte_offload"] == ratio(2 * A, F1)
    assert regions["south"]["byte_offload"] == ratio(A + D, 2 * F2)
    # the edge's own breakdown: hits, misses and fills of its region and services
    assert regions["north"]["box_hits"] == 1 and regions["north"]["box_misses"] == 1
    assert regions["south"]["box_misses"] == 2
    assert regions["south"]["box_fill_bytes"] == A + D
    assert services["vod"]["box_fill_bytes"] == 2 * A

    # fallbacks by reason, decided by the redirector, per service and per region
    fb = system.ctl_json("fallbacks", "--window", "total", "--service", "files")
    assert [(x["reason"], x["count"]) for x in fb["reasons"]] == [("all_over_capacity", 3)]
    fb = system.ctl_json("fallbacks", "--window", "total", "--region", "south")
    assert [(x["reason"], x["count"]) for x in fb["reasons"]] == [("all_over_capacity", 2)]
    assert system.ctl_json("fallbacks", "--window", "total", "--service", "vod")[
        "reasons"] == []

    # /metrics: echos-policy's totals, and each daemon's own counts of the same run
    status, body = http_get(f"{system.pol_url}/metrics")
    text = body.decode()
    assert metric(text, "echos_policy_byte_offload_ratio", 'window="total"') == \
        ratio(box_bytes, fb_bytes)
    assert metric(text, "echos_policy_acct_bytes_total", 'kind="box"') == box_bytes
    assert metric(text, "echos_policy_acct_bytes_total", 'kind="origin_fallback"') == \
        fb_bytes
    text = http_get(f"http://127.0.0.1:{system.shim_admin}/metrics")[1].decode()
    assert metric(text, "echos_shim_bytes_total", 'kind="fallback"') == fb_bytes
    text = http_get(f"http://127.0.0.1:{system.rdr_admin}/metrics")[1].decode()
    assert metric(text, "echos_redirector_service_requests_total",
                  'service="files",outcome="origin"') == 3
    assert metric(text, "echos_redirector_service_requests_total",
                  'service="vod",outcome="box"') == 3
    served = sum(metric(http_get(f"{u}/metrics")[1].decode(),
                        "echos_edge_bytes_served_total")
                 for u in system.box_admin.values())
    assert served == box_bytes


def test_bad_service_and_topology_are_config_errors(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = write_conf(tmp_path / "shim.conf", {
        "spool_dir": str(spool), "redis.addr": "", "service": ["vod=/v/", "v.od=/x/"],
        "topology.file": str(tmp_path / "missing.txt")})
    r = run([echos_bin("echos-origin-shim"), "-t", "-c", conf])
    assert r.returncode == 2
    assert "service: expected a service name" in r.stderr and '"v.od=/x/"' in r.stderr
    assert "topology.file:" in r.stderr and "missing.txt" in r.stderr
    conf = write_conf(tmp_path / "edge.conf", {
        "box.id": "b1", "box.url": "https://127.0.0.1:1", "cache.dir": str(tmp_path),
        "shim.url": "http://127.0.0.1:2", "listen": "127.0.0.1:3",
        "token.key": "1:" + "ab" * 32, "service": ["vod=v/", "a=/a/", "b=/a/"]})
    r = run([echos_bin("echos-edge"), "-t", "-c", conf])
    assert r.returncode == 2
    assert "service: expected a path prefix" in r.stderr
    assert "expected each prefix once" in r.stderr
