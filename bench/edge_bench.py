"""Driver of bench/edge.sh: starts echos-edge (pre-warmed cache hits), nginx, h2o and
varnish on the same files, pinned to core 1, loads each from core 0 with wrk (HTTP/1.1)
and h2load (h2c), and prints requests/s or GB/s, CPU seconds per GB and RSS side by side.
Every process it starts is stopped by pid at the end."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
from edge_objfiles import write_object  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SERVER_CPU, LOAD_CPU = "1", "0"
TICK = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20
RANGE_FIRST = 20 * MiB
RANGE = f"bytes={RANGE_FIRST}-{RANGE_FIRST + MiB - 1}"
MASTER = "7:" + "42" * 32
BOX = "bench-box"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20, name="server", log=None):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if proc.poll() is not None:
            text = Path(log).read_text(errors="replace")[-2000:] if log else ""
            raise SystemExit(f"bench: {name} exited early:\n{text}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing on port {port}")


def tree(pid):
    """pid and its descendants."""
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                kids.setdefault(int(f[1]), []).append(int(d.name))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_s(pid):
    total = 0
    for p in tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def rss_mib(pid):
    total = 0
    for p in tree(pid):
        try:
            m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


def size_of(text):
    m = re.match(r"([\d.]+)([KMG]?)B", text)
    return float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def load(url, proto, conns, extra=()):
    """Runs the load for SECS; returns (requests/s, bytes/s, errors)."""
    if proto == "http1":
        argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{SECS}s"]
        for h in extra:
            argv += ["-H", h]
        out = subprocess.run(argv + [url], capture_output=True, text=True,
                             timeout=SECS + 30).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        tput = re.search(r"Transfer/sec:\s+(\S+)", out)
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        bad = re.search(r"Socket errors: (.*)", out)
        if not rps:
            return 0.0, 0.0, "wrk failed: " + out[-200:]
        return (float(rps.group(1)), size_of(tput.group(1)),
                (f"{errs.group(1)} non-2xx " if errs else "") + (bad.group(1) if bad else ""))
    argv = ["taskset", "-c", LOAD_CPU, "h2load", f"-c{conns}", "-m10", "-D", str(SECS)]
    for h in extra:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True,
                         timeout=SECS + 30).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+\w?B)/s", out)
    st = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                   r"(\d+) failed, (\d+) errored", out)
    if not m or not st or int(st.group(2)) == 0:
        return 0.0, 0.0, "h2load failed: " + " ".join(out.split()[-30:])
    errs = int(st.group(3)) + int(st.group(4))
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    non2 = sum(int(x) for x in codes.groups()[1:]) if codes else 0
    return float(m.group(1)), size_of(m.group(2)), \
        (f"{errs} failed " if errs else "") + (f"{non2} non-2xx" if non2 else "")


class Server:
    def __init__(self, name, argv, ports, cwd=None):
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"echos-bench-{name}-", suffix=".log")[1])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, cwd=cwd,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        for p in ports:
            wait_port(p, self.proc, name=name, log=self.log)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.unlink(missing_ok=True)


def main():
    work = Path(tempfile.mkdtemp(prefix="echos-bench-"))
    os.chmod(work, 0o755)
    www = work / "www"
    (www / "b").mkdir(parents=True)
    files = {"/b/4k.bin": os.urandom(4096), "/b/1m.bin": os.urandom(MiB),
             "/b/64m.bin": os.urandom(64 * MiB)}
    for path, body in files.items():
        (www / path.lstrip("/")).write_bytes(body)
    os.system(f"chmod -R a+rX {work}")
    servers = []
    try:
        # --- echos-edge: the same files already committed in its cache (hits) ---
        cache = work / "edge-cache"
        for path, body in files.items():
            write_object(cache, path, body, etag='"bench"',
                         lastmod="Mon, 01 Jan 2024 00:00:00 GMT")
        key = subprocess.run([TOP / "bin/echosctl", "derive-key", "--master", MASTER, "--box",
                              BOX], capture_output=True, text=True, check=True).stdout.strip()
        tok = subprocess.run([TOP / "bin/echosctl", "token", "--key", key, "--box", BOX,
                              "--path", "/b/x", "--prefix-segments", "1", "--ttl", "86400"],
                             capture_output=True, text=True, check=True).stdout.strip()
        ep = free_port()
        (work / "edge.conf").write_text(f"""box.id = {BOX}
box.url = http://127.0.0.1:{ep}
listen = 127.0.0.1:{ep}
cache.dir = {cache}
cache.max_bytes = 1G
shim.url = http://127.0.0.1:1
redis.addr = 127.0.0.1:1
token.key = {key}
uplink.enforce = no
max_conns = 20000
log.level = error
""")
        edge = Server("echos-edge", [str(TOP / "bin/echos-edge"), "-c",
                                     str(work / "edge.conf")], [ep])
        servers.append(edge)

        # --- nginx: sendfile on the HTTP/1.1 server, off on the h2c one (delayed ACK) ---
        n1, n2 = free_port(), free_port()
        (work / "nginx").mkdir()
        (work / "nginx.conf").write_text(f"""user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err error;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx;
    proxy_temp_path {work}/nginx;
    fastcgi_temp_path {work}/nginx;
    uwsgi_temp_path {work}/nginx;
    scgi_temp_path {work}/nginx;
    default_type application/octet-stream;
    tcp_nodelay on;
    open_file_cache max=100 inactive=60s;
    keepalive_requests 1000000;
    server {{ listen 127.0.0.1:{n1}; root {www}; sendfile on; tcp_nopush on; }}
    server {{ listen 127.0.0.1:{n2} http2; root {www}; sendfile off; }}
}}
""")
        nginx = Server("nginx", ["nginx", "-p", str(work), "-c", str(work / "nginx.conf"),
                                 "-g", "daemon off;"], [n1, n2])
        servers.append(nginx)

        # --- h2o: HTTP/1.1 and h2c (prior knowledge) on one port ---
        hp = free_port()
        (work / "h2o.conf").write_text(f"""user: nobody
num-threads: 1
listen:
  host: 127.0.0.1
  port: {hp}
hosts:
  default:
    paths:
      /:
        file.dir: {www}
""")
        h2o = Server("h2o", ["h2o", "-c", str(work / "h2o.conf")], [hp])
        servers.append(h2o)

        # --- varnish: malloc storage in front of nginx's HTTP/1.1 server, warmed ---
        vp = free_port()
        (work / "varnish").mkdir()
        varnish = Server("varnish", ["varnishd", "-F", "-j", "none", "-n",
                                     str(work / "varnish"), "-a", f"127.0.0.1:{vp}", "-b",
                                     f"127.0.0.1:{n1}", "-s", "malloc,512m", "-p",
                                     "feature=+http2", "-p", "thread_pools=1"], [vp])
        servers.append(varnish)

        base = {
            "echos-edge": {"http1": f"http://127.0.0.1:{ep}/t/{tok}",
                           "h2c": f"http://127.0.0.1:{ep}/t/{tok}"},
            "nginx": {"http1": f"http://127.0.0.1:{n1}", "h2c": f"http://127.0.0.1:{n2}"},
            "h2o": {"http1": f"http://127.0.0.1:{hp}", "h2c": f"http://127.0.0.1:{hp}"},
            "varnish": {"http1": f"http://127.0.0.1:{vp}", "h2c": f"http://127.0.0.1:{vp}"},
        }
        # warm up and check every server answers every file whole
        for s in servers:
            for path, body in files.items():
                for proto in ("http1", "h2c"):
                    argv = ["curl", "-s", "-o", str(work / "check"), "-w", "%{http_code}"]
                    argv.append("--http1.1" if proto == "http1" else "--http2-prior-knowledge")
                    code = subprocess.run(argv + [base[s.name][proto] + path],
                                          capture_output=True, text=True).stdout
                    ok = code == "200" and (work / "check").read_bytes() == body
                    if not ok:
                        print(f"  ({s.name} {proto} {path}: answered {code or 'nothing'})")

        cases = [("4KiB", "/b/4k.bin", 100, (), "rps"),
                 ("1MiB", "/b/1m.bin", 10, (), "GB/s"),
                 ("1MiB range of 64MiB", "/b/64m.bin", 10, (f"Range: {RANGE}",), "GB/s")]
        results = {}
        print(f"bench/edge.sh: {SECS}s per run; servers on core {SERVER_CPU}, load on core "
              f"{LOAD_CPU}; wrk -t1 for http1, h2load -m10 for h2c")
        print(f"{'case':<22} {'proto':<6} {'server':<11} {'result':>14} {'CPU s/GB':>9} "
              f"{'RSS MiB':>8}  errors")
        only = {k: set(os.environ[k].split(",")) for k in ("CASES", "PROTOS", "SERVERS")
                if os.environ.get(k)}
        perf = os.environ.get("PERF")
        for label, path, conns, hdrs, unit in cases:
            if "CASES" in only and label not in only["CASES"]:
                continue
            for proto in ("http1", "h2c"):
                if "PROTOS" in only and proto not in only["PROTOS"]:
                    continue
                for s in servers:
                    if "SERVERS" in only and s.name not in only["SERVERS"]:
                        continue
                    rec = None
                    if perf and s.name == "echos-edge" and not os.path.exists(perf):
                        rec = subprocess.Popen(["perf", "record", "-g", "-o", perf, "-p",
                                                str(s.proc.pid), "--", "sleep", str(SECS)],
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
                    c0 = cpu_s(s.proc.pid)
                    rps, bps, errs = load(base[s.name][proto] + path, proto, conns, hdrs)
                    if rec:
                        rec.wait(timeout=SECS + 30)
                    cpu = cpu_s(s.proc.pid) - c0
                    rss = rss_mib(s.proc.pid)
                    per_gb = cpu / (bps * SECS / 1e9) if bps else float("nan")
                    val = f"{rps:,.0f} req/s" if unit == "rps" else f"{bps / 1e9:.2f} GB/s"
                    results[(label, proto, s.name)] = (rps, bps)
                    print(f"{label:<22} {proto:<6} {s.name:<11} {val:>14} {per_gb:>9.2f} "
                          f"{rss:>8.1f}  {errs}", flush=True)
        if only:
            return
        # echos-edge RSS with 1,000 connections
        c1000 = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-c1000", "-m1", "-D",
                                "3", base["echos-edge"]["h2c"] + "/b/4k.bin"],
                               capture_output=True, text=True, timeout=60)
        m = re.search(r"([\d.]+) req/s", c1000.stdout)
        print(f"echos-edge RSS after 1000 h2c connections: {rss_mib(edge.proc.pid):.1f} MiB "
              f"({m.group(1) if m else '?'} req/s)")
        e = results[("1MiB", "http1", "echos-edge")][1]
        n = results[("1MiB", "http1", "nginx")][1]
        print(f"edge/nginx 1MiB http1 throughput ratio: {e / n if n else 0:.2f}")
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
