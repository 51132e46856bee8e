"""The dashboard in a real browser: headless Chromium loads echos-policy's page while
accounting traffic keeps flowing (written as the daemons write it, three box bytes for
every origin byte), and the ratio the page shows equals the API's. Screenshots go to the
test's tmp dir. With Redis gone the page still loads and says "Redis unreachable".
Skipped only when Chromium is not installed (Debian package `chromium`)."""
import html
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import echos_bin, free_port, wait_port, write_conf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (apt-get install chromium)")


def chromium(url, *extra, timeout=60):
    """Runs headless Chromium on url with a fresh profile; returns stdout (bounded)."""
    profile = tempfile.mkdtemp(prefix="echos-chromium-")
    try:
        r = subprocess.run([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000", *extra, url],
            capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0, f"chromium failed ({r.returncode}):\n{r.stderr[-3000:]}"
    return r.stdout


def element(dom, elem_id):
    """(attributes text, inner text) of the element with that id in the dumped DOM."""
    m = re.search(r'<(\w+)\s+id="%s"([^>]*)>(.*?)</\1>' % re.escape(elem_id), dom, re.S)
    assert m, f"#{elem_id} not in the rendered page"
    return m.group(2), html.unescape(re.sub(r"<[^>]+>", "", m.group(3))).strip()


def api(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class Traffic:
    """Writes accounting as the edge and the shim flush it: every 100 ms, 3 box bytes for
    each origin byte, into the total and the current minute bucket (one pipeline)."""

    def __init__(self, redis):
        self.redis = redis
        self.stop_ev = threading.Event()
        self.rounds = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_ev.is_set():
            minute = int(time.time()) // 60
            cmds = []
            for key in ("echos:acct:total", f"echos:acct:m:{minute}"):
                cmds += [f"HINCRBY {key} box.bytes 300000", f"HINCRBY {key} box.reqs 3",
                         f"HINCRBY {key} box.box-a.bytes 300000",
                         f"HINCRBY {key} origin.fallback_bytes 100000",
                         f"HINCRBY {key} origin.fallback_reqs 1",
                         f"HINCRBY {key} rdr.miss.no_box_in_reach 1"]
            cmds.append(f"EXPIRE echos:acct:m:{minute} 172800")
            # both keys change in one MULTI, so a reader never sees half a round
            subprocess.run(["redis-cli", "-p", str(self.redis.port)],
                           input="MULTI\n" + "\n".join(cmds) + "\nEXEC\n",
                           capture_output=True, text=True, timeout=10)
            self.rounds += 1
            self.stop_ev.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(15)


@pytest.fixture
def policy(procs, redis, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "policy.conf", {
        "redis.addr": redis.addr, "http.listen": f"127.0.0.1:{port}",
        "http.redis_timeout": "300ms"})
    p = procs.start("echos-policy", [echos_bin("echos-policy"), "-c", conf])
    wait_port(port, 10, proc=p)
    p.url = f"http://127.0.0.1:{port}"
    return p


def test_dashboard_shows_the_api_ratio(redis, policy, tmp_path):
    now_ms = int(time.time() * 1000)
    redis.cli("HSET", "echos:box:{box-a}", "id", "box-a", "pop", "paris", "region",
              "eu-west", "status", "up", "uplink_bps", 200000000, "egress_bps", 50000000,
              "ts_ms", now_ms, "hits", 9, "misses", 1, "cache_bytes", 64, "cache_max_bytes",
              256, "conns", 2, "ttfb_ms", 8)
    redis.cli("ZADD", "echos:{boxes}", now_ms, "box-a")
    minute = int(time.time()) // 60
    redis.cli("ZINCRBY", f"echos:pop:{{eu-west}}:m:{minute}", 42, "/v/demo/seg1.ts")
    redis.cli("ZINCRBY", f"echos:pop:{{eu-west}}:m:{minute}", 7, "/v/<b>x</b>.ts")

    with Traffic(redis) as traffic:
        deadline = time.monotonic() + 10
        while traffic.rounds < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        dom = chromium(policy.url + "/", "--dump-dom")
        shot = tmp_path / "dashboard.png"
        chromium(policy.url + "/", f"--screenshot={shot}", "--window-size=1280,900")
        doc = api(policy.url + "/api/offload?window=1h")

    assert doc["byte_offload"] == 0.75  # traffic keeps the ratio while bytes grow
    attrs, text = element(dom, "byte-offload")
    assert text == f"{100 * doc['byte_offload']:.1f}%" == "75.0%"
    m = re.search(r'data-ratio="([^"]*)"', attrs)
    assert m and float(m.group(1)) == doc["byte_offload"]
    _, req = element(dom, "req-offload")
    assert req == f"{100 * doc['request_offload']:.1f}%"
    status_attrs, status_text = element(dom, "status")
    assert status_text == "", status_text

    assert "box-a" in dom and "/v/demo/seg1.ts" in dom and "no_box_in_reach" in dom
    assert "<b>x</b>" not in dom and "&lt;b&gt;x&lt;/b&gt;" in dom  # paths are text
    assert 'id="chart-line"' in dom or "<circle" in dom  # the series is drawn
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_dashboard_says_redis_unreachable(redis, policy, tmp_path):
    redis.stop()
    dom = chromium(policy.url + "/", "--dump-dom")
    chromium(policy.url + "/", f"--screenshot={tmp_path / 'redis-down.png'}",
             "--window-size=1280,900")
    attrs, text = element(dom, "status")
    assert 'class="show"' in attrs
    assert text.startswith("Redis unreachable: redis 127.0.0.1:"), text
    _, ratio = element(dom, "byte-offload")
    assert ratio == "\u2013"
