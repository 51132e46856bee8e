"""echos-origin-shim's publish API (POST /_echos/publish, docs/ops.md): a content owner
announces new content so echos-policy can place it before the first viewer. Checks the
Redis keys it writes (docs/redis.md, "Publish announcements") and every refusal: token,
body, method, size, disabled API, Redis down."""
import http.client
import json
import time

from conftest import echos_bin, free_port, run, wait_for, wait_port
from test_shim import Shim, blob

TOKEN = "pub-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(port, body, headers=None, path="/_echos/publish", method="POST", chunked=False):
    """(status, headers with lower-case names, body bytes) of one request with a body."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if chunked:
            c.putheader("Transfer-Encoding", "chunked")
            c.endheaders()
            try:
                for i in range(0, len(body), 4096):
                    part = body[i:i + 4096]
                    c.send(b"%x\r\n%s\r\n" % (len(part), part))
                c.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the shim may answer and close before the whole body is sent
        else:
            c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            try:
                c.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def one_line_json_error(body):
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body
    doc = json.loads(body)
    assert set(doc) == {"error"} and doc["error"], doc
    return doc["error"]


def publishing_shim(procs, tmp_path, origin, redis, **extra):
    return Shim(procs, tmp_path, origin.url, redis_addr=redis.addr, publish__token=TOKEN,
                **extra)


def test_publish_is_202_and_writes_region_sets_and_meta_with_ttl(procs, origin, redis,
                                                                 tmp_path):
    shim = publishing_shim(procs, tmp_path, origin, redis)
    t0 = int(time.time() * 1000)
    status, h, body = post(shim.port, {"path": "/v/new/playlist.m3u8", "expected_rps": 50,
                                       "size_bytes": 123456,
                                       "regions": ["eu-west", "us-east"]}, AUTH)
    assert status == 202, body
    assert h["content-type"] == "application/json"
    assert json.loads(body) == {"accepted": True, "path": "/v/new/playlist.m3u8",
                                "regions": ["eu-west", "us-east"], "ttl_s": 3600}
    for region in ("eu-west", "us-east"):
        key = "echos:pub:{%s}" % region
        assert redis.cli("ZSCORE", key, "/v/new/playlist.m3u8") == "50"
        assert 3500 < int(redis.cli("TTL", key)) <= 3600
    meta_key = "echos:pubmeta:{/v/new/playlist.m3u8}"
    meta = redis.hgetall(meta_key)
    assert meta["expected_rps"] == "50"
    assert meta["size_bytes"] == "123456"
    assert meta["regions"] == "eu-west,us-east"
    assert meta["ttl_s"] == "3600"
    assert t0 - 1000 <= int(meta["ts_ms"]) <= int(time.time() * 1000) + 1000
    assert int(meta["expires_ms"]) == int(meta["ts_ms"]) + 3600 * 1000
    assert 3500 < int(redis.cli("TTL", meta_key)) <= 3600

    # no regions (absent, or empty as echosctl sends it): "_all", ttl_s on every key
    status, _, body = post(shim.port, {"path": "/v/b.ts", "expected_rps": 2.5,
                                       "ttl_s": 120}, AUTH)
    assert status == 202, body
    assert json.loads(body)["regions"] == ["_all"]
    status, _, body = post(shim.port, {"path": "/v/b.ts", "expected_rps": 2.5,
                                       "ttl_s": 120, "regions": []}, AUTH)
    assert status == 202, body
    assert json.loads(body)["regions"] == ["_all"]
    assert redis.cli("ZSCORE", "echos:pub:{_all}", "/v/b.ts") == "2.5"
    assert 0 < int(redis.cli("TTL", "echos:pub:{_all}")) <= 120
    assert 0 < int(redis.cli("TTL", "echos:pubmeta:{/v/b.ts}")) <= 120
    assert redis.hgetall("echos:pubmeta:{/v/b.ts}")["size_bytes"] == "0"

    # a shorter announcement never shortens a region set that holds a longer one
    status, _, _ = post(shim.port, {"path": "/v/c.ts", "expected_rps": 1, "ttl_s": 60,
                                    "regions": ["eu-west"]}, AUTH)
    assert status == 202
    assert int(redis.cli("TTL", "echos:pub:{eu-west}")) > 3500

    # announcing again replaces the score and leaves regions no longer named
    status, _, _ = post(shim.port, {"path": "/v/new/playlist.m3u8", "expected_rps": 80,
                                    "regions": ["eu-west"]}, AUTH)
    assert status == 202
    assert redis.cli("ZSCORE", "echos:pub:{eu-west}", "/v/new/playlist.m3u8") == "80"
    assert redis.cli("ZSCORE", "echos:pub:{us-east}", "/v/new/playlist.m3u8") == ""
    assert redis.hgetall(meta_key)["regions"] == "eu-west"

    m = shim.metrics()
    assert m['echos_shim_publish_total{result="accepted"}'] == 5
    # announcements are not bytes served to anyone
    assert m['echos_shim_requests_total{kind="fallback",code="2xx"}'] == 0
    assert m['echos_shim_bytes_total{kind="fallback"}'] == 0
    assert "publish /v/new/playlist.m3u8: 50 rps, regions eu-west,us-east" in \
        shim.proc.log_text()
    assert TOKEN not in shim.proc.log_text()
    assert shim.proc.stop() == 0


def test_missing_or_wrong_token_is_401_and_writes_nothing(procs, origin, redis, tmp_path):
    shim = publishing_shim(procs, tmp_path, origin, redis)
    good = {"path": "/v/x.ts", "expected_rps": 5}
    cases = [
        ({}, "missing"),
        ({"Authorization": "Bearer wrong-token-0123456789abc"}, "wrong"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong"),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "wrong"),
        ({"Authorization": f"Basic {TOKEN}"}, "wrong"),
        ({"Authorization": TOKEN}, "wrong"),
        ({"Authorization": "Bearer "}, "wrong"),
    ]
    for headers, kind in cases:
        status, h, body = post(shim.port, good, headers)
        assert status == 401, headers
        assert h["www-authenticate"].startswith('Bearer realm="echos-publish"')
        assert kind in one_line_json_error(body)
    assert redis.cli("KEYS", "echos:pub*") == ""
    assert shim.metrics()['echos_shim_publish_total{result="unauthorized"}'] == len(cases)
    # the scheme is case-insensitive (RFC 9110)
    status, _, _ = post(shim.port, good, {"Authorization": f"bearer {TOKEN}"})
    assert status == 202


def test_malformed_json_and_bad_values_are_400_with_a_one_line_json_error(
        procs, origin, redis, tmp_path):
    shim = publishing_shim(procs, tmp_path, origin, redis)
    cases = [
        ("", "expected a JSON object"),
        ("not json", "expected a JSON object"),
        ('{"path": "/v/a.ts", "expected_rps": 5', "end of the body"),
        ('{"path": "/v/a.ts", "expected_rps": 5}}', "unexpected data"),
        ('{"path": "/v/a.ts", "expected_rps": 5, "extra": 1}', 'unknown key "extra"'),
        ('{"path": "/v/a.ts", "path": "/v/b.ts", "expected_rps": 5}', "appears twice"),
        ('{"expected_rps": 5}', "path: required"),
        ('{"path": "/v/a.ts"}', "expected_rps: required"),
        ('{"path": "/v/../etc/passwd", "expected_rps": 5}', "path: dot segment"),
        ('{"path": "/v/%2e%2e/x", "expected_rps": 5}', "path: dot segment"),
        ('{"path": "/v/a%2fb", "expected_rps": 5}', "path: encoded slash"),
        ('{"path": "v/a.ts", "expected_rps": 5}', "path: "),
        ('{"path": "/v/a.ts?x=1", "expected_rps": 5}', "without query"),
        ('{"path": "/v/a.ts", "expected_rps": -1}', "expected_rps: expected a number"),
        ('{"path": "/v/a.ts", "expected_rps": 1e12}', "from 0 to 1000000000"),
        ('{"path": "/v/a.ts", "expected_rps": "5"}', "expected_rps: expected a number"),
        ('{"path": "/v/a.ts", "expected_rps": 5, "ttl_s": 0}', "ttl_s: expected a whole"),
        ('{"path": "/v/a.ts", "expected_rps": 5, "ttl_s": 99999999}', "ttl_s"),
        ('{"path": "/v/a.ts", "expected_rps": 5, "regions": ["eu west"]}', "regions[0]"),
        ('{"path": "/v/a.ts", "expected_rps": 5, "regions": ["a", "a"]}', "listed twice"),
    ]
    for body, want in cases:
        status, h, answer = post(shim.port, body, AUTH)
        assert status == 400, body
        assert h["content-type"] == "application/json"
        err = one_line_json_error(answer)
        assert want in err, (body, err)
    assert redis.cli("KEYS", "echos:pub*") == ""
    assert shim.metrics()['echos_shim_publish_total{result="bad_request"}'] == len(cases)
    assert shim.request("/_echos/publish", method="HEAD")[0] == 405


def test_oversized_body_is_413_declared_or_streamed(procs, origin, redis, tmp_path):
    shim = publishing_shim(procs, tmp_path, origin, redis)
    big = json.dumps({"path": "/v/a.ts", "expected_rps": 5, "pad": "x" * 20000})
    status, _, body = post(shim.port, big, AUTH)
    assert status == 413
    assert "16384" in one_line_json_error(body)
    status, _, body = post(shim.port, big, AUTH, chunked=True)
    assert status == 413
    assert "16384" in one_line_json_error(body)
    # a body of exactly the bound is read (and judged on its content)
    exact = '{"path": "/v/a.ts", "expected_rps": 5}'
    exact += " " * (16384 - len(exact))
    status, _, _ = post(shim.port, exact, AUTH)
    assert status == 202
    assert shim.metrics()['echos_shim_publish_total{result="too_large"}'] == 2
    # the shim still serves
    origin.put("/after.ts", b"after")
    assert shim.request("/after.ts")[0] == 200


def test_publish_disabled_is_404_and_other_methods_are_405(procs, origin, redis,
                                                           tmp_path):
    off = Shim(procs, tmp_path, origin.url, redis_addr=redis.addr)
    for method in ("POST", "GET"):
        status, _, body = post(off.port, {"path": "/v/a.ts", "expected_rps": 5}, AUTH,
                               method=method)
        assert status == 404, method
        assert "not enabled" in one_line_json_error(body)
    assert origin.hits("/_echos/publish") == 0  # never proxied upstream
    assert off.metrics()['echos_shim_publish_total{result="disabled"}'] == 2

    on = publishing_shim(procs, tmp_path, origin, redis)
    for method in ("GET", "PUT", "DELETE"):
        status, h, body = post(on.port, "{}", AUTH, method=method)
        assert status == 405, method
        assert h["allow"] == "POST"
        one_line_json_error(body)
    assert redis.cli("KEYS", "echos:pub*") == ""


def test_redis_down_is_503_and_the_shim_keeps_serving_gets(procs, origin, redis, tmp_path):
    data = blob(2000, 21)
    origin.put("/v/live.ts", data)
    shim = publishing_shim(procs, tmp_path, origin, redis)
    ann = {"path": "/v/new.ts", "expected_rps": 9, "regions": ["eu-west"]}
    assert post(shim.port, ann, AUTH)[0] == 202  # the link is up and idle afterwards
    redis.stop()
    t0 = time.monotonic()
    for _ in range(3):
        status, h, body = post(shim.port, ann, AUTH)
        assert status == 503
        assert h["retry-after"] == "1"
        err = one_line_json_error(body)
        assert "redis unavailable" in err and "retry" in err, err
    assert time.monotonic() - t0 < 10
    status, _, body = shim.request("/v/live.ts")
    assert status == 200 and body == data
    wait_for(lambda: "publish answers 503" in shim.proc.log_text(), 5,
             what="the outage log line")
    assert shim.proc.log_text().count("publish answers 503") == 1  # once per outage
    assert shim.metrics()['echos_shim_publish_total{result="unavailable"}'] == 3

    redis.start()
    ann["expected_rps"] = 10

    def accepted():
        return post(shim.port, ann, AUTH)[0] == 202
    wait_for(accepted, 10, interval=0.3, what="publish accepted after Redis returned")
    assert redis.cli("ZSCORE", "echos:pub:{eu-west}", "/v/new.ts") == "10"
    assert "publishing again" in shim.proc.log_text()


def test_publish_listen_serves_only_the_api_and_main_listener_refuses_it(
        procs, origin, redis, tmp_path):
    pub_port = free_port()
    shim = publishing_shim(procs, tmp_path, origin, redis,
                           publish__listen=f"127.0.0.1:{pub_port}")
    wait_port(pub_port, 10, proc=shim.proc)
    ann = {"path": "/v/p.ts", "expected_rps": 3}
    status, _, body = post(shim.port, ann, AUTH)
    assert status == 404
    assert "not enabled on this listener" in one_line_json_error(body)
    assert post(pub_port, ann, AUTH)[0] == 202
    status, _, body = post(pub_port, "", AUTH, path="/v/p.ts", method="GET")
    assert status == 404
    one_line_json_error(body)
    assert origin.hits("/v/p.ts") == 0
    assert redis.cli("ZSCORE", "echos:pub:{_all}", "/v/p.ts") == "3"


def test_bad_publish_config_exits_2(tmp_path, redis):
    base = f"spool_dir = {tmp_path}\nredis.addr = {redis.addr}\n"
    cases = [
        ("publish.token = short\n", "publish.token"),
        ("publish.token = has spaces in it 0123456789\n", "publish.token"),
        ("publish.listen = 127.0.0.1:1\n", "publish.listen"),
        ("publish.token = " + TOKEN + "\nredis.addr =\n", "redis.addr"),
        ("publish.token = " + TOKEN + "\npublish.listen = nonsense\n", "publish.listen"),
    ]
    for i, (extra, key) in enumerate(cases):
        conf = tmp_path / f"p{i}.conf"
        conf.write_text(base + extra)
        r = run([echos_bin("echos-origin-shim"), "-c", conf, "-t"], timeout=20)
        assert r.returncode == 2, (extra, r.stderr)
        assert key in r.stderr, (extra, r.stderr)
        assert "0123456789" not in r.stderr  # the secret is never printed
    conf = tmp_path / "ok.conf"
    conf.write_text(base + f"publish.token = {TOKEN}\n")
    r = run([echos_bin("echos-origin-shim"), "-c", conf, "-t"], timeout=20)
    assert r.returncode == 0, r.stderr


def test_echosctl_publish_is_accepted_by_the_shim(procs, origin, redis, tmp_path):
    shim = publishing_shim(procs, tmp_path, origin, redis)
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    r = run([echos_bin("echosctl"), "publish",
             f"http://127.0.0.1:{shim.port}/v/ctl/index.m3u8", "--expected-rps", "250",
             "--region", "eu-west", "--token-file", tok], timeout=20)
    assert r.returncode == 0, r.stderr
    assert redis.cli("ZSCORE", "echos:pub:{eu-west}", "/v/ctl/index.m3u8") == "250"
    r = run([echos_bin("echosctl"), "publish", f"http://127.0.0.1:{shim.port}/v/ctl/a.ts",
             "--expected-rps", "3", "--token-file", tok], timeout=20)
    assert r.returncode == 0, r.stderr
    assert redis.cli("ZSCORE", "echos:pub:{_all}", "/v/ctl/a.ts") == "3"
