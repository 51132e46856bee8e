"""Origin fallbacks feed placement: the redirector counts, per region and object, the
redirects to the origin that more replicas could have avoided (echos:miss, docs/redis.md)
and echos-policy gives an object that keeps falling back more replicas
(docs/control-plane.md, "Objects that keep falling back"). Real redis-server, redirector
and echos-policy; fake boxes heartbeat into Redis (test_redirector.FakeBoxes): those of
region-1 report their uplink full, so every viewer of region-1 is sent to the origin with
all_over_capacity, while those of region-2 have room."""
import http.client
import time
import urllib.request

import pytest

from conftest import echos_bin, free_port, wait_for, wait_port, write_conf
from test_redirector import FakeBoxes, Rdr

R1 = [f"r1-{c}" for c in "abcd"]   # pop-a, region-1: uplink full
R2 = [f"r2-{c}" for c in "abcd"]   # pop-b, region-2: room
HOT, CALM = "/v/hot/seg1.ts", "/v/calm/seg1.ts"
UPLINK = 100_000_000
LIMIT_S = 30.0


@pytest.fixture
def fake_boxes(redis):
    fb = FakeBoxes(redis, lifetime=120.0)
    for i, b in enumerate(R1):
        fb.add(b, f"http://127.0.0.{2 if i % 2 else 3}:8080", pop="pop-a", region="region-1",
               uplink=UPLINK, egress_bps=UPLINK)
    for i, b in enumerate(R2):
        fb.add(b, f"http://127.0.0.{6 + i % 2}:8080", pop="pop-b", region="region-2",
               uplink=UPLINK)
    yield fb
    fb.stop()


def ask(rdr, path, source):
    """One viewer request; returns the Echos-Box or 'miss:<reason>'."""
    c = http.client.HTTPConnection("127.0.0.1", rdr.port, timeout=5,
                                   source_address=(source, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 302, r.status
        box = r.getheader("Echos-Box")
        return box if box else "miss:" + (r.getheader("Echos-Miss") or "?")
    finally:
        c.close()


def zscores(redis, pattern, member):
    """{key: score of member} over the keys matching pattern."""
    out = {}
    for k in redis.cli("KEYS", pattern).split():
        s = redis.cli("ZSCORE", k, member)
        if s:
            out[k] = float(s)
    return out


def members(redis, key):
    out = redis.cli("SMEMBERS", key)
    return set(out.split()) if out else set()


def assigned(redis, boxes, path):
    return [b for b in boxes if path in members(redis, f"echos:assign:{{{b}}}")]


def policy_metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_redirector_flushes_only_fallbacks_replicas_could_fix(procs, tmp_path, redis,
                                                             fake_boxes):
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"sla.max_class": "pop"})
    wait_for(lambda: ask(rdr, "/warm", "127.0.0.5") in R2, 10, what="region-2 boxes chosen")
    got = {}
    for src, path, n in (("127.0.0.1", HOT, 6), ("127.0.0.5", CALM, 4),
                         ("127.0.0.9", "/v/far.ts", 3)):
        for _ in range(n):
            who = ask(rdr, path, src)
            got.setdefault(path, set()).add(who if who.startswith("miss:") else "box")
    # region-1's boxes are full; region-2's have room; 127.0.0.9 is in no PoP
    assert got == {HOT: {"miss:all_over_capacity"}, CALM: {"box"},
                   "/v/far.ts": {"miss:no_box_in_reach"}}, got

    wait_for(lambda: sum(zscores(redis, "echos:miss:{region-1}:m:*", HOT).values()) == 6, 5,
             what="fallbacks of region-1 flushed")
    key = next(iter(zscores(redis, "echos:miss:{region-1}:m:*", HOT)))
    assert key == f"echos:miss:{{region-1}}:m:{key.rsplit(':', 1)[1]}"
    assert abs(int(key.rsplit(":", 1)[1]) - time.time() / 60) < 2
    assert 0 < int(redis.cli("TTL", key)) <= 7200
    # the same requests are popularity too; hits and unfixable fallbacks are no misses
    wait_for(lambda: sum(zscores(redis, "echos:pop:{_}:m:*", "/v/far.ts").values()) == 3, 5,
             what="popularity flushed")
    assert sum(zscores(redis, "echos:pop:{region-1}:m:*", HOT).values()) == 6
    assert redis.cli("KEYS", "echos:miss:{region-2}:*").split() == []
    assert redis.cli("KEYS", "echos:miss:{_}:*").split() == []


def test_object_that_keeps_falling_back_gets_more_replicas(procs, tmp_path, redis,
                                                           fake_boxes):
    rdr = Rdr(procs, tmp_path, redis.addr, extra={"sla.max_class": "pop"})
    policy_port = free_port()
    conf = write_conf(tmp_path / "policy.conf", {
        "redis.addr": redis.addr, "interval": "1s",
        "http.listen": f"127.0.0.1:{policy_port}", "place.interval": "1s",
        # 1 kB objects at a few requests/s: demand alone asks for one replica
        "place.default_object_bytes": "1000", "place.miss_cooldown": "2s"})
    policy = procs.start("echos-policy", [echos_bin("echos-policy"), "-c", conf])
    wait_port(policy_port, proc=policy)
    wait_for(lambda: ask(rdr, "/warm", "127.0.0.5") in R2, 10, what="region-2 boxes chosen")

    # Viewers of both regions ask at the same pace (about 6/s each) until region-1's object
    # has every box of its region, or the limit.
    t0 = time.monotonic()
    seen, progress, i = set(), [], 0
    while time.monotonic() - t0 < LIMIT_S:
        seen.add(ask(rdr, HOT, f"127.0.0.{1 + i % 3}"))
        assert ask(rdr, CALM, f"127.0.0.{5 + i % 3}") in R2
        i += 1
        n = len(assigned(redis, R1, HOT))  # sampled well within the 2 s cooldown
        if not progress or progress[-1][1] != n:
            progress.append((round(time.monotonic() - t0, 1), n))
        if n == len(R1):
            break
        time.sleep(0.1)
    raised = policy_metric(policy_port, "echos_policy_miss_raises_total")
    calm = assigned(redis, R2, CALM)
    print(f"\n{i} requests per object; region-1 object assigned to (s, boxes): {progress}; "
          f"region-2 object (no fallbacks) on {calm}; floors raised {raised:.0f}")
    print("fallbacks counted:", zscores(redis, "echos:miss:{region-1}:m:*", HOT))
    assert seen == {"miss:all_over_capacity"}
    reached = {n: t for t, n in reversed(progress)}
    assert reached.get(2, LIMIT_S + 1) <= LIMIT_S, progress
    # one more replica per cooldown while the fallbacks go on, up to the region's boxes
    assert progress[-1][1] == len(R1), progress
    assert all(b - a <= 1 for (_, a), (_, b) in zip(progress, progress[1:])), progress
    assert assigned(redis, R2, HOT) == []  # never on another region's boxes
    # the same demand without fallbacks keeps one replica
    assert len(calm) == 1, calm
    assert redis.cli("KEYS", "echos:miss:{region-2}:*").split() == []
    assert raised >= len(R1) - 1
