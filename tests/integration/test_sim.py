"""echos-sim end to end: output format, CSV and SVG files, determinism, CSV traces, echos'
cache in free space and prefetch budget, the placement benchmark mode, and refusal of bad
arguments (exit 2) and bad traces (exit 1)."""
import csv
import re
import subprocess
import xml.etree.ElementTree as ET

from conftest import SAN_ENV, echos_bin

SMALL = ["--requests", "40000", "--catalog", "3000", "--ugc-objects", "600",
         "--flash-requests", "400", "--boxes", "16", "--duration", "21600"]
LAST_LINE = re.compile(r"^echos/upper-bound byte offload: \d+\.\d{3}; "
                       r"echos-lru: [+-]\d+\.\d points$")
ORACLE_LINE = re.compile(r"^echos/oracle-window byte offload: \d+\.\d{3}$")
POLICIES = {"lru", "lfu", "s3fifo", "echos", "upper-bound", "oracle-window"}


def sim(*args, timeout=240):
    env = dict(SAN_ENV)
    return subprocess.run([echos_bin("echos-sim"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_small_scenario_prints_table_and_writes_csv_and_svg(tmp_path):
    out_csv = tmp_path / "r.csv"
    plots = tmp_path / "plots"
    r = sim(*SMALL, "--csv", str(out_csv), "--plots", str(plots))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert ORACLE_LINE.match(lines[-2]), lines[-2]
    for p in POLICIES:
        assert any(line.startswith(p + " ") for line in lines), p

    rows = read_csv(out_csv)
    # the default run, 6 storage points and 5 box counts, each with every policy
    assert len(rows) == len(POLICIES) * (1 + 6 + 5)
    assert {row["policy"] for row in rows} == POLICIES
    assert {row["scenario"] for row in rows} == {"default", "storage_pct", "boxes"}
    for row in rows:
        assert 0.0 <= float(row["byte_offload"]) <= 1.0
        assert 0.0 <= float(row["req_offload"]) <= 1.0
        assert int(row["reqs"]) > 0
        assert int(row["origin_egress_bytes"]) == (int(row["fill_bytes"]) +
                                                   int(row["prefetch_bytes"]) +
                                                   int(row["fallback_bytes"]))

    for name in ("offload_vs_storage.svg", "offload_vs_boxes.svg",
                 "offload_flash_crowd.svg"):
        root = ET.parse(plots / name).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        lines_drawn = root.findall("{http://www.w3.org/2000/svg}polyline")
        assert len(lines_drawn) == len(POLICIES), name
        labels = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
        assert POLICIES <= labels, name


def test_same_seed_same_result_and_other_seed_differs(tmp_path):
    def run(seed, name):
        path = tmp_path / name
        r = sim(*SMALL, "--seed", str(seed), "--csv", str(path))
        assert r.returncode == 0, r.stderr
        rows = read_csv(path)
        for row in rows:
            del row["seconds"]
        return rows, r.stdout.strip().splitlines()[-1]

    a, last_a = run(7, "a.csv")
    b, last_b = run(7, "b.csv")
    c, _ = run(8, "c.csv")
    assert a == b
    assert last_a == last_b
    assert a != c


def test_echos_caches_free_space_and_keeps_to_its_prefetch_budget(tmp_path):
    out_csv = tmp_path / "r.csv"
    share, uplink_mbps, replace_s, boxes, duration = 0.002, 50, 60, 16, 21600
    r = sim(*SMALL, "--policies", "echos", "--prefetch-share", str(share),
            "--uplink-mbps", str(uplink_mbps), "--csv", str(out_csv))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    rows_shown = [line.split()[0] for line in lines
                  if line.split() and line.split()[0] in POLICIES]
    assert rows_shown == ["echos"]
    assert not LAST_LINE.match(lines[-1])  # needs lru and upper-bound
    (row,) = read_csv(out_csv)
    # misses are filled into the free space and served again from it
    assert int(row["fill_bytes"]) > 0
    assert int(row["cache_hit_bytes"]) > 0
    assert int(row["cache_hit_bytes"]) <= int(row["req_bytes"]) * float(row["byte_offload"]) + 1
    # a box prefetches at most share x uplink x round per round
    budget = share * uplink_mbps * 1e6 / 8 * replace_s
    rounds = duration / replace_s
    assert int(row["prefetch_bytes"]) <= budget * boxes * rounds
    assert int(row["prefetch_deferred"]) > 0

    r = sim(*SMALL, "--policies", "echos", "--prefetch-share", "0", "--csv", str(out_csv))
    assert r.returncode == 0, r.stderr
    (free_row,) = read_csv(out_csv)
    assert int(free_row["prefetch_deferred"]) == 0
    assert int(free_row["prefetch_bytes"]) > int(row["prefetch_bytes"])


def test_csv_trace_is_replayed(tmp_path):
    trace = tmp_path / "trace.csv"
    lines = ["time,client_region,object,size"]
    for i in range(3000):
        obj = f"/v/{(i * 7) % 50 if i % 3 else i}.ts"
        lines.append(f"{i * 0.5:.3f},{'paris' if i % 2 else 'lyon'},{obj},{200000 + i % 5}")
    trace.write_text("\n".join(lines) + "\n")
    r = sim("--trace", str(trace), "--boxes", "4", "--box-storage", "4000000")
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip().splitlines()
    assert LAST_LINE.match(out[-1]), out[-1]
    assert "3000 requests" in r.stdout
    assert "2 regions" in r.stdout


def test_bad_trace_line_is_reported_with_its_line_number(tmp_path):
    trace = tmp_path / "bad.csv"
    trace.write_text("0.0,paris,/a,100\n1.0,paris,/b\n")
    r = sim("--trace", str(trace), "--boxes", "2")
    assert r.returncode == 1
    assert f"{trace}:2: expected 4 fields" in r.stderr

    trace.write_text("0.0,paris,/a,100\n1.0,paris,/b,-5\n")
    r = sim("--trace", str(trace), "--boxes", "2")
    assert r.returncode == 1
    assert f"{trace}:2: size: expected bytes > 0" in r.stderr

    r = sim("--trace", str(tmp_path / "missing.csv"))
    assert r.returncode == 1
    assert "No such file" in r.stderr


BAD_ARGS = [
    (["--seed", "x"], "--seed: expected an integer"),
    (["--bogus"], "unknown option --bogus"),
    (["--boxes", "0"], "--boxes: expected an integer from 1"),
    (["--boxes", "2", "--regions", "4"], "need at least one box per region"),
    (["--storage-pct", "200"], "--storage-pct: expected a number"),
    (["stray"], "unexpected argument \"stray\""),
    (["--csv"], "--csv: needs a value"),
    (["--policies", "echos,bogus"], "--policies: unknown policy \"bogus\""),
    (["--policies", "echos", "--plots", "x"], "--plots needs every policy"),
    (["--prefetch-share", "-1"], "--prefetch-share: expected a number"),
]


def test_bad_arguments_exit_2_with_a_clear_message():
    for args, msg in BAD_ARGS:
        r = sim(*args, timeout=30)
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
        assert r.stdout == "", args


def test_help_and_version():
    r = sim("--help", timeout=30)
    assert r.returncode == 0
    assert "usage: echos-sim" in r.stdout and "exit status" in r.stdout
    r = sim("--version", timeout=30)
    assert r.returncode == 0
    assert re.match(r"^echos-sim \d+\.\d+\.\d+$", r.stdout.strip())


def test_placement_benchmark_mode():
    r = sim("--bench-placement", "--objects", "20000", "--boxes", "200", timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^placement: 20000 objects x 200 boxes in 20 regions: [\d.]+ s per pass",
                     r.stdout, re.M), r.stdout
    assert "diff" in r.stdout
