"""echos-redirector routing with the real MMDB test databases (../shared/geoip): clients
behind a trusted proxy land on the nearest box, spoofed forwarding headers from untrusted
peers are ignored, boxes are located by ASN from their URL host, services pick their SLA
and origin by path prefix, alternates, client-bound tokens, SIGHUP reloads of the
topology, and a key rotation through a real echos-edge that never shows a viewer a 403."""
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import GEOIP_DIR, echos_bin, run, wait_for
from test_redirector import (BOX_A, BOX_B, MASTER, MASTER_HEX, ORIGIN, Rdr, add_ab, box_key,
                             box_of, boxes, curl, hkdf_sha256)  # noqa: F401 (fixture)
from test_edge import Edge, start_shim

LONDON, SWEDEN, US = "81.2.69.142", "89.160.20.112", "216.160.83.56"
GEO_BOXES = (
    ("box-lon", "http://127.0.0.21:8080", 51.50, -0.12),   # London
    ("box-swe", "http://127.0.0.22:8080", 58.41, 15.62),   # Linkoping
    ("box-sto", "http://127.0.0.23:8080", 59.33, 18.07),   # Stockholm
    ("box-us", "http://127.0.0.24:8080", 47.61, -122.33),  # Seattle
)


def geo_conf(**extra):
    conf = {
        "geoip.city": str(GEOIP_DIR / "GeoIP2-City-Test.mmdb"),
        "geoip.asn": str(GEOIP_DIR / "GeoLite2-ASN-Test.mmdb"),
        "trusted_proxies": "127.0.0.1/32",
        "sla.max_class": "geo",
        "sla.max_distance_km": "600",
    }
    conf.update(extra)
    return conf


def add_geo(boxes):
    for box_id, url, lat, lon in GEO_BOXES:
        boxes.add(box_id, url, pop=f"pop-{box_id}", region="r", lat=lat, lon=lon)


def via(rdr, client, header="xff", path="/v/a.ts"):
    h = (f"X-Forwarded-For: 198.51.100.7, {client}" if header == "xff"
         else f'Forwarded: for="{client}:4711";proto=http')
    r = curl(rdr.url + path, "-H", h)
    assert r.status == 302, r
    return r.headers.get("echos-box") or "miss:" + r.headers.get("echos-miss", "?")


@pytest.fixture
def geoip():
    if not (GEOIP_DIR / "GeoIP2-City-Test.mmdb").exists():
        pytest.fail(f"GeoIP test databases not found in {GEOIP_DIR}")
    return GEOIP_DIR


def test_clients_behind_a_trusted_proxy_land_on_the_nearest_box(procs, tmp_path, redis, boxes,
                                                                 geoip):
    add_geo(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra=geo_conf())
    wait_for(lambda: via(rdr, LONDON) == "box-lon", 10, what="London box")
    for path in ("/v/a.ts", "/v/b.ts", "/x/y.m4s"):
        assert via(rdr, LONDON, path=path) == "box-lon"
        assert via(rdr, SWEDEN, path=path) in ("box-swe", "box-sto")
        assert via(rdr, US, path=path) == "box-us"
        assert via(rdr, LONDON, "forwarded", path) == "box-lon"
    # Linkoping is 170 km from Stockholm: both in reach; a 100 km radius leaves one
    m = rdr.metrics()
    assert m['echos_redirector_client_address_total{source="forwarded"}'] >= 12


def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored(procs, tmp_path, redis,
                                                                      boxes, geoip):
    add_geo(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr,
              extra=geo_conf(**{"trusted_proxies": "127.0.0.9/32"}))
    wait_for(lambda: rdr.metrics().get("echos_redirector_boxes") == len(GEO_BOXES), 10,
             what="boxes loaded")
    # the socket peer 127.0.0.1 is not trusted: it is the client, and it is nowhere
    assert via(rdr, LONDON) == "miss:no_box_in_reach"
    assert via(rdr, US, "forwarded") == "miss:no_box_in_reach"
    m = rdr.metrics()
    assert m['echos_redirector_client_address_total{source="peer"}'] >= 2
    assert m.get('echos_redirector_client_address_total{source="forwarded"}', 0) == 0


def test_box_asn_comes_from_its_url_host_in_the_mmdb(procs, tmp_path, redis, boxes, geoip):
    # 1.128.0.0/11 is AS1221 in the test database; the box does not say its ASN
    boxes.add("box-as", "http://1.128.0.1:8080", pop="pop-x", region="r")
    boxes.add("box-other", "http://12.81.92.1:8080", pop="pop-y", region="r")
    rdr = Rdr(procs, tmp_path, redis.addr, extra=geo_conf(**{"sla.max_class": "asn"}))
    wait_for(lambda: via(rdr, "1.130.4.5") == "box-as", 10, what="same-ASN box")
    assert via(rdr, "12.81.93.9") == "box-other"
    assert via(rdr, LONDON) == "miss:no_box_in_reach"


def test_all_boxes_down_send_viewers_to_the_origin_with_the_reason(procs, tmp_path, redis,
                                                                    boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1")
    boxes.set("box-a1", status="down")
    boxes.set("box-b1", status="draining")
    wait_for(lambda: box_of(rdr) == "miss:no_box", 5, what="no box")
    r = curl(rdr.url + "/v/a.ts")
    assert r.headers["location"] == ORIGIN + "/v/a.ts"


def test_services_pick_sla_and_origin_by_prefix_and_count_fallbacks(procs, tmp_path, redis,
                                                                    boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={
        "service": "name=live prefix=/live/ origin=http://127.0.0.1:9/live-origin max_class=pop"})
    # from 127.0.0.9 (no PoP) the live service allows no box; the default one does
    wait_for(lambda: box_of(rdr, "/v/a.ts", source="127.0.0.9") in ("box-a1", "box-b1"), 10,
             what="default service")
    r = curl(rdr.url + "/live/ch1/seg.ts", source="127.0.0.9")
    assert r.headers["echos-miss"] == "no_box_in_reach"
    assert r.headers["location"] == "http://127.0.0.1:9/live-origin/live/ch1/seg.ts"
    assert box_of(rdr, "/live/ch1/seg.ts", source="127.0.0.1") == "box-a1"
    m = rdr.metrics()
    assert m['echos_redirector_service_fallbacks_total{service="live",'
             'reason="no_box_in_reach"}'] == 1
    assert m['echos_redirector_service_requests_total{service="live",outcome="box"}'] == 1


def test_alternates_name_the_next_best_box_and_the_origin(procs, tmp_path, redis, boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"alternates": "yes"})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1")
    r = curl(rdr.url + "/v/alt.ts?q=1")
    links = re.findall(r"<([^>]+)>; rel=duplicate", r.headers["link"])
    assert len(links) == 2, r.headers["link"]
    assert links[0].startswith(BOX_B[1] + "/t/1~7~") and "~box-b1~" in links[0]
    assert links[0].endswith("/v/alt.ts?q=1")
    assert links[1] == ORIGIN + "/v/alt.ts?q=1"


def test_h2_sends_signed_urls_never_indexed(procs, tmp_path, redis, boxes):
    """Location and Link of a box carry tokens: over h2 they are literals never indexed
    (RFC 7541 7.1.3), so no HPACK table, ours or an intermediary's, keeps or compresses
    them against other fields; the constant fields stay indexable."""
    import socket
    import h2.config
    import h2.connection
    import h2.events
    from hpack import NeverIndexedHeaderTuple

    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"alternates": "yes"})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1")
    with socket.create_connection(("127.0.0.1", rdr.port), timeout=5) as s:
        c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        c.initiate_connection()
        for sid, path in ((1, "/v/n1.ts"), (3, "/v/n2.ts")):
            c.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                 (":authority", "x")], end_stream=True)
        s.sendall(c.data_to_send())
        events, deadline = [], time.monotonic() + 5
        while sum(isinstance(e, h2.events.StreamEnded) for e in events) < 2 \
                and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            events += c.receive_data(data)
        resp = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert len(resp) == 2, events
        for r in resp:
            fields = {k: (v, isinstance((k, v), NeverIndexedHeaderTuple) or
                          isinstance(h, NeverIndexedHeaderTuple))
                      for h in r.headers for k, v in [h]}
            assert fields["echos-box"][0] == "box-a1"
            assert fields["location"][1] and fields["link"][1], r.headers
            assert not fields["echos-box"][1] and not fields["cache-control"][1], r.headers


def test_tokens_bound_to_the_client_prefix(procs, tmp_path, redis, boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"token.bind_client_prefix": "24/48"})
    wait_for(lambda: box_of(rdr) == "box-a1", 10, what="box-a1")
    loc = curl(rdr.url + "/v/n.ts").headers["location"]
    assert "~127.0.0.0_24~" in loc, loc


def test_sighup_reloads_the_topology_and_a_bad_one_is_kept_out(procs, tmp_path, redis, boxes):
    add_ab(boxes)
    rdr = Rdr(procs, tmp_path, redis.addr)
    wait_for(lambda: box_of(rdr, source="127.0.0.1") == "box-a1", 10, what="box-a1")
    topo = Path(tmp_path) / "topology.txt"
    topo.write_text("127.0.0.0/30 pop-b region-2\n")
    rdr.proc.signal(signal.SIGHUP)
    wait_for(lambda: box_of(rdr, source="127.0.0.1") == "box-b1", 5, what="moved to pop-b")
    topo.write_text("127.0.0.0/33 pop-a region-1\n")
    rdr.proc.signal(signal.SIGHUP)
    wait_for(lambda: "keeping the old one" in rdr.proc.log_text(), 5, what="refusal logged")
    assert box_of(rdr, source="127.0.0.1") == "box-b1"


def test_key_rotation_through_a_real_edge_never_shows_a_403(procs, tmp_path, redis, origin,
                                                            certs):
    origin.put("/v/rot.ts", b"r" * 5000)
    shim = start_shim(procs, origin, redis)
    edge = Edge(procs, tmp_path / "edge", shim, redis, certs, **{"box.id": "box-a",
                                                                  "token.key": "7:" + box_key("box-a").hex()})
    # small bitrate: 50 redirects/s to one 200M box must not trip the charging
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"sla.max_state_age": "3s",
                                                  "sla.viewer_bitrate": "100k"})
    wait_for(lambda: box_of(rdr, "/v/rot.ts") == "box-a", 15, what="edge registered")
    new_hex = "ff" * 32
    new_key = "8:" + hkdf_sha256(bytes.fromhex(new_hex), b"echos-box-key-v1",
                                 b"box-a").hex()
    statuses, kids, stop = [], set(), threading.Event()

    def viewer():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            r = run(["curl", "-s", "-k", "-L", "--max-time", "5", "-o", "/dev/null",
                     "-w", "%{http_code} %{url_effective}", rdr.url + "/v/rot.ts"],
                    timeout=10)
            code, url = (r.stdout.split(" ", 1) + [""])[:2]
            statuses.append(code)
            m = re.search(r"/t/1~(\d+)~", url)
            if m:
                kids.add(m.group(1))
            time.sleep(0.02)

    t = threading.Thread(target=viewer, daemon=True)
    t.start()
    try:
        # 1. boxes first: the edge accepts kid 7 and kid 8
        text = Path(edge.conf_path).read_text()
        Path(edge.conf_path).write_text(text + f"token.key = {new_key}\n")
        edge.proc.signal(signal.SIGHUP)
        wait_for(lambda: "reload: 2 token keys" in edge.proc.log_text(), 5, what="edge reload")
        time.sleep(0.5)
        # 2. the redirector signs with kid 8
        conf = Path(rdr.conf_path).read_text()
        conf2 = conf + f"token.master = 8:{new_hex}\ntoken.sign_kid = 8\n"
        Path(rdr.conf_path).write_text(conf2)
        rdr.proc.signal(signal.SIGHUP)
        wait_for(lambda: "~box-a~" in curl(rdr.url + "/v/rot.ts").headers["location"] and
                 "/t/1~8~" in curl(rdr.url + "/v/rot.ts").headers["location"], 5,
                 what="signing with kid 8")
        time.sleep(0.5)
        # 3. retire kid 7: redirector, then (its tokens all used) the edge
        Path(rdr.conf_path).write_text(conf.replace(f"token.master = {MASTER}",
                                                    f"token.master = 8:{new_hex}"))
        rdr.proc.signal(signal.SIGHUP)
        time.sleep(0.5)
        Path(edge.conf_path).write_text(
            text.replace(f"token.key = 7:{box_key('box-a').hex()}", f"token.key = {new_key}"))
        edge.proc.signal(signal.SIGHUP)
        wait_for(lambda: "reload: 1 token keys" in edge.proc.log_text(), 5, what="retired")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(15)
    assert statuses and set(statuses) == {"200"}, statuses
    assert kids == {"7", "8"}, kids
    assert "/t/1~8~" in curl(rdr.url + "/v/rot.ts").headers["location"]
