"""Ops numbers agree everywhere: known accounting counters written into Redis the way the
daemons write them (HINCRBY into echos:acct:total and the current minute bucket) must
show the exact expected ratios in `echosctl offload --json` (every window), in
echos-policy's JSON API and in its /metrics; a dead Redis gives a clear error (echosctl
exit 1, API 503) while the dashboard page still loads. Also: echosctl publish's request.
"""
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import echos_bin, free_port, run, wait_for, wait_port, write_conf

WINDOWS = ["1m", "1h", "1d", "total"]

# A scripted run: 30 box responses of 100000 bytes, 10 origin fallbacks of 100000 bytes
# (byte offload 0.75), 2 origin fills of 50000, 1 prefetch of 25000; 10 redirects to the
# origin: 6 no_box_in_reach, 4 all_over_capacity.
COUNTERS = {
    "box.bytes": 3000000, "box.reqs": 30, "box.hits": 28, "box.misses": 2,
    "box.fill_bytes": 100000,
    "box.box-a.bytes": 2000000, "box.box-a.reqs": 20,
    "box.box-b.bytes": 1000000, "box.box-b.reqs": 10,
    "origin.fallback_bytes": 1000000, "origin.fallback_reqs": 10,
    "origin.fill_bytes": 100000, "origin.fill_reqs": 2,
    "origin.prefetch_bytes": 25000,
    "rdr.box": 30, "rdr.origin": 10,
    "rdr.miss.no_box_in_reach": 6, "rdr.miss.all_over_capacity": 4,
    # breakdowns: service "vod" has all box bytes and 1/4 of the fallbacks
    "svc.vod.box.bytes": 3000000, "svc.vod.box.reqs": 30,
    "svc.vod.origin.fallback_bytes": 250000, "svc.vod.origin.fallback_reqs": 3,
    "svc.live.origin.fallback_bytes": 750000, "svc.live.origin.fallback_reqs": 7,
    "region.eu-west.box.bytes": 3000000, "region.eu-west.box.reqs": 30,
    "region._.origin.fallback_bytes": 1000000, "region._.origin.fallback_reqs": 10,
    "region._.rdr.miss.no_box_in_reach": 6,
}
BYTE_OFFLOAD = 3000000 / (3000000 + 1000000)
REQ_OFFLOAD = 30 / (30 + 10)
EGRESS = 1000000 + 100000 + 25000


def account(redis, counters):
    """Adds counters as a daemon's flush does: total and the current minute bucket."""
    minute = int(time.time()) // 60
    for field, n in counters.items():
        redis.cli("HINCRBY", "echos:acct:total", field, n)
        redis.cli("HINCRBY", f"echos:acct:m:{minute}", field, n)
    redis.cli("EXPIRE", f"echos:acct:m:{minute}", 172800)


def ctl(redis_addr, *args, timeout=20):
    return run([echos_bin("echosctl"), "--redis", redis_addr, *args], timeout=timeout)


def ctl_json(redis_addr, *args):
    r = ctl(redis_addr, "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def http_get(url, timeout=10):
    """(status, body bytes, content type) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{{{labels}}} not in /metrics:\n{text}")


@pytest.fixture
def policy(procs, redis, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "policy.conf", {
        "redis.addr": redis.addr, "interval": "1s", "http.listen": f"127.0.0.1:{port}",
        "http.redis_timeout": "300ms"})
    p = procs.start("echos-policy", [echos_bin("echos-policy"), "-c", conf])
    wait_port(port, 10, proc=p)
    p.url = f"http://127.0.0.1:{port}"
    return p


def assert_sums(doc):
    assert doc["box_bytes"] == 3000000
    assert doc["origin_bytes"] == 1000000
    assert doc["box_requests"] == 30
    assert doc["origin_requests"] == 10
    assert doc["origin_egress_bytes"] == EGRESS
    assert doc["origin_fill_bytes"] == 100000
    assert doc["origin_prefetch_bytes"] == 25000
    assert doc["byte_offload"] == BYTE_OFFLOAD
    assert doc["request_offload"] == REQ_OFFLOAD


def test_offload_agrees_in_cli_api_and_metrics(redis, policy):
    account(redis, COUNTERS)
    for w in WINDOWS:
        cli = ctl_json(redis.addr, "offload", "--window", w)
        status, body, ctype = http_get(f"{policy.url}/api/offload?window={w}")
        api = json.loads(body)
        assert status == 200 and ctype.startswith("application/json")
        for doc in (cli, api):
            assert doc["window"] == w
            assert_sums(doc)
            assert {b["id"]: b["bytes"] for b in doc["boxes"]} == \
                {"box-a": 2000000, "box-b": 1000000}
        # the two documents are the same rendering, apart from the clock
        cli.pop("now_ms"), api.pop("now_ms")
        assert cli == api

    status, body, ctype = http_get(f"{policy.url}/metrics")
    text = body.decode()
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    for w in WINDOWS:
        assert metric(text, "echos_policy_byte_offload_ratio", f'window="{w}"') == BYTE_OFFLOAD
        assert metric(text, "echos_policy_request_offload_ratio", f'window="{w}"') == \
            REQ_OFFLOAD
        assert metric(text, "echos_policy_window_box_bytes", f'window="{w}"') == 3000000
        assert metric(text, "echos_policy_window_origin_egress_bytes", f'window="{w}"') == \
            EGRESS
    assert metric(text, "echos_policy_acct_bytes_total", 'kind="box"') == 3000000
    assert metric(text, "echos_policy_acct_bytes_total", 'kind="origin_fallback"') == 1000000
    assert metric(text, "echos_policy_fallbacks_total", 'reason="no_box_in_reach"') == 6
    assert "echos_policy_state_readable 1" in text

    # the human table shows the same ratio, rounded
    r = ctl(redis.addr, "offload", "--window", "1h")
    assert r.returncode == 0 and "byte offload      75.0%" in r.stdout


def test_windows_leave_out_older_minutes(redis, policy):
    """A bucket 30 minutes old counts in 1h, 1d and total but not in 1m."""
    old = int(time.time()) // 60 - 30
    redis.cli("HINCRBY", f"echos:acct:m:{old}", "box.bytes", 500)
    redis.cli("HINCRBY", "echos:acct:total", "box.bytes", 500)
    account(redis, {"box.bytes": 1500, "origin.fallback_bytes": 1000})
    want = {"1m": 1500 / 2500, "1h": 2000 / 3000, "1d": 2000 / 3000, "total": 2000 / 3000}
    for w, ratio in want.items():
        assert ctl_json(redis.addr, "offload", "--window", w)["byte_offload"] == ratio
        assert json.loads(http_get(f"{policy.url}/api/offload?window={w}")[1])[
            "byte_offload"] == ratio


def test_service_and_region_breakdowns(redis, policy):
    account(redis, COUNTERS)
    cases = [(["--service", "vod"], "service=vod", 3000000 / 3250000, 30 / 33),
             (["--service", "live"], "service=live", 0.0, 0.0),
             (["--region", "eu-west"], "region=eu-west", 1.0, 1.0),
             (["--region", "_"], "region=_", 0.0, 0.0)]
    for args, query, byte_ratio, req_ratio in cases:
        for w in ("1m", "total"):
            cli = ctl_json(redis.addr, "offload", "--window", w, *args)
            api = json.loads(http_get(f"{policy.url}/api/offload?window={w}&{query}")[1])
            for doc in (cli, api):
                assert doc["byte_offload"] == byte_ratio, (args, w, doc)
                assert doc["request_offload"] == req_ratio, (args, w, doc)
    total = ctl_json(redis.addr, "offload")
    assert {s["name"] for s in total["services"]} == {"vod", "live"}
    assert {r["name"] for r in total["regions"]} == {"eu-west", "_"}
    # fallbacks of one region, by reason
    fb = ctl_json(redis.addr, "fallbacks", "--region", "_")
    assert [(x["reason"], x["count"]) for x in fb["reasons"]] == [("no_box_in_reach", 6)]
    # one scope at a time
    r = ctl(redis.addr, "offload", "--service", "vod", "--region", "_")
    assert r.returncode == 2 and "--service and --region" in r.stderr
    assert http_get(f"{policy.url}/api/offload?service=vod&region=_")[0] == 400
    assert http_get(f"{policy.url}/api/offload?service=a.b")[0] == 400


def test_fallbacks_top_and_boxes(redis, policy):
    account(redis, COUNTERS)
    minute = int(time.time()) // 60
    redis.cli("ZINCRBY", f"echos:pop:{{eu-west}}:m:{minute}", 9, "/v/a/seg1.ts")
    redis.cli("ZINCRBY", f"echos:pop:{{eu-west}}:m:{minute - 1}", 3, "/v/a/seg1.ts")
    redis.cli("ZINCRBY", f"echos:pop:{{eu-west}}:m:{minute}", 5, "/v/b/seg1.ts")
    redis.cli("ZINCRBY", f"echos:pop:{{_}}:m:{minute}", 2, "/v/b/seg1.ts")
    now_ms = int(time.time() * 1000)
    redis.cli("HSET", "echos:box:{box-a}", "id", "box-a", "pop", "paris", "region",
              "eu-west", "status", "up", "uplink_bps", 100000000, "egress_bps", 25000000,
              "ts_ms", now_ms, "hits", 28, "misses", 2, "cache_bytes", 50,
              "cache_max_bytes", 200, "conns", 3)
    redis.cli("ZADD", "echos:{boxes}", now_ms, "box-a")

    fb_cli = ctl_json(redis.addr, "fallbacks", "--window", "1h")
    fb_api = json.loads(http_get(f"{policy.url}/api/fallbacks?window=1h")[1])
    for doc in (fb_cli, fb_api):
        assert [(x["reason"], x["count"], x["share"]) for x in doc["reasons"]] == \
            [("no_box_in_reach", 6, 0.6), ("all_over_capacity", 4, 0.4)]
        assert doc["redirects_origin"] == 10

    top_cli = ctl_json(redis.addr, "top", "--window", "1h")
    top_api = json.loads(http_get(f"{policy.url}/api/top?window=1h")[1])
    for doc in (top_cli, top_api):
        assert [(o["path"], o["requests"]) for o in doc["objects"]] == \
            [("/v/a/seg1.ts", 12), ("/v/b/seg1.ts", 7)]
    top_1m = ctl_json(redis.addr, "top", "--window", "1m", "--region", "eu-west")
    assert [o["requests"] for o in top_1m["objects"]][0] in (9, 12)  # minute may roll
    assert http_get(f"{policy.url}/api/top?window=1d")[0] == 400

    boxes_api = json.loads(http_get(f"{policy.url}/api/boxes?window=1h")[1])
    boxes_cli = ctl_json(redis.addr, "boxes")
    for doc in (boxes_api, boxes_cli):
        (b,) = doc["boxes"]
        assert (b["id"], b["status"], b["load"], b["cache_fill"], b["hit_ratio"]) == \
            ("box-a", "up", 0.25, 0.25, 28 / 30)
        assert b["bytes"] == 2000000
        (reg,) = doc["regions"][:1]
        assert reg["name"] == "eu-west" and reg["up"] == 1
    human = ctl(redis.addr, "boxes")
    assert human.returncode == 0 and "box-a" in human.stdout and "25.0%" in human.stdout

    series = json.loads(http_get(f"{policy.url}/api/series?window=1h")[1])
    assert len(series["points"]) == 61
    assert series["points"][-1]["byte_offload"] in (BYTE_OFFLOAD, None)  # minute may roll
    assert any(p["byte_offload"] == BYTE_OFFLOAD for p in series["points"][-2:])


def test_redis_down_is_a_clear_error(redis, policy):
    account(redis, COUNTERS)
    assert ctl_json(redis.addr, "offload")["byte_offload"] == BYTE_OFFLOAD
    redis.stop()

    for cmd in (["offload"], ["--json", "offload", "--window", "1h"], ["boxes"], ["top"],
                ["fallbacks"], ["drain", "box-a"]):
        started = time.monotonic()
        r = ctl(redis.addr, *cmd)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert f"redis {redis.addr}" in r.stderr and "refused" in r.stderr, r.stderr
        assert r.stdout == ""
        assert time.monotonic() - started < 5

    for path in ("/api/offload", "/api/boxes", "/api/fallbacks", "/api/top",
                 "/api/series?window=1h"):
        status, body, ctype = http_get(policy.url + path)
        assert status == 503 and ctype.startswith("application/json"), (path, status)
        doc = json.loads(body)
        assert doc["status"] == 503 and doc["error"].startswith("redis unreachable: redis ")
    status, body, ctype = http_get(policy.url + "/")
    assert status == 200 and ctype.startswith("text/html") and b"byte-offload" in body
    text = http_get(policy.url + "/metrics")[1].decode()
    assert "echos_policy_state_readable 0" in text
    assert 'echos_policy_byte_offload_ratio{window="1h"} NaN' in text
    assert "echos_policy_redis_up 0" in text or "echos_policy_redis_up 1" in text

    # back: answers resume within the retry interval; the counters were lost with it
    redis.start()
    account(redis, COUNTERS)
    wait_for(lambda: http_get(policy.url + "/api/offload?window=total")[0] == 200, 10,
             what="API answering again after Redis restarted")
    doc = json.loads(http_get(policy.url + "/api/offload?window=total")[1])
    assert doc["byte_offload"] == BYTE_OFFLOAD
    assert policy.alive()


def test_policy_prune_loop_still_works(redis, policy):
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    redis.cli("ZADD", "echos:{boxes}", old, "gone-box")
    redis.cli("ZADD", "echos:{boxes}", int(time.time() * 1000), "live-box")
    wait_for(lambda: redis.cli("ZSCORE", "echos:{boxes}", "gone-box") == "", 10,
             what="the silent box pruned from the registry")
    assert redis.cli("ZSCORE", "echos:{boxes}", "live-box") != ""
    text = http_get(policy.url + "/metrics")[1].decode()
    assert "echos_policy_registry_pruned_total 1" in text


def test_api_refuses_bad_requests(redis, policy):
    assert http_get(policy.url + "/api/offload?window=7d")[0] == 400
    assert http_get(policy.url + "/api/series?window=1m")[0] == 400
    assert http_get(policy.url + "/nothing")[0] == 404
    req = urllib.request.Request(policy.url + "/api/offload", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405 and e.headers["Allow"] == "GET, HEAD"
    status, body, _ = http_get(policy.url + "/")
    assert status == 200 and b"http://" not in body.split(b"<svg")[0].split(b"<style>")[1]


def test_cli_usage_errors(redis):
    assert ctl(redis.addr, "offload", "--window", "2h").returncode == 2
    assert ctl(redis.addr, "top", "--window", "1d").returncode == 2
    assert ctl(redis.addr, "drain").returncode == 2
    assert ctl(redis.addr, "frobnicate").returncode == 2
    r = run([echos_bin("echosctl"), "--help"])
    assert r.returncode == 0 and "publish URL" in r.stdout


class _ShimStub(BaseHTTPRequestHandler):
    """Answers POST /_echos/publish with the status the test sets; records requests."""
    status = 200
    seen = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        _ShimStub.seen.append((self.path, dict(self.headers), self.rfile.read(n)))
        body = b'{"accepted":true}' if self.status == 200 else b'{"error":"no"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shim_stub():
    srv = HTTPServer(("127.0.0.1", 0), _ShimStub)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    _ShimStub.seen = []
    yield srv
    srv.shutdown()
    srv.server_close()


def test_publish_posts_the_documented_request(shim_stub, tmp_path):
    port = shim_stub.server_address[1]
    tok = tmp_path / "token"
    tok.write_text("s3cr3t-token\n")
    _ShimStub.status = 202
    r = run([echos_bin("echosctl"), "publish", f"http://127.0.0.1:{port}/v/new/index.m3u8",
             "--expected-rps", "250", "--region", "eu-west", "--region", "us-east",
             "--token-file", tok], timeout=20)
    assert r.returncode == 0, r.stderr
    (path, headers, body), = _ShimStub.seen
    assert path == "/_echos/publish"
    assert headers["Authorization"] == "Bearer s3cr3t-token"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"path": "/v/new/index.m3u8", "expected_rps": 250,
                                "regions": ["eu-west", "us-east"]}

    _ShimStub.status = 404
    r = run([echos_bin("echosctl"), "publish", f"http://127.0.0.1:{port}/v/x.ts"],
            env={"ECHOS_PUBLISH_TOKEN": "t0k", "PATH": "/usr/bin:/bin"}, timeout=20)
    assert r.returncode == 1
    assert "answered 404" in r.stderr and "no publish API" in r.stderr

    r = run([echos_bin("echosctl"), "publish", f"http://127.0.0.1:{port}/v/x.ts"],
            env={"PATH": "/usr/bin:/bin"}, timeout=20)
    assert r.returncode == 2 and "token" in r.stderr
    dead = free_port()
    r = run([echos_bin("echosctl"), "publish", f"http://127.0.0.1:{dead}/v/x.ts"],
            env={"ECHOS_PUBLISH_TOKEN": "t0k", "PATH": "/usr/bin:/bin"}, timeout=20)
    assert r.returncode == 1 and "publish: POST" in r.stderr
