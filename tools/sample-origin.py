#!/usr/bin/python3
"""sample-origin: a small stand-in for a content owner's origin, for the demo and tests.

Serves files under --root over HTTP/1.1 (keep-alive) with Content-Type, Content-Length,
Last-Modified and a strong ETag; counts GETs per path (GET /_hits?path=/x, or /_hits for
all); sends a sidecar "<name>.repr-digest" verbatim as Repr-Digest (a way to simulate an
origin whose digest does not match its bytes); GET /_status/<code> answers that status.
--make-sample DIR writes the demo content and exits. Standard library only.
"""
import argparse
import email.utils
import json
import os
import random
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".mpd": "application/dash+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".bin": "application/octet-stream",
}
CHUNK = 256 * 1024


class Hits:
    """GET counts per path, shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_path = {}

    def add(self, path):
        with self.lock:
            self.by_path[path] = self.by_path.get(path, 0) + 1

    def get(self, path):
        with self.lock:
            return self.by_path.get(path, 0)

    def all(self):
        with self.lock:
            return dict(self.by_path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "sample-origin/0.1"

    def log_message(self, fmt, *args):  # one line per request, unless --quiet
        if not self.server.quiet:
            sys.stderr.write("sample-origin: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.serve(body=True)

    def do_HEAD(self):
        self.serve(body=False)

    def answer(self, code, text, ctype="text/plain; charset=utf-8", body=True):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def serve(self, body):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if body and path != "/_hits":
            self.server.hits.add(path)
        if path == "/_hits":
            q = urllib.parse.parse_qs(url.query)
            if "path" in q:
                p = q["path"][0]
                doc = {"path": p, "hits": self.server.hits.get(p)}
            else:
                doc = {"hits": self.server.hits.all()}
            return self.answer(200, json.dumps(doc) + "\n", "application/json", body)
        if path.startswith("/_status/"):
            try:
                code = int(path[len("/_status/"):])
                if not 200 <= code <= 599:
                    raise ValueError
            except ValueError:
                return self.answer(400, "bad status\n", body=body)
            return self.answer(code, "status %d\n" % code, body=body)

        file = self.resolve(path)
        if file is None:
            return self.answer(404, "not found\n", body=body)
        st = file.stat()
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(st.st_size))
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        self.send_header("ETag", '"%x-%x"' % (st.st_size, st.st_mtime_ns))
        sidecar = file.with_name(file.name + ".repr-digest")
        if sidecar.is_file():
            self.send_header("Repr-Digest", sidecar.read_text().strip())
        self.end_headers()
        if not body:
            return
        with open(file, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)

    def resolve(self, path):
        """The regular file under root for a URL path, or None (never outside root)."""
        if "\0" in path or not path.startswith("/"):
            return None
        root = self.server.root
        try:
            file = (root / path.lstrip("/")).resolve()
        except (OSError, RuntimeError):
            return None
        if root != file and root not in file.parents:
            return None
        return file if file.is_file() else None


def make_sample(d):
    """Writes the demo content: an HLS VOD playlist and segments, a large and a small file."""
    d = Path(d)
    rng = random.Random(20261124)
    vod = d / "v" / "demo"
    vod.mkdir(parents=True, exist_ok=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i in range(6):
        # 1394 MPEG-TS packets of 188 bytes (~256 KiB), each starting with the 0x47 sync byte
        seg = bytearray(rng.randbytes(1394 * 188))
        seg[0::188] = b"\x47" * 1394
        (vod / f"seg{i}.ts").write_bytes(bytes(seg))
        lines += ["#EXTINF:4.000,", f"seg{i}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (vod / "playlist.m3u8").write_text("\n".join(lines) + "\n")
    big = d / "big"
    big.mkdir(parents=True, exist_ok=True)
    (big / "movie.mp4").write_bytes(rng.randbytes(32 * 1024 * 1024))
    small = d / "small"
    small.mkdir(parents=True, exist_ok=True)
    (small / "hello.txt").write_text("hello from the echos sample origin\n")


def main():
    ap = argparse.ArgumentParser(description="Sample origin for the echos demo and tests.")
    ap.add_argument("--root", help="directory to serve")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--make-sample", metavar="DIR", help="write the demo content and exit")
    args = ap.parse_args()
    if args.make_sample:
        make_sample(args.make_sample)
        return 0
    if not args.root:
        ap.error("--root DIR is required")
    root = Path(args.root).resolve()
    if not root.is_dir():
        ap.error(f"--root {args.root}: not a directory")
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.root = root
    srv.quiet = args.quiet
    srv.hits = Hits()
    if not args.quiet:
        sys.stderr.write(f"sample-origin: serving {root} on http://{args.host}:{args.port}\n")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
