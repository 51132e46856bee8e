"""Shared harness for the integration tests: real processes on free loopback ports.

Every process a test starts is stopped at teardown, by pid, and its log is printed when
the test failed. Every wait is bounded. Binaries come from $ECHOS_BIN (default
build/asan/bin); the GeoIP fixtures from $ECHOS_GEOIP_DIR (default ../shared/geoip).
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ECHOS_BIN", ROOT / "build" / "asan" / "bin"))
GEOIP_DIR = Path(os.environ.get("ECHOS_GEOIP_DIR", ROOT.parent / "shared" / "geoip"))
SAMPLE_ORIGIN = ROOT / "tools" / "sample-origin.py"
PYTHON = "/usr/bin/python3"

# ASan: fail loudly on errors, but do not let leak checks at exit turn a killed daemon's
# exit status into noise; UBSan: print stacks and abort.
SAN_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:halt_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echos_bin(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make asan' first")
    return str(path)


def wait_port(port, timeout=10.0, host="127.0.0.1", proc=None):
    """Waits until host:port accepts a connection; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(
                f"{proc.name} exited with {proc.popen.returncode} before listening on "
                f"{port}:\n{proc.log_text()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def write_conf(path, conf):
    """Writes a config file: conf is a dict (lists become repeated keys)."""
    lines = []
    for key, value in conf.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            lines.append(f"{key} = {v}")
    Path(path).write_text("\n".join(lines) + "\n")
    return str(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Proc:
    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.start()

    def start(self):
        full_env = dict(os.environ)
        full_env.update(SAN_ENV)
        if self.env:
            full_env.update(self.env)
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env, cwd=self.cwd,
                                      start_new_session=True)
        log.close()
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def kill9(self):
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def log_text(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""


class Procs:
    def __init__(self, tmpdir):
        self.tmpdir = Path(tmpdir)
        self.all = []

    def start(self, name, argv, env=None, log=None, cwd=None):
        log_path = log or self.tmpdir / f"{name}-{len(self.all)}.log"
        p = Proc(name, argv, log_path, env=env, cwd=cwd)
        self.all.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.all):
            try:
                p.stop(timeout=10)
            except Exception:  # noqa: BLE001 - teardown must go on
                p.kill9()

    def dump_logs(self):
        for p in self.all:
            sys.stderr.write(f"\n----- {p.name} (pid {p.pid}) log -----\n")
            sys.stderr.write(p.log_text()[-20000:])


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def procs(request, tmp_path):
    ps = Procs(tmp_path)
    yield ps
    failed = getattr(request.node, "rep_call", None)
    ps.stop_all()
    if failed is not None and failed.failed:
        ps.dump_logs()


class Redis:
    def __init__(self, procs, tmp_path):
        self.procs = procs
        self.dir = Path(tmp_path) / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self):
        self.proc = self.procs.start("redis-server", [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"])
        wait_port(self.port, 10, proc=self.proc)
        wait_for(lambda: self.cli("PING") == "PONG", 10, what="redis PING")
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.kill9()

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--raw",
                            *[str(a) for a in args]],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    def hgetall(self, key):
        out = self.cli("HGETALL", key).splitlines()
        return dict(zip(out[0::2], out[1::2]))


@pytest.fixture
def redis(procs, tmp_path):
    return Redis(procs, tmp_path)


class Certs:
    def __init__(self, d):
        self.cert = str(d / "cert.pem")
        self.key = str(d / "key.pem")
        subprocess.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
            "/CN=localhost", "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:::1",
            "-keyout", self.key, "-out", self.cert], check=True, capture_output=True,
            timeout=30)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


class Origin:
    def __init__(self, procs, tmp_path):
        self.root = Path(tmp_path) / "origin"
        self.root.mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = procs.start("sample-origin", [
            PYTHON, str(SAMPLE_ORIGIN), "--root", str(self.root), "--host", "127.0.0.1",
            "--port", str(self.port), "--quiet"])
        wait_port(self.port, 10, proc=self.proc)

    def put(self, rel, data):
        p = self.root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def hits(self, path):
        q = urllib.parse.quote(path, safe="")
        with urllib.request.urlopen(f"{self.url}/_hits?path={q}", timeout=5) as r:
            return json.load(r)["hits"]


import urllib.parse  # noqa: E402  (used by Origin.hits)


@pytest.fixture
def origin(procs, tmp_path):
    return Origin(procs, tmp_path)


@pytest.fixture
def geoip_dir():
    if not (GEOIP_DIR / "GeoIP2-City-Test.mmdb").exists():
        pytest.fail(f"GeoIP test databases not found in {GEOIP_DIR}")
    return GEOIP_DIR


def run(argv, timeout=30, **kw):
    """subprocess.run with a bound, text output, and no check."""
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)


def make_tmpdir(prefix="echos-"):
    return Path(tempfile.mkdtemp(prefix=prefix))
