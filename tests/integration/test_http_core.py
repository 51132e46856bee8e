"""The HTTP server core (common/ec_http*.c) through its test server, with real clients:
curl (HTTP/1.1, h2c prior knowledge, TLS with ALPN h2 and http/1.1), nghttp, h2load,
httpx, and raw sockets / raw HTTP/2 frames for pipelining and malformed input.

The test server is tests/http/ec_http_testsrv.c, found at $ECHOS_TESTSRV or
build/asan/tests/ec_http_testsrv. Its routes: /hello, /redirect, /file?size=N&off=K
(byte i is (i*31+7)&0xff), /stream?chunks=N[&size=S][&len=1], /pstream?len=N&chunk=C&seed=S
[&ms=T][&known=0][&drain=0] (a stream of pstream_body(S, N) in chunks of varied sizes around
C, written from one buffer all streams share, paced by a timer of T ms or by backpressure),
/pmem?len=N&seed=S (the same bytes as one in-memory response), /slow (200 ms), /stats
(JSON counters of handler calls and close callbacks, the sum of ec_http_req_body_sent over
closed requests, VmRSS), /metrics.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import httpx
import pytest
from hyperframe.frame import (ContinuationFrame, Frame, GoAwayFrame, HeadersFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

from conftest import ROOT, SAN_ENV, run, wait_for

TESTSRV = Path(os.environ.get("ECHOS_TESTSRV",
                              ROOT / "build" / "asan" / "tests" / "ec_http_testsrv"))
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB


_CYCLE = bytes(((i * 31 + 7) & 0xFF) for i in range(256))


def pattern(n, off=0):
    """Bytes [off, n) of /file: byte i is (i * 31 + 7) & 0xff, a 256-byte cycle."""
    if n <= off:
        return b""
    return (_CYCLE * (n // 256 + 1))[off:n]


def pstream_body(seed, n):
    """Body of /pstream and /pmem: 16-byte records of the seed and the record's offset, so
    a byte lost, repeated, misplaced or taken from another response shows."""
    recs = b"".join(b"%06x%09x\n" % (seed & 0xFFFFFF, r * 16) for r in range((n + 15) // 16))
    return recs[:n]


def first_diff(got, want):
    k = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
             min(len(got), len(want)))
    return f"{len(got)} bytes, want {len(want)}; first difference at {k}: {got[k:k + 32]!r}"


class TestSrv:  # noqa: not a test class
    __test__ = False

    """One ec_http_testsrv process; ports in listen order."""

    def __init__(self, procs, listens, extra=(), certs=None, env=None):
        if not TESTSRV.exists():
            pytest.fail(f"{TESTSRV} is missing: build it (make build/asan/tests/ec_http_testsrv)")
        argv = [str(TESTSRV)]
        if certs is not None:
            argv += ["--tls", certs.cert, certs.key]
        argv += list(extra) + list(listens)
        self.proc = procs.start("ec_http_testsrv", argv, env=env)
        lines = wait_for(lambda: self._listening(len(listens)), timeout=10,
                         what="the test server's listening lines")
        self.ports = [int(m[1]) for m in lines]

    def _listening(self, n):
        if not self.proc.alive():
            raise AssertionError(f"test server exited:\n{self.proc.log_text()}")
        found = re.findall(r"^listening (\S+) (\d+) (plain|tls)$", self.proc.log_text(), re.M)
        return found if len(found) >= n else None

    def url(self, path, i=0, scheme="http", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.ports[i]}{path}"

    def stats(self, i=0):
        r = httpx.get(self.url("/stats", i), timeout=5)
        assert r.status_code == 200
        return r.json()

    def metrics(self, i=0):
        return httpx.get(self.url("/metrics", i), timeout=5).text

    def reject_count(self, reason):
        m = re.search(r'^echos_test_http_rejects_total\{reason="%s"\} (\S+)$' % reason,
                      self.metrics(), re.M)
        return float(m.group(1)) if m else 0.0

    def assert_healthy(self):
        """Alive, answering, no sanitizer report in its log."""
        assert self.proc.alive(), self.proc.log_text()
        assert httpx.get(self.url("/hello"), timeout=5).text == "hello\n"
        log = self.proc.log_text()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log


@pytest.fixture
def srv(procs):
    return TestSrv(procs, ["127.0.0.1:0", "[::1]:0"])


SHORT_SEND = TESTSRV.parent / "short_send.so"


@pytest.fixture
def short_srv(procs):
    """A test server whose send() takes at most 7 bytes a call (tests/http/short_send.c):
    every answer sent straight from the stack leaves a rest to queue."""
    if not SHORT_SEND.exists():
        pytest.fail(f"{SHORT_SEND} is missing: build it (make build/asan/tests/short_send.so)")
    env = {"LD_PRELOAD": str(SHORT_SEND), "EC_SHORT_SEND": "7",
           # the shim is not instrumented and comes before the ASan runtime
           "ASAN_OPTIONS": SAN_ENV["ASAN_OPTIONS"] + ":verify_asan_link_order=0"}
    return TestSrv(procs, ["127.0.0.1:0"], env=env)


@pytest.fixture
def tls_srv(procs, certs):
    return TestSrv(procs, ["127.0.0.1:0", "tls:127.0.0.1:0"], certs=certs)


def curl(*args, timeout=20):
    r = run(["curl", "-sS", "--max-time", str(timeout - 5), *args], timeout=timeout)
    return r


# --- raw HTTP/1.1 helpers ---------------------------------------------------------------

def connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_until_close(s, timeout=5.0):
    """Everything the server sends until it closes (bounded by timeout)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


class H1Reader:
    """Reads HTTP/1.1 responses one by one from a socket (Content-Length or chunked)."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        body = b""
        if head_only or status in (204, 304):
            return status, hdrs, body
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif hdrs.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, rest = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(rest) < size + 2:
                    self._fill()
                    size_line, rest = self.buf.split(b"\r\n", 1)
                body += rest[:size]
                self.buf = rest[size + 2:]
                if size == 0:
                    break
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            body, self.buf = self.buf, b""
        return status, hdrs, body


# --- raw HTTP/2 helpers ------------------------------------------------------------------

def h2_raw(port):
    s = connect(port)
    s.sendall(H2_PREFACE + SettingsFrame(0).serialize())
    return s


def read_frames(s, timeout=5.0, until=None):
    """Frames from the server until it closes, `until(frame)` is true, or timeout.
    Returns (frames, closed)."""
    deadline = time.monotonic() + timeout
    buf = b""
    frames = []
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            f.parse_body(memoryview(buf[9:9 + length]))
            buf = buf[9 + length:]
            frames.append(f)
            if until and until(f):
                return frames, False
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return frames, True
        if not chunk:
            return frames, True
        buf += chunk
    return frames, False


def req_headers(path="/hello", extra=()):
    return [(":method", "GET"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1")] + list(extra)


def h2_client(port):
    s = connect(port)
    c = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def h2_events(s, c, want, timeout=5.0):
    """Feeds received data to c until want(events) is true; returns all events."""
    deadline = time.monotonic() + timeout
    events = []
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        events += c.receive_data(data)
        out = c.data_to_send()
        if out:
            s.sendall(out)
        if want(events):
            break
    return events


# =========================================================================================
# HTTP/1.1

def test_h1_keepalive_reuses_the_connection(srv):
    r = curl("-v", "--http1.1", srv.url("/hello"), srv.url("/redirect"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    assert "Re-using existing connection" in r.stderr
    assert "< HTTP/1.1 302 Found" in r.stderr
    assert "< Location: https://box1.example.net/t/AAAA/v/abc/seg42.ts" in r.stderr
    assert re.search(r"< Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", r.stderr)


def test_h1_head_has_content_length_and_no_body(srv):
    s = connect(srv.ports[0])
    s.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    rd = H1Reader(s)
    st, h, _ = rd.response(head_only=True)
    assert st == 200 and h["content-length"] == "6"
    # the next bytes are the GET's response, not a HEAD body
    st, h, body = rd.response()
    assert st == 200 and body == b"hello\n"
    s.close()


def test_h1_pipelined_requests_are_answered_in_order(srv):
    s = connect(srv.ports[0])
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /redirect HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /stream?chunks=3 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /file?size=70000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rd = H1Reader(s)
    assert rd.response()[2] == b"slow\n"
    assert rd.response()[2] == b"hello\n"
    assert rd.response()[0] == 302
    st, h, body = rd.response()
    assert h["transfer-encoding"] == "chunked" and body == b"chunk 0\nchunk 1\nchunk 2\n"
    st, h, body = rd.response()
    assert h.get("connection") == "close" and body == pattern(70000)
    assert recv_until_close(s, 3)[1], "server must close after Connection: close"


def test_h1_reads_on_a_kept_alive_connection(srv):
    # after the first request a read that finds the input empty is parsed where it lies:
    # a whole request, a whole one plus a pipelined one and a half, a request split over
    # reads, and a bad request must all behave as through the input buffer
    s = connect(srv.ports[0])
    rd = H1Reader(s)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rd.response()[2] == b"hello\n"
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /redirect HTTP/1.1\r\nHost: x\r\n\r\nGET /hel")
    assert rd.response()[2] == b"hello\n"
    assert rd.response()[0] == 302
    time.sleep(0.1)
    s.sendall(b"lo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rd.response()[2] == b"hello\n"
    for part in (b"GET /hello HTT", b"P/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
        s.sendall(part)
        time.sleep(0.05)
    assert rd.response()[2] == b"hello\n"
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: 3\r\n\r\nabc")
    st, _, _ = rd.response()
    assert st == 400
    assert recv_until_close(s, 3)[1]
    srv.assert_healthy()


@pytest.mark.parametrize("send", ["whole", "short"])
def test_h1_small_responses_to_a_reader_that_lags(request, send):
    # small answers go out straight from the stack while nothing is queued; when the
    # socket takes only part of one (or none), the rest must queue in order behind it
    # (with "short", send() takes 7 bytes a call: every direct answer leaves a rest)
    srv = request.getfixturevalue("srv" if send == "whole" else "short_srv")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.ports[0]))
    s.settimeout(10)
    reqs = [(1000 + 37 * (i % 80), i) for i in range(3000)]  # ~13 MB of answers
    data = b"".join(b"GET /pmem?len=%d&seed=%d HTTP/1.1\r\nHost: x\r\n\r\n" % r
                    for r in reqs)
    # sent from a thread: the server stops reading while its answers wait for us
    sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    sender.start()
    time.sleep(0.5)  # the server fills the socket while nobody reads
    rd = H1Reader(s)
    for n, seed in reqs:
        st, _, body = rd.response()
        assert st == 200 and body == pstream_body(seed, n), (n, seed)
    sender.join(10)
    s.close()
    srv.assert_healthy()


def test_h1_pipelined_answers_to_readers_that_drain_bit_by_bit(srv):
    # Readers that keep taking a little at a time give the socket room between two
    # writes of one pass: an answer whose last bytes leave then must still let the next
    # pipelined request start (it once waited for an event that never came). Four
    # connections at once, each reading 1 KiB at a time while its requests pour in.
    n_conns, n_reqs = 4, 1500
    errors = []

    def one(k):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.ports[0]))
        s.settimeout(10)
        reqs = [(700 + 131 * ((i + k) % 40), i + 1000 * k) for i in range(n_reqs)]
        data = b"".join(b"GET /pmem?len=%d&seed=%d HTTP/1.1\r\nHost: x\r\n\r\n" % r
                        for r in reqs)
        sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
        sender.start()
        done = 0
        try:
            rd = H1Reader(s)
            rd._fill = lambda: _fill_small(rd)
            for n, seed in reqs:
                st, _, body = rd.response()
                assert st == 200 and body == pstream_body(seed, n), (k, n, seed)
                done += 1
        except Exception as e:  # noqa: reported below with the count
            errors.append(f"conn {k}: {done} of {n_reqs} answers, then {e!r}")
        sender.join(10)
        s.close()

    def _fill_small(rd):
        chunk = rd.s.recv(1024)
        if not chunk:
            raise EOFError("connection closed")
        rd.buf += chunk

    ts = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(n_conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    srv.assert_healthy()


def test_h1_http10_closes_unless_keep_alive(srv):
    s = connect(srv.ports[0])
    s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
    data, closed = recv_until_close(s)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhello\n")
    assert b"Connection: close" in data and closed
    s = connect(srv.ports[0])
    s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    rd = H1Reader(s)
    st, h, body = rd.response()
    assert h["connection"] == "keep-alive" and body == b"hello\n"
    # HTTP/1.0 cannot take chunks: an unknown-length stream ends with the connection
    s.sendall(b"GET /stream?chunks=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, body = rd.response()
    assert "transfer-encoding" not in h and body == b"chunk 0\nchunk 1\n"


def test_h1_half_close_gets_answers_already_made_only(srv):
    # a request answered at once is flushed after the client's FIN ...
    s = connect(srv.ports[0])
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data, closed = recv_until_close(s)
    assert data.endswith(b"hello\n") and closed
    # ... one still with the handler counts as gone (its close callback says so)
    before = srv.stats()["closed_gone"]
    s = connect(srv.ports[0])
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data, closed = recv_until_close(s)
    assert data == b"" and closed
    assert srv.stats()["closed_gone"] == before + 1


def test_h1_streaming_with_backpressure(srv):
    n, size = 100, 65536
    r = run(["curl", "-sS", "--http1.1", "-o", "/dev/null", "-w", "%{size_download}",
             srv.url(f"/stream?chunks={n}&size={size}")], timeout=30)
    assert r.stdout == str(n * size)
    r = run(["curl", "-sS", "--http1.1", "-D", "-", "-o", "/dev/null",
             srv.url(f"/stream?chunks=4&size=1000&len=1")], timeout=30)
    assert "Content-Length: 4000" in r.stdout and "chunked" not in r.stdout


@pytest.mark.parametrize("size,off", [(0, 0), (1, 0), (100000, 5), (3 << 20, 0),
                                      (64 << 20, 0)])
def test_h1_file_bytes_match(srv, size, off):
    r = subprocess.run(["curl", "-sS", "--http1.1", srv.url(f"/file?size={size}&off={off}")],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == pattern(size, off)


# =========================================================================================
# HTTP/2

def test_h2c_prior_knowledge(srv):
    # one URL per curl: curl 7.88.1 cannot reuse a prior-knowledge connection
    # (curl/curl#10634, fixed in 8.0); nghttp covers many streams on one connection
    r = curl("-v", "--http2-prior-knowledge", srv.url("/hello"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n" and "< HTTP/2 200" in r.stderr
    r = curl("-v", "--http2-prior-knowledge", srv.url("/redirect"))
    assert "< HTTP/2 302" in r.stderr and "< location: https://box1" in r.stderr


def test_h2c_over_ipv6(srv):
    r = curl("--http2-prior-knowledge", "-w", "%{http_version}",
             srv.url("/hello", i=1, host="[::1]"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n2"
    r = curl("--http1.1", srv.url("/hello", i=1, host="[::1]"))
    assert r.stdout == "hello\n"


@pytest.mark.parametrize("size,off", [(0, 0), (1, 0), (100000, 5), (3 << 20, 0),
                                      (64 << 20, 0)])
def test_h2_file_bytes_match(srv, size, off):
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge",
                        srv.url(f"/file?size={size}&off={off}")], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout == pattern(size, off)


@pytest.mark.parametrize("proto", ["--http1.1", "--http2-prior-knowledge"])
def test_file_bytes_match_for_a_slow_reader(srv, proto):
    """A reader slower than the server fills the socket: every write that finds it full
    waits for room and goes on where it stopped, the body arrives whole."""
    size = 24 << 20
    r = subprocess.run(["curl", "-sS", proto, "--limit-rate", "16M",
                        srv.url(f"/file?size={size}&off=3")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == size - 3 and r.stdout == pattern(size, 3)


@pytest.mark.parametrize("proto", ["--http1.1", "--http2-prior-knowledge"])
def test_file_shorter_than_announced_is_cut_not_padded(srv, proto):
    """A file that holds less than the response announced (it shrank under the server):
    the client gets a cut transfer of the true bytes, never filler, and the server keeps
    serving."""
    size, claim = 300000, 1 << 20
    r = subprocess.run(["curl", "-sS", "--max-time", "10", proto,
                        srv.url(f"/file?size={size}&claim={claim}")], capture_output=True,
                       timeout=30)
    assert r.returncode != 0, "a cut transfer must not look complete"
    assert len(r.stdout) <= size and r.stdout == pattern(len(r.stdout))
    r = subprocess.run(["curl", "-sS", proto, srv.url("/file?size=100000")],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == pattern(100000)
    srv.assert_healthy()


@pytest.mark.parametrize("send", ["whole", "short"])
def test_h2_small_answers_to_a_reader_that_lags_stay_in_order(request, send):
    """Header-only answers are gathered per flush and sent at once while nothing is
    queued; behind queued output (a large file the reader has not taken) they queue, and
    when the socket takes part of a batch the rest queues behind it (with "short", send()
    takes 7 bytes a call, so every direct batch leaves a rest). A reader that lags,
    1 KiB at a time, asks for a large file, then keeps asking for redirects and small
    answers on up to 100 streams while it drains: every answer arrives whole, and its
    HPACK decoder (which breaks on any reordered header block) agrees."""
    srv = request.getfixturevalue("srv" if send == "whole" else "short_srv")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.ports[0]))
    c = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    c.initiate_connection()
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
    c.increment_flow_control_window(1 << 28)
    s.sendall(c.data_to_send())
    s.settimeout(10)
    want, got, bodies = {}, {}, {}
    state = {"asked": 0, "ended": 0, "open": 0}

    def ask(path, body):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, req_headers(path), end_stream=True)
        want[sid], bodies[sid] = (path, body), b""
        state["asked"] += 1
        state["open"] += 1

    def take(n):
        data = s.recv(n)
        assert data, "connection closed"
        for e in c.receive_data(data):
            if isinstance(e, h2.events.ResponseReceived):
                got[e.stream_id] = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived):
                bodies[e.stream_id] += e.data
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, h2.events.StreamEnded):
                path, body = want[e.stream_id]
                h = got[e.stream_id]
                if path == "/redirect":
                    assert h[":status"] == "302", h
                    assert h["location"] == "https://box1.example.net/t/AAAA/v/abc/seg42.ts"
                else:
                    assert h[":status"] == "200", (path, h)
                assert bodies[e.stream_id] == body, (path, first_diff(bodies[e.stream_id],
                                                                      body))
                state["ended"] += 1
                state["open"] -= 1
        out = c.data_to_send()
        if out:
            s.sendall(out)

    deadline = time.monotonic() + 90
    for rnd in range(12):
        size = 150_000 + 37_000 * rnd
        ask(f"/file?size={size}", pattern(size))
        s.sendall(c.data_to_send())
        time.sleep(0.05)  # the file fills the socket; the rest waits in the output
        for i in range(60):  # header-only answers behind it
            ask("/redirect", b"")
        s.sendall(c.data_to_send())
        k = 0
        while state["open"] and time.monotonic() < deadline:
            take(1024)
            # more answers while it drains, now and then, as long as streams are free
            k += 1
            if k % 3 == 0 and state["open"] < 95 and state["asked"] < 100 * (rnd + 1) + 900:
                for j in range(4):
                    if j == 3:
                        n = 200 + 53 * (k % 40)
                        ask(f"/pmem?len={n}&seed={k}", pstream_body(k, n))
                    else:
                        ask("/redirect", b"")
                s.sendall(c.data_to_send())
    s.close()
    assert state["ended"] == state["asked"], state
    srv.assert_healthy()


def test_h2_streaming_with_backpressure(srv):
    n, size = 100, 65536
    r = run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
             "%{size_download}", srv.url(f"/stream?chunks={n}&size={size}")], timeout=30)
    assert r.stdout == str(n * size)


def test_nghttp_many_streams_on_one_connection(srv):
    urls = [srv.url(p) for p in ("/hello", "/redirect", "/slow", "/file?size=50000")]
    r = run(["nghttp", "-nv", "--no-dep", *urls], timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(":status: 200") == 3 and r.stdout.count(":status: 302") == 1
    # the server's SETTINGS from HARDENING.md
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100" in r.stdout
    assert "SETTINGS_HEADER_TABLE_SIZE(0x01):4096" in r.stdout
    assert "SETTINGS_NO_RFC7540_PRIORITIES(0x09):1" in r.stdout


def test_h2load_bounded_load(srv):
    r = run(["h2load", "-n", "2000", "-c", "10", "-m", "10", srv.url("/redirect")],
            timeout=60)
    assert "2000 succeeded" in r.stdout, r.stdout + r.stderr
    assert "2000 3xx" in r.stdout
    r = run(["h2load", "--h1", "-n", "2000", "-c", "10", srv.url("/hello")], timeout=60)
    assert "2000 succeeded" in r.stdout, r.stdout + r.stderr
    st = srv.stats()
    # every request the handler saw was closed exactly once (this /stats is in flight)
    assert st["handler_calls"] == st["closed_ok"] + st["closed_gone"] + st["inflight"]
    srv.assert_healthy()


def test_httpx_h2c_and_h1(srv):
    with httpx.Client(http1=False, http2=True, timeout=10) as c:
        r = c.get(srv.url("/redirect"))
        assert r.http_version == "HTTP/2" and r.status_code == 302
        assert r.headers["location"].startswith("https://box1.example.net/")
        r = c.get(srv.url("/file?size=200000"))
        assert r.content == pattern(200000)
    with httpx.Client(timeout=10) as c:
        r = c.head(srv.url("/file?size=12345"))
        assert r.http_version == "HTTP/1.1" and r.headers["content-length"] == "12345"
        assert r.content == b""


# =========================================================================================
# TLS and ALPN

def test_tls_alpn_h2_and_http11(tls_srv):
    url = tls_srv.url("/hello", i=1, scheme="https")
    r = curl("-k", "--http2", "-w", "%{http_version}", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n2"
    r = curl("-k", "--http1.1", "-w", "%{http_version}", url)
    assert r.stdout == "hello\n1.1"
    r = subprocess.run(["curl", "-sSk", "--http2",
                        tls_srv.url("/file?size=1000000", i=1, scheme="https")],
                       capture_output=True, timeout=30)
    assert r.stdout == pattern(1000000)
    r = subprocess.run(["curl", "-sSk", "--http1.1",
                        tls_srv.url("/file?size=1000000&off=7", i=1, scheme="https")],
                       capture_output=True, timeout=30)
    assert r.stdout == pattern(1000000, 7)


def test_tls_without_alpn_is_http11(tls_srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", tls_srv.ports[1]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() is None
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = recv_until_close(s)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"hello\n")


def test_tls_h2load_and_httpx(tls_srv):
    r = run(["h2load", "-n", "2000", "-c", "10", "-m", "10",
             tls_srv.url("/redirect", i=1, scheme="https")], timeout=60)
    assert "2000 succeeded" in r.stdout, r.stdout + r.stderr
    assert "Application protocol: h2" in r.stdout
    with httpx.Client(http2=True, verify=False, timeout=10) as c:
        r = c.get(tls_srv.url("/stream?chunks=3", i=1, scheme="https"))
        assert r.http_version == "HTTP/2" and r.text == "chunk 0\nchunk 1\nchunk 2\n"
    tls_srv.assert_healthy()


def test_tls_garbage_after_handshake_closes(tls_srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", tls_srv.ports[1]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "h2"
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
            _, closed = recv_until_close(s, 5)
    assert closed
    with socket.create_connection(("127.0.0.1", tls_srv.ports[1]), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello-not-tls" * 10)
        _, closed = recv_until_close(raw, 5)
    assert closed
    tls_srv.assert_healthy()


# =========================================================================================
# malformed HTTP/1.1: 400 or 431, close, handler never called, nothing after it processed

BAD_H1 = [
    ("cl_and_te_is_smuggling", 400,
     b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("differing_content_lengths", 400,
     b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"),
    ("bare_lf", 400, b"GET /hello HTTP/1.1\nHost: x\n\n"),
    ("bare_lf_in_headers", 400, b"GET /hello HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"),
    ("obs_fold", 400, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n"),
    ("nul_in_value", 400, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n"),
    ("cr_in_value", 400, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n"),
    ("space_before_colon", 400,
     b"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("oversized_header", 431,
     b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"),
    ("too_many_headers", 431,
     b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100))
     + b"\r\n"),
    ("get_with_body", 400, b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
    ("post_with_body", 413, b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
    ("chunked_body", 413,
     b"PUT /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    ("missing_host", 400, b"GET /hello HTTP/1.1\r\n\r\n"),
    ("two_hosts", 400, b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("garbage", 400, b"\x16\x03\x01garbage garbage\r\n\r\n"),
    ("garbage_preface", 400, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + b"\x00" * 16),
    ("http_version_2", 505, b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n"),
    ("absolute_nonhttp_target", 400, b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n"),
]


@pytest.mark.parametrize("name,status,raw", BAD_H1, ids=[b[0] for b in BAD_H1])
def test_h1_malformed_request_is_refused_and_closed(srv, name, status, raw):
    before = srv.stats()["handler_calls"]
    s = connect(srv.ports[0])
    # a valid request pipelined after the bad one must never be processed
    s.sendall(raw + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    data, closed = recv_until_close(s, 5)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert data.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in data
    assert closed
    # only the /stats call itself reached the handler
    assert srv.stats()["handler_calls"] == before + 1
    srv.assert_healthy()


def test_h1_absolute_form_target_is_accepted(srv):
    s = connect(srv.ports[0])
    s.sendall(b"GET http://example.net/hello?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    st, h, body = H1Reader(s).response()
    assert st == 200 and body == b"hello\n"


def test_h1_refusals_are_counted(srv):
    s = connect(srv.ports[0])
    s.sendall(BAD_H1[0][2])
    recv_until_close(s)
    assert srv.reject_count("smuggling") >= 1
    s = connect(srv.ports[0])
    s.sendall(BAD_H1[8][2])
    recv_until_close(s)
    assert srv.reject_count("header_bytes") >= 1


def test_slowloris_header_timeout(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--header-timeout", "500"])
    s = connect(srv.ports[0])
    t0 = time.monotonic()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
    data = b""
    closed = False
    # one header line every 100 ms: reads keep coming, the request never completes
    for i in range(30):
        try:
            s.sendall(b"X-%d: y\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            break
        got, closed = recv_until_close(s, 0.1)
        data += got
        if closed:
            break
    elapsed = time.monotonic() - t0
    assert closed and elapsed < 2.0, (elapsed, data)
    assert data.startswith(b"HTTP/1.1 408 ")
    # a connection that says nothing is closed too
    s = connect(srv.ports[0])
    t0 = time.monotonic()
    _, closed = recv_until_close(s, 3)
    assert closed and time.monotonic() - t0 < 2.0
    assert srv.reject_count("header_timeout") >= 2
    srv.assert_healthy()


def test_idle_keepalive_timeout(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--idle-timeout", "400"])
    s = connect(srv.ports[0])
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    rd = H1Reader(s)
    assert rd.response()[2] == b"hello\n"
    t0 = time.monotonic()
    _, closed = recv_until_close(s, 3)
    assert closed and 0.3 < time.monotonic() - t0 < 2.0
    # h2 idles out with a GOAWAY
    s = h2_raw(srv.ports[0])
    frames, closed = read_frames(s, 3)
    assert closed and any(isinstance(f, GoAwayFrame) and f.error_code == 0 for f in frames)


def test_idle_timeout_counts_from_the_last_request(procs):
    # the connection timer is re-armed lazily: each request must still restart the idle
    # period, and a partial request on a kept-alive connection still gets the header timeout
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--idle-timeout", "600",
                                                  "--header-timeout", "400"])
    s = connect(srv.ports[0])
    rd = H1Reader(s)
    t_last = time.monotonic()
    for _ in range(4):
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert rd.response()[2] == b"hello\n"
        t_last = time.monotonic()
        time.sleep(0.35)  # past the first idle deadline, within each new one
    _, closed = recv_until_close(s, 3)
    assert closed
    assert 0.5 < time.monotonic() - t_last < 1.5
    s = connect(srv.ports[0])
    rd = H1Reader(s)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rd.response()[2] == b"hello\n"
    t0 = time.monotonic()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # never completed
    data, closed = recv_until_close(s, 3)
    assert closed and time.monotonic() - t0 < 0.55, time.monotonic() - t0
    assert data.startswith(b"HTTP/1.1 408 ")
    srv.assert_healthy()


def test_per_ip_connection_cap(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--max-per-ip", "3"])
    held = [connect(srv.ports[0]) for _ in range(3)]
    time.sleep(0.2)
    extra = connect(srv.ports[0])
    _, closed = recv_until_close(extra, 3)
    assert closed, "the 4th connection from one address must be closed at once"
    for s in held:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert H1Reader(s).response()[2] == b"hello\n"
        s.close()
    wait_for(lambda: srv.stats()["conns"] == 1, timeout=5, what="held connections to close")
    assert srv.reject_count("ip_limit") >= 1


def test_global_connection_cap(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--max-conns", "2"])
    held = [connect(srv.ports[0]) for _ in range(2)]
    time.sleep(0.2)
    extra = connect(srv.ports[0])
    _, closed = recv_until_close(extra, 3)
    assert closed
    for s in held:
        s.close()
    wait_for(lambda: srv.reject_count("conn_limit") >= 1, timeout=5, what="conn_limit")


def test_h1_client_that_never_reads_hits_the_write_timeout(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--write-timeout", "800"])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.ports[0]))
    s.sendall(b"GET /file?size=30000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    wait_for(lambda: srv.reject_count("write_timeout") >= 1, timeout=8,
             what="the write timeout")
    s.close()
    srv.assert_healthy()


def test_h2_stalled_window_resets_the_stream(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"], extra=["--write-timeout", "800"])
    s = connect(srv.ports[0])
    # a window of 0: the server may send headers but no DATA, and must not wait forever
    st = SettingsFrame(0)
    st.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 0}
    s.sendall(H2_PREFACE + st.serialize())
    f = HeadersFrame(1)
    f.data = hpack.Encoder().encode(req_headers("/file?size=100000"))
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    s.sendall(f.serialize())
    t0 = time.monotonic()
    frames, _ = read_frames(s, 6, until=lambda fr: isinstance(fr, RstStreamFrame))
    rst = [fr for fr in frames if isinstance(fr, RstStreamFrame)]
    assert rst and rst[0].stream_id == 1 and rst[0].error_code == 0x8  # CANCEL
    assert time.monotonic() - t0 < 4
    assert srv.reject_count("write_timeout") >= 1
    wait_for(lambda: srv.stats()["inflight"] == 1, timeout=5, what="the stream to close")
    srv.assert_healthy()


def test_client_gone_fires_close_callback(srv):
    before = srv.stats()
    for _ in range(5):
        s = connect(srv.ports[0])
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    s, c = h2_client(srv.ports[0])
    c.send_headers(1, req_headers("/slow"), end_stream=True)
    s.sendall(c.data_to_send())
    time.sleep(0.05)
    s.close()
    after = wait_for(lambda: (lambda st: st if st["inflight"] == 1 else None)(srv.stats()),
                     timeout=5, what="inflight back to 1")
    # each /slow was closed once, as gone; every handler call got one close (but this one)
    assert after["closed_gone"] - before["closed_gone"] == 6
    assert after["handler_calls"] == after["closed_ok"] + after["closed_gone"] + 1
    srv.assert_healthy()


# =========================================================================================
# malformed HTTP/2

def test_h2_too_many_headers_resets_only_that_stream(srv):
    s, c = h2_client(srv.ports[0])
    c.send_headers(1, req_headers(extra=[(f"x-h{i}", "v") for i in range(100)]),
                   end_stream=True)
    c.send_headers(3, req_headers(extra=[("x-big", "a" * 6000)] * 4), end_stream=True)
    c.send_headers(5, req_headers("/hello"), end_stream=True)
    s.sendall(c.data_to_send())
    ev = h2_events(s, c, lambda evs: any(isinstance(e, h2.events.StreamEnded) and
                                         e.stream_id == 5 for e in evs))
    resets = {e.stream_id for e in ev if isinstance(e, h2.events.StreamReset)}
    assert resets == {1, 3}
    data = b"".join(e.data for e in ev if isinstance(e, h2.events.DataReceived))
    assert data == b"hello\n"
    s.close()
    assert srv.reject_count("header_fields") >= 1 and srv.reject_count("header_bytes") >= 1
    srv.assert_healthy()


def test_h2_request_body_is_refused(srv):
    s, c = h2_client(srv.ports[0])
    c.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/hello"),
                       (":authority", "x")])
    c.send_data(1, b"body", end_stream=True)
    # an empty DATA frame ending the request is fine
    c.send_headers(3, req_headers("/hello"))
    c.send_data(3, b"", end_stream=True)
    s.sendall(c.data_to_send())
    ev = h2_events(s, c, lambda evs: sum(isinstance(e, (h2.events.StreamEnded,
                                                        h2.events.StreamReset))
                                         for e in evs) >= 2)
    status = {e.stream_id: dict(e.headers)[":status"] for e in ev
              if isinstance(e, h2.events.ResponseReceived)}
    assert status == {1: "413", 3: "200"}


def test_h2_continuation_flood_ends_the_connection(srv):
    s = h2_raw(srv.ports[0])
    block = hpack.Encoder().encode(req_headers("/hello"))
    f = HeadersFrame(1)
    f.data = block[:3]
    f.flags.add("END_STREAM")
    out = f.serialize()
    for _ in range(200):
        cf = ContinuationFrame(1)
        cf.data = b""
        out += cf.serialize()
    try:
        s.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    frames, closed = read_frames(s, 5)
    assert closed or any(isinstance(f, GoAwayFrame) for f in frames)
    srv.assert_healthy()


def test_h2_reset_budget_sends_enhance_your_calm(srv):
    s = h2_raw(srv.ports[0])
    enc = hpack.Encoder()
    out = b""
    # each stream carries an uppercase header name: nghttp2 resets it; the peer made us
    # reset, and 400 of those exhaust the budget
    for i in range(400):
        f = HeadersFrame(2 * i + 1)
        f.data = enc.encode(req_headers("/hello") + [("X-Bad", "1")])
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        out += f.serialize()
    try:
        s.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    frames, closed = read_frames(s, 5, until=lambda f: isinstance(f, GoAwayFrame))
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaways and goaways[-1].error_code == ENHANCE_YOUR_CALM
    assert srv.reject_count("h2_glitch") >= 1
    srv.assert_healthy()


def test_h2_rapid_reset_of_slow_streams(srv):
    s = h2_raw(srv.ports[0])
    enc = hpack.Encoder()
    out = b""
    for i in range(1500):
        f = HeadersFrame(2 * i + 1)
        f.data = enc.encode(req_headers("/slow"))
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        r = RstStreamFrame(2 * i + 1)
        r.error_code = 8
        out += f.serialize() + r.serialize()
    try:
        s.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    read_frames(s, 3)
    s.close()
    # every reset stream's request was closed; none leaks
    wait_for(lambda: srv.stats()["inflight"] == 1, timeout=5, what="inflight back to 1")
    srv.assert_healthy()


def test_h2_zero_window_update_on_connection_is_fatal(srv):
    s = h2_raw(srv.ports[0])
    w = WindowUpdateFrame(0)
    w.window_increment = 0
    s.sendall(w.serialize())
    frames, closed = read_frames(s, 5, until=lambda f: isinstance(f, GoAwayFrame))
    assert any(isinstance(f, GoAwayFrame) and f.error_code == 1 for f in frames)
    srv.assert_healthy()


def test_h2_bad_preface_after_magic_prefix(srv):
    s = connect(srv.ports[0])
    s.sendall(H2_PREFACE + b"\x00\x00\x00\x09\x00\x00\x00\x00\x00garbage!!" * 4)
    _, closed = recv_until_close(s, 5)
    assert closed
    srv.assert_healthy()


# =========================================================================================
# graceful drain

def test_sigterm_drains_in_flight_requests(procs):
    srv = TestSrv(procs, ["127.0.0.1:0"])
    results = {}

    def fetch(key, args):
        results[key] = run(["curl", "-sS", "--max-time", "10", *args], timeout=15)

    threads = [threading.Thread(target=fetch, args=("h1", ["--http1.1", srv.url("/slow")])),
               threading.Thread(target=fetch, args=("h2", ["--http2-prior-knowledge",
                                                           srv.url("/slow")]))]
    for t in threads:
        t.start()
    wait_for(lambda: srv.stats()["inflight"] >= 3, timeout=5, what="two /slow in flight")
    srv.proc.signal(signal.SIGTERM)
    for t in threads:
        t.join(15)
    assert results["h1"].stdout == "slow\n" and results["h2"].stdout == "slow\n"
    srv.proc.popen.wait(10)
    assert srv.proc.popen.returncode == 0, srv.proc.log_text()
    log = srv.proc.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log


# =========================================================================================
# memory and accounting

def test_h2_file_downloads_keep_rss_bounded(procs):
    """Many 1 MiB h2c downloads (10 connections x 10 streams, then 300 connections) leave
    the server's resident memory within a fixed bound: DATA frames reference the file, their
    headers take small chains, nothing grows with the file offset or the request count."""
    # a small quarantine: freed memory must not count as resident under ASan
    srv = TestSrv(procs, ["127.0.0.1:0"], env={
        "ASAN_OPTIONS": SAN_ENV["ASAN_OPTIONS"] + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"})
    url = srv.url("/file?size=1048576")
    r = run(["h2load", "-n", "50", "-c", "10", "-m", "10", url], timeout=60)
    assert "50 succeeded" in r.stdout, r.stdout + r.stderr
    before = srv.stats()["rss_kib"]
    r = run(["h2load", "-n", "1500", "-c", "10", "-m", "10", url], timeout=120)
    assert "1500 succeeded" in r.stdout, r.stdout + r.stderr
    r = run(["h2load", "-n", "600", "-c", "300", "-m", "1", url], timeout=120)
    assert "600 succeeded" in r.stdout, r.stdout + r.stderr
    after = srv.stats()["rss_kib"]
    assert after - before < 64 * 1024, f"RSS grew from {before} KiB to {after} KiB"
    srv.assert_healthy()


def test_h2_large_frames_when_the_peer_allows_them(srv):
    """A peer announcing SETTINGS_MAX_FRAME_SIZE 65536 gets DATA frames above 16 KiB (up to
    64 KiB); the bytes still match."""
    from h2.settings import SettingCodes
    s, c = h2_client(srv.ports[0])
    c.update_settings({SettingCodes.MAX_FRAME_SIZE: 65536,
                       SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    c.increment_flow_control_window(1 << 20)
    c.send_headers(1, req_headers("/file?size=300000"), end_stream=True)
    s.sendall(c.data_to_send())
    sizes, body = [], b""

    def done(evs):
        return any(isinstance(e, h2.events.StreamEnded) for e in evs)
    for e in h2_events(s, c, done, timeout=10):
        if isinstance(e, h2.events.DataReceived):
            sizes.append(len(e.data))
            body += e.data
            c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
    s.close()
    assert body == pattern(300000)
    assert max(sizes) > 16384 and max(sizes) <= 65536, sizes


def _body_sent_delta(srv, fetch):
    """body_sent (the test server leaves /stats answers out of it) gained by fetch()."""
    before = srv.stats()
    fetch()
    st = wait_for(lambda: (lambda x: x if x["closed_ok"] + x["closed_gone"]
                           >= before["closed_ok"] + before["closed_gone"] + 2 else None)(
                  srv.stats()), timeout=10, what="the close callbacks")
    return st["body_sent"] - before["body_sent"]


def test_body_sent_counts_whole_bodies(srv):
    """ec_http_req_body_sent: body bytes only (no headers, no chunk or frame framing), for
    files and memory bodies, on HTTP/1.1 and h2c."""
    cases = [
        (["--http1.1", srv.url("/file?size=100000&off=5")], 99995),
        (["--http2-prior-knowledge", srv.url("/file?size=10000")], 10000),
        (["--http1.1", srv.url("/stream?chunks=3&size=1000")], 3000),
        (["--http2-prior-knowledge", srv.url("/hello")], 6),
        (["--http1.1", "-I", srv.url("/file?size=5000")], 0),
    ]
    for args, want in cases:
        got = _body_sent_delta(srv, lambda: curl("-o", "/dev/null", *args))
        assert got == want, (args, got, want)


def test_body_sent_of_a_cut_response_is_partial(srv):
    """A client that takes part of a large HTTP/1.1 file and leaves: the close callback
    reports it gone, and the bytes counted are more than it read, less than the body."""
    size = 64 << 20
    before = srv.stats()
    s = connect(srv.ports[0])
    s.sendall(f"GET /file?size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = 0
    while got < (1 << 20):
        chunk = s.recv(65536)
        assert chunk
        got += len(chunk)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    st = wait_for(lambda: (lambda x: x if x["closed_gone"] > before["closed_gone"] else None)(
        srv.stats()), timeout=10, what="the close callback")
    sent = st["body_sent"] - before["body_sent"]
    assert got - 200 <= sent < size, (got, sent)
    srv.assert_healthy()


# --- ordering and wake-ups under load ----------------------------------------------------

@pytest.mark.parametrize("proto", ["h1", "h2c"])
def test_stream_without_drain_callback_never_stalls_the_server(srv, proto):
    """A producer that writes more than low water at once and paces itself by a timer,
    with no drain callback: once the socket took its bytes the server goes on serving
    everyone (it once looped forever waiting to wake a producer that had no callback)."""
    n = 1_000_000
    flag = "--http1.1" if proto == "h1" else "--http2-prior-knowledge"
    out = f"/tmp/ec-http-nodrain-{os.getpid()}-{proto}"
    p = subprocess.Popen(["curl", "-sS", "--max-time", "15", flag, "-o", out,
                          srv.url(f"/pstream?len={n}&chunk=200000&ms=30&drain=0&seed=7")])
    try:
        time.sleep(0.3)
        for _ in range(5):
            t0 = time.monotonic()
            r = curl(flag, srv.url("/hello"), timeout=8)
            assert r.returncode == 0 and r.stdout == "hello\n", r.stderr
            assert time.monotonic() - t0 < 2
        assert p.wait(20) == 0
        body = Path(out).read_bytes()
        assert body == pstream_body(7, n), first_diff(body, pstream_body(7, n))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        Path(out).unlink(missing_ok=True)
    srv.assert_healthy()


def _fetch_all(jobs, timeout=60):
    """Runs curl argv lists at once; returns [(argv, returncode, stderr)]."""
    procs = [(argv, subprocess.Popen(argv, stderr=subprocess.PIPE)) for argv in jobs]
    res = []
    for argv, p in procs:
        try:
            err = p.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            err = p.communicate()[1] + b" (killed: took too long)"
        res.append((argv, p.returncode, err.decode(errors="replace")))
    return res


@pytest.mark.parametrize("proto", ["h1", "h2c"])
def test_concurrent_paced_streams_with_slow_readers_are_byte_exact(srv, tmp_path, proto):
    """Many streaming responses at once - timer-paced and backpressure-driven, known
    length and chunked, small and odd-sized writes from one shared buffer - next to
    in-memory and file responses, with rate-limited readers: every body is byte-exact."""
    flag = "--http1.1" if proto == "h1" else "--http2-prior-knowledge"
    jobs, want = [], {}
    for i in range(20):
        seed, n = 100 + i, (300 * 1024, 3 << 20, 70000, 600 * 1024, 1000)[i % 5]
        if i % 4 == 3:
            path = f"/pmem?len={n}&seed={seed}"
        elif i % 10 == 9:
            path = f"/file?size={n}"
        else:
            ms = (-1, 0, 1, 5)[i % 4]
            chunk = (16384, 65536, 1000, 200000, 40000)[i % 5]
            path = f"/pstream?len={n}&seed={seed}&ms={ms}&chunk={chunk}&known={i % 2}"
        out = tmp_path / f"b{i}"
        argv = ["curl", "-sS", "--max-time", "50", flag, "-o", str(out)]
        if i % 2:
            argv += ["--limit-rate", ("300K", "1M", "4M")[i % 3]]
        jobs.append(argv + [srv.url(path)])
        want[str(out)] = pattern(n) if path.startswith("/file") else pstream_body(seed, n)
    mux = None
    if proto == "h2c":
        # and streams multiplexed on one connection, read slowly (curl 7.88 cannot reuse a
        # prior-knowledge connection for parallel transfers: an h2 client here)
        mux = threading.Thread(target=_h2_mux_check, args=(srv,), daemon=True)
        mux.errors = []
        mux.start()
    for argv, rc, err in _fetch_all(jobs):
        assert rc == 0, (argv, err)
    for out, body in want.items():
        got = Path(out).read_bytes()
        assert got == body, (out, first_diff(got, body))
    if mux:
        mux.join(60)
        assert not mux.is_alive() and not mux.errors, mux.errors
    srv.assert_healthy()


def _h2_mux_check(srv):
    """10 streams on one h2c connection (memory, paced and backpressured streams, a file),
    64 KiB frames allowed, read in small pieces with pauses; records mismatches in
    threading.current_thread().errors."""
    from h2.settings import SettingCodes
    me = threading.current_thread()
    try:
        s, c = h2_client(srv.ports[0])
        c.update_settings({SettingCodes.MAX_FRAME_SIZE: 65536,
                           SettingCodes.INITIAL_WINDOW_SIZE: 256 * 1024})
        want, got = {}, {}
        for i in range(10):
            sid, seed, n = 1 + 2 * i, 200 + i, (2 << 20, 5000, 400000, 3 << 20)[i % 4]
            if i % 5 == 4:
                path, body = f"/file?size={n}", pattern(n)
            elif i % 2:
                path = f"/pstream?len={n}&seed={seed}&ms={i % 3 - 1}&chunk={7000 + i * 9000}"
                body = pstream_body(seed, n)
            else:
                path, body = f"/pmem?len={n}&seed={seed}", pstream_body(seed, n)
            want[sid], got[sid] = (path, body), []
            c.send_headers(sid, req_headers(path), end_stream=True)
        s.sendall(c.data_to_send())
        ended, deadline = set(), time.monotonic() + 45
        while len(ended) < len(want) and time.monotonic() < deadline:
            time.sleep(0.001)
            data = s.recv(8192)
            if not data:
                break
            for e in c.receive_data(data):
                if isinstance(e, h2.events.DataReceived):
                    got[e.stream_id].append(e.data)
                    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    ended.add(e.stream_id)
                elif isinstance(e, h2.events.StreamReset):
                    me.errors.append(f"stream {e.stream_id} reset")
                    ended.add(e.stream_id)
            out = c.data_to_send()
            if out:
                s.sendall(out)
        s.close()
        for sid, (path, body) in want.items():
            b = b"".join(got[sid])
            if b != body:
                me.errors.append(f"{path}: {first_diff(b, body)}")
        if len(ended) < len(want):
            me.errors.append(f"only {len(ended)} of {len(want)} streams ended")
    except Exception as e:  # noqa: reported by the test
        me.errors.append(repr(e))


def test_h1_pipelined_stream_between_memory_responses(srv):
    """One pipelined HTTP/1.1 connection: in-memory answers, a chunked stream written at
    once, a timer-paced stream, a 3 MiB file and a 3 MiB in-memory body, read slowly:
    each response whole, in order, never mixed with its neighbours."""
    big = 3 << 20
    reqs = [
        ("/pmem?len=100000&seed=1", pstream_body(1, 100000)),
        ("/pstream?len=700000&seed=2&chunk=50000&known=0", pstream_body(2, 700000)),
        ("/pmem?len=300&seed=3", pstream_body(3, 300)),
        ("/pstream?len=400000&seed=4&chunk=30000&ms=1", pstream_body(4, 400000)),
        (f"/file?size={big}", pattern(big)),
        ("/pmem?len=5&seed=5", pstream_body(5, 5)),
        (f"/pmem?len={big}&seed=6", pstream_body(6, big)),
        ("/pstream?len=300000&seed=8&chunk=300000&known=0", pstream_body(8, 300000)),
        ("/hello", b"hello\n"),
    ]
    s = connect(srv.ports[0], timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p, _ in reqs))
    rd = H1Reader(s)
    slow_until = time.monotonic() + 1.5
    orig_fill = rd._fill

    def slow_fill():  # a slow reader for the first 1.5 s: small reads, short pauses
        if time.monotonic() < slow_until:
            time.sleep(0.002)
            chunk = s.recv(4096)
            if not chunk:
                raise EOFError("connection closed")
            rd.buf += chunk
        else:
            orig_fill()
    rd._fill = slow_fill
    for path, body in reqs:
        status, _, got = rd.response()
        assert status == 200, path
        assert got == body, (path, first_diff(got, body))
    s.close()
    srv.assert_healthy()
