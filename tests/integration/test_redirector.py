"""echos-redirector against a real redis-server, with fake boxes that heartbeat into Redis
the way echos-edge does (docs/redis.md), driven by curl and nghttp over HTTP/1.1, h2c and
TLS h2. Tokens in the redirects are verified here following docs/tokens.md."""
import base64
import collections
import hashlib
import hmac
import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import echos_bin, free_port, run, wait_for, wait_port, write_conf, GEOIP_DIR

MASTER_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
MASTER = "7:" + MASTER_HEX
ORIGIN = "http://127.0.0.1:9/shim"
TOPOLOGY = """# test topology: 127.0.0.0-3 in pop-a, 127.0.0.4-7 in pop-b
127.0.0.0/30   pop-a   region-1
127.0.0.4/30   pop-b   region-2
"""


# ---- tokens (docs/tokens.md) ---------------------------------------------------------

def hkdf_sha256(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def box_key(box_id, master_hex=MASTER_HEX):
    return hkdf_sha256(bytes.fromhex(master_hex), b"echos-box-key-v1", box_id.encode())


def verify_location(location, box_url, box_id, path, query="", ttl=3600):
    """Checks a redirect to a box: URL shape, claims and MAC. Returns the claims."""
    m = re.fullmatch(re.escape(box_url) + r"/t/([^/]+)(/.*)", location)
    assert m, f"unexpected Location {location!r}"
    token, rest = m.group(1), m.group(2)
    want_rest = path + (f"?{query}" if query else "")
    assert rest == want_rest, (rest, want_rest)
    ver, kid, exp, box, scope, net, mac = token.split("~")
    assert ver == "1" and kid == "7" and box == box_id and net == "-"
    if ttl == 3600:
        assert time.time() + 3599 <= int(exp) <= time.time() + 3611, "token.ttl: 1h by default"
        assert int(exp) % 10 == 0, "token.expiry_step is 10 s by default"
    if scope == "e":
        scope_path, kind = path, "e"
    else:
        assert scope.startswith("d"), scope
        n = int(scope[1:])
        scope_path, kind = "/".join(path.split("/")[:n + 1]) + "/", "d"
    canon = f"echos-token-v1\n{kid}\n{exp}\n{box}\n{kind}\n{scope_path}\n{net}\n"
    want = base64.urlsafe_b64encode(
        hmac.new(box_key(box_id), canon.encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert mac == want.decode(), "token MAC does not verify with the box's derived key"
    return {"kid": int(kid), "exp": int(exp), "box": box, "scope": scope}


# ---- fake boxes ----------------------------------------------------------------------

class FakeBoxes:
    """Heartbeats for fake boxes, written every 0.5 s by a background thread that lives at
    most `lifetime` seconds. Fields can be changed and single boxes silenced."""

    def __init__(self, redis, lifetime=60.0):
        self.redis = redis
        self.boxes = {}
        self.packed = {}
        self.silent = set()
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.deadline = time.monotonic() + lifetime
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def add(self, box_id, url, pop="", region="", uplink="1000000000", packed=True, hb=None,
            **fields):
        """packed: also write the hb field, as echos-edge does (False: the fields only, as
        an older edge or a hand-made registry); hb: write this hb text instead ({ts_ms}
        in it becomes the heartbeat's time)."""
        f = {"id": box_id, "url": url, "pop": pop, "region": region, "uplink_bps": uplink,
             "egress_bps": "0", "conns": "0", "ttfb_ms": "5", "status": "up",
             "cache_bytes": "0", "cache_max_bytes": "1000000", "cache_objects": "0",
             "hits": "0", "misses": "0"}
        f.update({k: str(v) for k, v in fields.items()})
        with self.lock:
            self.boxes[box_id] = f
            self.packed[box_id] = hb if hb is not None else packed
            self.silent.discard(box_id)
        self.beat_once()

    def set(self, box_id, **fields):
        with self.lock:
            self.boxes[box_id].update({k: str(v) for k, v in fields.items()})
        self.beat_once()

    def silence(self, box_id):
        with self.lock:
            self.silent.add(box_id)

    def beat_once(self):
        lines = []
        now = int(time.time() * 1000)
        with self.lock:
            for box_id, f in self.boxes.items():
                if box_id in self.silent:
                    continue
                f = {**f, "ts_ms": now}
                hb = self.packed[box_id]
                if hb is True:
                    hb = " ".join(f"{k}={v}" for k, v in f.items())
                elif hb:
                    hb = hb.replace("{ts_ms}", str(now))
                if hb:
                    f["hb"] = hb
                args = " ".join(f"{k} {chr(34) + v + chr(34) if ' ' in v else v or chr(34) * 2}"
                                for k, v in ((k, str(v)) for k, v in f.items()))
                lines.append(f"HSET echos:box:{{{box_id}}} {args}")
                lines.append(f"EXPIRE echos:box:{{{box_id}}} 5")
                lines.append(f"ZADD echos:{{boxes}} {now} {box_id}")
        if not lines:
            return
        try:
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis.port)],
                           input="\n".join(lines) + "\n", capture_output=True, text=True,
                           timeout=3)
        except (subprocess.TimeoutExpired, OSError):
            pass  # Redis may be down on purpose

    def _loop(self):
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            self.beat_once()
            self.stop_ev.wait(0.5)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)


@pytest.fixture
def boxes(redis):
    fb = FakeBoxes(redis)
    yield fb
    fb.stop()


# ---- the redirector ------------------------------------------------------------------

class Rdr:
    def __init__(self, procs, tmp_path, redis_addr, certs=None, extra=None, name="rdr"):
        self.port = free_port()
        self.admin_port = free_port()
        self.tls_port = free_port() if certs else None
        topo = Path(tmp_path) / "topology.txt"
        topo.write_text(TOPOLOGY)
        conf = {
            "listen": f"127.0.0.1:{self.port}",
            "admin.listen": f"127.0.0.1:{self.admin_port}",
            "redis.addr": redis_addr,
            "token.master": MASTER,
            "origin.url": ORIGIN,
            "topology.file": str(topo),
            "boxes.sync_interval": "100ms",
            "sla.min_good_heartbeats": "1",
            "log.level": "debug",
        }
        if certs:
            conf.update({"listen_tls": f"127.0.0.1:{self.tls_port}", "tls.cert": certs.cert,
                         "tls.key": certs.key})
        conf.update(extra or {})
        self.conf_path = write_conf(Path(tmp_path) / f"{name}.conf", conf)
        self.proc = procs.start(name, [echos_bin("echos-redirector"), "-c", self.conf_path])
        wait_port(self.port, 10, proc=self.proc)
        wait_port(self.admin_port, 10, proc=self.proc)
        self.url = f"http://127.0.0.1:{self.port}"

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Resp:
    def __init__(self, status, headers, version):
        self.status, self.headers, self.version = status, headers, version

    def __repr__(self):
        return f"Resp({self.status}, {self.headers}, {self.version})"


def curl(url, *args, source=None):
    argv = ["curl", "-s", "-S", "--max-time", "5", "-o", "/dev/null", "-D", "-",
            "-w", "\nVERSION %{http_version}\n"]
    if source:
        argv += ["--interface", source]
    r = run(argv + list(args) + [url], timeout=15)
    assert r.returncode == 0, f"curl {url} failed: {r.stderr}"
    status, headers, version = None, {}, None
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("VERSION "):
            version = line.split()[1]
        elif line.startswith("HTTP/"):
            status, headers = int(line.split()[1]), {}
        elif ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return Resp(status, headers, version)


def box_of(rdr, path="/v/a.ts", source=None):
    r = curl(rdr.url + path, source=source)
    assert r.status == 302, r
    return r.headers.get("echos-box") or "miss:" + r.headers.get("echos-miss", "?")


BOX_A = ("box-a1", "https://127.0.0.2:8443", "pop-a", "region-1")
BOX_B = ("box-b1", "http://127.0.0.6:8080", "pop-b", "region-2")


def add_ab(boxes):
    for box_id, url, pop, region in (BOX_A, BOX_B):
        boxes.add(box_id, url, pop=pop, region=region)


# ---- tests ---------------------------------------------------------------------------

def test_redirect_over_h1_h2c_and_tls_h2_with_verifiable_token(procs, tmp_path, redis, boxes,
                                                              certs):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, certs=certs)
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")

    r = curl(rdr.url + "/v/abc/seg1.ts?x=1", "--http1.1")
    assert r.status == 302 and r.version == "1.1"
    assert r.headers["echos-box"] == "box-a1"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["access-control-allow-origin"] == "*"
    c = verify_location(r.headers["location"], BOX_A[1], "box-a1", "/v/abc/seg1.ts", "x=1")
    assert c["scope"] == "e"

    r = curl(rdr.url + "/v/abc/index.m3u8", "--http2-prior-knowledge")
    assert r.status == 302 and r.version == "2"
    c = verify_location(r.headers["location"], BOX_A[1], "box-a1", "/v/abc/index.m3u8")
    assert c["scope"] == "d2", "a playlist's token covers its directory"

    r = curl(f"https://127.0.0.1:{rdr.tls_port}/v/abc/x.mpd", "--http2", "-k")
    assert r.status == 302 and r.version == "2", "ALPN must pick h2"
    verify_location(r.headers["location"], BOX_A[1], "box-a1", "/v/abc/x.mpd")

    r = curl(f"https://127.0.0.1:{rdr.tls_port}/f.bin", "--http1.1", "-k")
    assert r.status == 302 and r.version == "1.1"

    n = run(["nghttp", "-v", "-n", rdr.url + "/v/n.ts"], timeout=15)
    assert n.returncode == 0, n.stderr
    assert ":status: 302" in n.stdout and "echos-box: box-a1" in n.stdout

    # the box key agrees with echosctl's derivation when the tool is built
    ctl = Path(echos_bin("echos-redirector")).with_name("echosctl")
    if ctl.exists():
        r = run([ctl, "derive-key", "--master", MASTER, "--box", "box-a1"])
        assert r.returncode == 0 and r.stdout.strip() == "7:" + box_key("box-a1").hex()

    m = rdr.metrics()
    assert m['echos_redirector_requests_total{proto="h1",outcome="box"}'] >= 3
    assert m['echos_redirector_requests_total{proto="h2",outcome="box"}'] >= 3
    assert m["echos_redirector_boxes"] == 2


def test_redirect_has_no_body_and_h2_field_names_arrive_lowercase(procs, tmp_path, redis,
                                                                boxes):
    """A redirect is a 302 with Content-Length: 0 and nothing after the head (two on one
    kept-alive HTTP/1.1 connection come back to back); over h2 it is one HEADERS frame
    that ends the stream, with every field name lowercase (a strict h2 client refuses
    anything else)."""
    import socket
    import h2.config
    import h2.connection
    import h2.events

    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")

    with socket.create_connection(("127.0.0.1", rdr.port), timeout=5) as s:
        req = b"GET /v/a.ts HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(req + req)
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"\r\n\r\n") < 2 and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        heads = buf.split(b"\r\n\r\n")
        assert len(heads) == 3 and heads[2] == b"", buf
        for head in heads[:2]:
            lines = head.decode().split("\r\n")
            assert lines[0] == "HTTP/1.1 302 Found", head
            fields = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
            assert fields["content-length"] == "0" and "content-type" not in fields
            assert fields["echos-box"] == "box-a1" and fields["location"]

    with socket.create_connection(("127.0.0.1", rdr.port), timeout=5) as s:
        c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_inbound_headers=True))
        c.initiate_connection()
        c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/v/a.ts"),
                           (":authority", "x")], end_stream=True)
        s.sendall(c.data_to_send())
        events, deadline = [], time.monotonic() + 5
        while not any(isinstance(e, h2.events.StreamEnded) for e in events) \
                and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            events += c.receive_data(data)  # raises on an uppercase field name
        resp = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert len(resp) == 1 and resp[0].stream_ended is not None, events
        assert not [e for e in events if isinstance(e, h2.events.DataReceived)]
        fields = dict(resp[0].headers)
        assert fields[":status"] == "302" and fields["content-length"] == "0"
        assert fields["echos-box"] == "box-a1" and fields["location"].startswith(BOX_A[1])
        assert all(k == k.lower() for k, _ in resp[0].headers), resp[0].headers


def test_client_lands_on_the_box_of_its_pop(procs, tmp_path, redis, boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr, source="127.0.0.5") == "box-b1", 10, what="box-b1")
    for path in ("/a", "/b/c.ts", "/d/e/f.m4s"):
        assert box_of(rdr, path, source="127.0.0.1") == "box-a1"
        assert box_of(rdr, path, source="127.0.0.5") == "box-b1"


def test_redirects_of_one_object_within_an_expiry_step_share_one_token(procs, tmp_path,
                                                                       redis, boxes):
    # exp = now + token.ttl rounded up to token.expiry_step: within a step, one object's
    # redirects to one box carry the same token, signed once (the cache counts the reuse);
    # another object gets its own
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"token.ttl": "2m",
                                                   "token.expiry_step": "1h"})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")
    hits0 = rdr.metrics()["echos_redirector_token_cache_hits"]
    t0 = time.time()
    locs = [curl(rdr.url + "/v/same.ts").headers["location"] for _ in range(3)]
    t1 = time.time()
    other = curl(rdr.url + "/v/other.ts").headers["location"]
    exps = {int(loc.split("/t/")[1].split("~")[2]) for loc in locs}
    if len(exps) == 2:  # a step boundary fell between the requests: one more try
        locs = [curl(rdr.url + "/v/same.ts").headers["location"] for _ in range(2)]
        exps = {int(loc.split("/t/")[1].split("~")[2]) for loc in locs}
    assert len(set(locs)) == 1, locs
    exp = exps.pop()
    assert exp % 3600 == 0 and t0 + 120 - 1 <= exp <= t1 + 120 + 3600, (exp, t0)
    assert other.split("/t/")[1].split("/")[0] != locs[0].split("/t/")[1].split("/")[0]
    verify_location(other, BOX_A[1], "box-a1", "/v/other.ts", ttl=120)
    assert rdr.metrics()["echos_redirector_token_cache_hits"] >= hits0 + 1


@pytest.mark.parametrize("memo", ["16384", "0"])
def test_a_burst_for_one_object_spreads_by_charging_with_or_without_the_memo(
        procs, tmp_path, redis, boxes, memo):
    """30 viewers of one object from one PoP within a heartbeat: charging fills the PoP's
    three boxes evenly (9 of 10M each under 90% of 100M) and sends the rest to the origin
    as over capacity, the same with the decision memo on (most answers from it) or off."""
    for k in (1, 2, 3):
        boxes.add(f"box-a{k}", f"http://127.0.0.{k + 1}:8080", pop="pop-a",
                  region="region-1", uplink=100000000)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={
        "decision.memo": memo, "sla.viewer_bitrate": "10M", "sla.max_util": "0.9",
        "charge.duration": "15s", "charge.reflect": "15s", "sla.max_class": "pop"})
    wait_for(lambda: rdr.metrics().get("echos_redirector_boxes") == 3, 10, what="3 boxes")
    m0 = rdr.metrics()
    conn = http.client.HTTPConnection("127.0.0.1", rdr.port, timeout=5)
    seq = []
    for _ in range(30):
        conn.request("GET", "/v/hot.ts")
        r = conn.getresponse()
        r.read()
        assert r.status == 302
        seq.append(r.getheader("echos-box") or "miss:" + r.getheader("echos-miss"))
    conn.close()
    got = collections.Counter(seq)
    assert got == {"box-a1": 9, "box-a2": 9, "box-a3": 9, "miss:all_over_capacity": 3}, seq
    # the lowest load bucket first: two viewers (10M and 20M, under 25M) each before
    # any box takes a third
    assert collections.Counter(seq[:6]) == {"box-a1": 2, "box-a2": 2, "box-a3": 2}, seq
    m1 = rdr.metrics()
    hits = (m1['echos_redirector_decision_memo_total{result="hit"}'] -
            m0['echos_redirector_decision_memo_total{result="hit"}'])
    misses = (m1['echos_redirector_decision_memo_total{result="miss"}'] -
              m0['echos_redirector_decision_memo_total{result="miss"}'])
    if memo == "0":
        assert hits == 0 and misses == 0
    else:
        # each box is remembered while its bucket (25M) holds: a walk, then a hit, twice
        # a box at least; heartbeats landing mid-burst clear the memo, hence no exact count
        assert hits >= 5 and hits + misses == 30, (hits, misses)


def test_box_whose_heartbeat_stops_is_not_chosen_within_3s(procs, tmp_path, redis, boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")
    boxes.silence("box-a1")
    t0 = time.monotonic()
    wait_for(lambda: box_of(rdr) == "box-b1", 5, interval=0.1, what="box-b1 chosen")
    assert time.monotonic() - t0 <= 3.0
    # and it stays out
    for _ in range(5):
        assert box_of(rdr) == "box-b1"


def test_box_whose_hash_is_gone_drops_out_though_its_member_stays(procs, tmp_path, redis,
                                                                 boxes):
    """A box that has not beaten since the last read is carried over with an EXISTS instead
    of a new HGET; its hash disappearing (expiry: the death notice) still drops it at
    once, while its member in echos:{boxes} keeps the same score."""
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: rdr.metrics().get("echos_redirector_boxes") == 2, 10, what="2 boxes")
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")
    boxes.silence("box-a1")
    time.sleep(0.3)  # reads of the silent box now carry it over
    assert rdr.metrics()["echos_redirector_boxes"] == 2
    redis.cli("DEL", "echos:box:{box-a1}")
    assert redis.cli("ZSCORE", "echos:{boxes}", "box-a1").strip()
    wait_for(lambda: rdr.metrics().get("echos_redirector_boxes") == 1, 2, interval=0.05,
             what="box-a1 dropped")
    assert box_of(rdr) == "box-b1"


def test_no_box_at_all_goes_to_the_origin_with_the_reason(procs, tmp_path, redis):
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: rdr.metrics().get("echos_redirector_box_table_age_seconds", -1) >= 0,
             10, what="first box table read")
    r = curl(rdr.url + "/v/a.ts?k=v")
    assert r.status == 302
    assert r.headers["echos-miss"] == "no_box"
    assert r.headers["location"] == ORIGIN + "/v/a.ts?k=v"
    assert r.headers["access-control-allow-origin"] == "*"


def test_box_at_full_utilization_receives_nobody(procs, tmp_path, redis, boxes):
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1", uplink=100000000,
              egress_bps=100000000)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "miss:all_over_capacity", 10, what="over capacity")
    boxes.set("box-a1", egress_bps=0)
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 back")


def test_redis_absent_at_start_then_boxes_once_it_comes_up(procs, tmp_path, redis, boxes):
    redis.stop()
    rdr = Rdr(procs, tmp_path, redis.addr)
    r = curl(rdr.url + "/x.ts")
    assert r.status == 302 and r.headers["echos-miss"] == "redis_down"
    assert r.headers["location"] == ORIGIN + "/x.ts"
    redis.start()
    add_ab(boxes)
    wait_for(lambda: box_of(rdr) == "box-a1", 15, interval=0.2, what="box chosen after redis")
    assert rdr.metrics()["echos_redirector_redis_up"] == 1


def test_redis_killed_keeps_boxes_for_grace_then_origin_then_recovers(procs, tmp_path, redis,
                                                                      boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"boxes.grace": "2s"})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")
    redis.stop()
    t0 = time.monotonic()
    # inside the grace: still the last-known box (ages frozen)
    while time.monotonic() - t0 < 1.3:
        assert box_of(rdr) == "box-a1"
        time.sleep(0.1)
    wait_for(lambda: box_of(rdr) == "miss:redis_down", 5, interval=0.1, what="redis_down")
    assert time.monotonic() - t0 >= 1.9
    wait_for(lambda: "down for" in rdr.proc.log_text(), 5, what="down log line")
    redis.start()
    wait_for(lambda: box_of(rdr) == "box-a1", 15, interval=0.2, what="recovery")
    m = rdr.metrics()
    assert m['echos_redirector_fallbacks_total{reason="redis_down"}'] >= 1


def test_bad_config_exits_2_naming_file_and_line(tmp_path):
    bad = write_conf(tmp_path / "bad.conf", {"origin.url": ORIGIN, "token.master": MASTER,
                                             "sla.max_util": "lots"})
    r = run([echos_bin("echos-redirector"), "-c", bad])
    assert r.returncode == 2
    assert f"{bad}:3" in r.stderr and "sla.max_util" in r.stderr

    bad2 = write_conf(tmp_path / "bad2.conf", {"origin.url": ORIGIN, "token.master": "7:zz",
                                               "sla.max_class": "planet"})
    r = run([echos_bin("echos-redirector"), "-c", bad2])
    assert r.returncode == 2
    assert f"{bad2}:2: token.master" in r.stderr
    assert f"{bad2}:3: sla.max_class" in r.stderr

    bad3 = write_conf(tmp_path / "bad3.conf", {"token.master": MASTER, "no.such.key": "1"})
    r = run([echos_bin("echos-redirector"), "-c", bad3])
    assert r.returncode == 2 and f"{bad3}:2" in r.stderr

    bad4 = write_conf(tmp_path / "bad4.conf", {"origin.url": ORIGIN, "token.master": MASTER,
                                               "token.expiry_step": "0s"})
    r = run([echos_bin("echos-redirector"), "-c", bad4])
    assert r.returncode == 2 and f"{bad4}:3: token.expiry_step" in r.stderr
    bad5 = write_conf(tmp_path / "bad5.conf", {"origin.url": ORIGIN, "token.master": MASTER,
                                               "token.expiry_step": "1500ms"})
    r = run([echos_bin("echos-redirector"), "-c", bad5])
    assert r.returncode == 2 and f"{bad5}:3: token.expiry_step: expected whole seconds" \
        in r.stderr

    for memo in ("-1", "4194305", "lots"):
        bad6 = write_conf(tmp_path / "bad6.conf", {"origin.url": ORIGIN,
                                                   "token.master": MASTER,
                                                   "decision.memo": memo})
        r = run([echos_bin("echos-redirector"), "-c", bad6])
        assert r.returncode == 2 and f"{bad6}:3: decision.memo" in r.stderr, (memo, r.stderr)

    r = run([echos_bin("echos-redirector"), "-c", write_conf(tmp_path / "no-origin.conf", {
        "token.master": MASTER})])
    assert r.returncode == 2 and "origin.url" in r.stderr

    r = run([echos_bin("echos-redirector"), "--help"])
    assert r.returncode == 0 and "sla.max_class" in r.stdout and "Exit codes" in r.stdout
    r = run([echos_bin("echos-redirector"), "--version"])
    assert r.returncode == 0 and r.stdout.startswith("echos-redirector ")

    r = run([echos_bin("echos-redirector"), "-c", write_conf(tmp_path / "ok.conf", {
        "origin.url": ORIGIN, "token.master": MASTER}), "-t"])
    assert r.returncode == 0, r.stderr


def test_corrupt_mmdb_at_start_is_a_clear_error_not_a_crash(tmp_path, geoip_dir):
    bad_dir = geoip_dir / "bad-data"
    refused = 0
    for mmdb in sorted(bad_dir.glob("*.mmdb")):
        conf = write_conf(tmp_path / "g.conf", {"origin.url": ORIGIN, "token.master": MASTER,
                                                "geoip.city": str(mmdb)})
        r = run([echos_bin("echos-redirector"), "-c", conf, "-t"])
        assert r.returncode in (0, 2), f"{mmdb.name}: exit {r.returncode}\n{r.stderr}"
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
        if r.returncode == 2:
            refused += 1
            assert str(mmdb) in r.stderr, r.stderr
    assert refused >= 1
    conf = write_conf(tmp_path / "g.conf", {"origin.url": ORIGIN, "token.master": MASTER,
                                            "geoip.city": str(bad_dir / "libmaxminddb-metadata-marker-only.mmdb")})
    r = run([echos_bin("echos-redirector"), "-c", conf])
    assert r.returncode == 2 and "libmaxminddb-metadata-marker-only.mmdb" in r.stderr


def test_sighup_with_a_corrupt_mmdb_keeps_the_old_one(procs, tmp_path, redis, boxes,
                                                      geoip_dir):
    city = tmp_path / "city.mmdb"
    shutil.copy(geoip_dir / "GeoIP2-City-Test.mmdb", city)
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"geoip.city": str(city)})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1 chosen")
    tmp = tmp_path / "city.new"
    shutil.copy(geoip_dir / "bad-data" / "libmaxminddb-metadata-marker-only.mmdb", tmp)
    os.replace(tmp, city)
    rdr.proc.signal(signal.SIGHUP)
    wait_for(lambda: re.search(r"reload: .*city\.mmdb.*keeping the old one",
                               rdr.proc.log_text()), 5, what="reload refusal line")
    assert rdr.proc.alive()
    assert box_of(rdr) == "box-a1"
    # a good file is taken on the next SIGHUP
    shutil.copy(geoip_dir / "GeoIP2-City-Test.mmdb", tmp)
    os.replace(tmp, city)
    rdr.proc.signal(signal.SIGHUP)
    wait_for(lambda: "reload: MMDB" in rdr.proc.log_text(), 5, what="reload success line")
    assert box_of(rdr) == "box-a1"
    # a config that does not load is not applied, and says where it is wrong
    conf = Path(rdr.conf_path)
    good = conf.read_text()
    conf.write_text(good + "sla.max_class = planet\n")
    lines = len(conf.read_text().splitlines())
    rdr.proc.signal(signal.SIGHUP)
    wait_for(lambda: f"reload: {conf}:{lines}: sla.max_class" in rdr.proc.log_text(), 5,
             what="config reload refusal")
    assert "keeping the old one" in rdr.proc.log_text()
    assert box_of(rdr) == "box-a1"


def test_decision_memo_is_resized_or_turned_off_by_a_reload(procs, tmp_path, redis, boxes):
    """decision.memo changes on SIGHUP: off, the decisions are all walks and the memo's
    counters stand still; on again at another size, hits come back and the counters go on
    from where they were (a Prometheus counter never goes down)."""
    for k in (1, 2):
        boxes.add(f"box-a{k}", f"http://127.0.0.{k + 1}:8080", pop="pop-a",
                  region="region-1")
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"sla.max_class": "pop"})
    wait_for(lambda: rdr.metrics().get("echos_redirector_boxes") == 2, 10, what="2 boxes")
    hit = 'echos_redirector_decision_memo_total{result="hit"}'
    miss = 'echos_redirector_decision_memo_total{result="miss"}'

    def burst():
        conn = http.client.HTTPConnection("127.0.0.1", rdr.port, timeout=5)
        seen = set()
        for _ in range(20):
            conn.request("GET", "/v/memo.ts")
            r = conn.getresponse()
            r.read()
            assert r.status == 302
            seen.add(r.getheader("echos-box"))
        conn.close()
        return seen

    def reload(memo):
        conf = Path(rdr.conf_path)
        text = "".join(line + "\n" for line in conf.read_text().splitlines()
                       if not line.startswith("decision.memo"))
        conf.write_text(text + f"decision.memo = {memo}\n")
        done = rdr.proc.log_text().count(": done")
        rdr.proc.signal(signal.SIGHUP)
        wait_for(lambda: rdr.proc.log_text().count(": done") > done, 5, what="reload done")

    assert burst() <= {"box-a1", "box-a2"}
    m1 = rdr.metrics()
    assert m1[hit] >= 10 and m1[hit] + m1[miss] == 20, m1
    reload(0)
    assert burst() <= {"box-a1", "box-a2"}
    m2 = rdr.metrics()
    assert (m2[hit], m2[miss]) == (m1[hit], m1[miss])
    reload(64)
    assert burst() <= {"box-a1", "box-a2"}
    m3 = rdr.metrics()
    assert m3[hit] >= m2[hit] + 10 and m3[hit] + m3[miss] == m2[hit] + m2[miss] + 20, m3
    reload(64)  # the same size: kept, emptied (the services' SLAs are new)
    assert rdr.proc.alive()
    assert burst() <= {"box-a1", "box-a2"}
    assert rdr.metrics()[miss] >= m3[miss] + 1


def test_bad_requests_get_400_405_and_preflight_204(procs, tmp_path, redis):
    rdr = Rdr(procs, tmp_path, redis.addr)
    r = curl(rdr.url + "/a/../etc/passwd", "--path-as-is")
    assert r.status == 400
    r = curl(rdr.url + "/a/%2e%2e/b")
    assert r.status == 400
    r = curl(rdr.url + "/x", "-X", "POST")
    assert r.status == 405 and "GET" in r.headers["allow"]
    r = curl(rdr.url + "/x", "-X", "OPTIONS", "-H", "Origin: https://player.example",
             "-H", "Access-Control-Request-Method: GET",
             "-H", "Access-Control-Request-Headers: range")
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "range" in r.headers["access-control-allow-headers"].lower()
    m = rdr.metrics()
    assert m['echos_redirector_bad_requests_total{reason="path"}'] == 2
    assert m['echos_redirector_bad_requests_total{reason="method"}'] == 1
    assert rdr.proc.alive()


def test_metrics_popularity_and_accounting_agree_with_requests(procs, tmp_path, redis, boxes):
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1")
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"sla.max_class": "pop"})
    wait_for(lambda: box_of(rdr, "/warm") == "box-a1", 10, what="box-a1 chosen")
    base = rdr.metrics()
    for _ in range(5):
        assert box_of(rdr, "/v/pop.ts", source="127.0.0.1") == "box-a1"
    for _ in range(3):  # pop-b has no box and the class is limited to the PoP
        assert box_of(rdr, "/v/pop.ts", source="127.0.0.5", ) == "miss:no_box_in_reach"
    for _ in range(2):
        curl(rdr.url + "/v/pop.ts", "--http2-prior-knowledge", "--interface", "127.0.0.1")
    m = rdr.metrics()

    def delta(k):
        return m.get(k, 0) - base.get(k, 0)
    assert delta('echos_redirector_requests_total{proto="h1",outcome="box"}') == 5
    assert delta('echos_redirector_requests_total{proto="h2",outcome="box"}') == 2
    assert delta('echos_redirector_requests_total{proto="h1",outcome="origin"}') == 3
    assert delta('echos_redirector_fallbacks_total{reason="no_box_in_reach"}') == 3
    assert delta("echos_redirector_decision_seconds_count") == 10

    def pop_scores():
        keys = redis.cli("KEYS", "echos:pop:*").split()
        s = {}
        for k in keys:
            sc = redis.cli("ZSCORE", k, "/v/pop.ts")
            if sc:
                s[k.split(":m:")[0]] = s.get(k.split(":m:")[0], 0) + float(sc)
        return s
    wait_for(lambda: pop_scores().get("echos:pop:{region-1}") == 7 and
             pop_scores().get("echos:pop:{region-2}") == 3, 5, what="popularity flushed")
    key = redis.cli("KEYS", "echos:pop:{region-1}:m:*").split()[0]
    assert 0 < int(redis.cli("TTL", key)) <= 7200

    def acct():
        t = redis.hgetall("echos:acct:total")
        return (int(t.get("rdr.box", 0)), int(t.get("rdr.origin", 0)),
                int(t.get("rdr.miss.no_box_in_reach", 0)))
    wait_for(lambda: acct()[0] >= 8 and acct()[2] == 3, 5, what="accounting flushed")
    minute = redis.cli("KEYS", "echos:acct:m:*").split()
    assert minute and int(redis.cli("TTL", minute[0])) > 0


def test_malformed_box_is_skipped_with_a_log_line(procs, tmp_path, redis, boxes):
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1", status="sideways")
    boxes.add("box-b1", BOX_B[1], pop="pop-b", region="region-2")
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "box-b1", 10, what="box-b1 chosen")
    wait_for(lambda: "box-a1: malformed heartbeat" in rdr.proc.log_text(), 5, what="log")
    assert rdr.metrics()["echos_redirector_boxes"] == 1
    assert rdr.proc.log_text().count("malformed heartbeat") <= 2


def test_heartbeats_with_and_without_the_hb_field_are_both_read(procs, tmp_path, redis,
                                                               boxes):
    # box-a1 writes hb (as echos-edge does), box-b1 only the separate fields (an older
    # edge): the sync reads hb with one HGET and falls back to HMGET for box-b1
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1")
    boxes.add("box-b1", BOX_B[1], pop="pop-b", region="region-2", packed=False)
    assert redis.cli("HEXISTS", "echos:box:{box-b1}", "hb") == "0"
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: rdr.metrics()["echos_redirector_boxes"] == 2, 10, what="both boxes read")
    assert box_of(rdr, source="127.0.0.1") == "box-a1"
    assert box_of(rdr, source="127.0.0.5") == "box-b1"
    # a change reaches the table through either path: both boxes go draining
    boxes.set("box-a1", status="draining")
    boxes.set("box-b1", status="draining")
    wait_for(lambda: box_of(rdr, source="127.0.0.1").startswith("miss:") and
             box_of(rdr, source="127.0.0.5").startswith("miss:"), 10, what="both drained")
    assert "malformed" not in rdr.proc.log_text()


def test_hb_field_wins_over_the_fields_and_a_malformed_one_is_logged(procs, tmp_path, redis,
                                                                      boxes):
    # box-a1's fields are fine but its hb is not: hb is what counts, the box is out and
    # the reason is logged; box-b1's hb says draining while its fields say up: draining
    hb_b = ("id=box-b1 url=%s pop=pop-b region=region-2 uplink_bps=1000000000 "
            "status=draining ts_ms={ts_ms}" % BOX_B[1])
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1", hb="id=box-a1 junk")
    boxes.add("box-b1", BOX_B[1], pop="pop-b", region="region-2", hb=hb_b)
    boxes.add("box-b2", "http://127.0.0.7:8080", pop="pop-b", region="region-2")
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: "box-a1: malformed heartbeat" in rdr.proc.log_text(), 10, what="log")
    assert "hb: expected name=value pairs" in rdr.proc.log_text()
    wait_for(lambda: rdr.metrics()["echos_redirector_boxes"] == 2, 10, what="b1, b2 read")
    for i in range(8):  # rendezvous would give box-b1 some of 8 paths were it up
        assert box_of(rdr, f"/p{i}.ts", source="127.0.0.5") == "box-b2"
    assert rdr.proc.alive()


def test_a_box_key_that_is_not_a_hash_does_not_stop_the_sync(procs, tmp_path, redis, boxes):
    # one member whose key holds a string: that box is out (logged), every other box
    # keeps being read and chosen, and a heartbeat change still reaches the table
    boxes.add("box-b1", BOX_B[1], pop="pop-b", region="region-2")
    redis.cli("SET", "echos:box:{box-x1}", "not a hash")
    redis.cli("ZADD", "echos:{boxes}", str(int(time.time() * 1000) + 3600000), "box-x1")
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "box-b1", 10, what="box-b1 chosen")
    wait_for(lambda: "box-x1: malformed heartbeat" in rdr.proc.log_text(), 5, what="log")
    assert rdr.metrics()["echos_redirector_boxes"] == 1
    boxes.add("box-a1", BOX_A[1], pop="pop-a", region="region-1")
    wait_for(lambda: rdr.metrics()["echos_redirector_boxes"] == 2, 10, what="box-a1 read")
    assert rdr.proc.alive()


def test_sigterm_drains_and_exits_0(procs, tmp_path, redis):
    rdr = Rdr(procs, tmp_path, redis.addr)
    curl(rdr.url + "/x")
    assert rdr.proc.stop(timeout=12) == 0
