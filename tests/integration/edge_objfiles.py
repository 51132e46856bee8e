"""Writes echos-edge object files directly into a cache directory, in the store's own
format (edge/edge_store.c, docs/edge.md "The store"), so that tests and bench/ can start a
box with many cached objects without filling them through the origin.

    /usr/bin/python3 tests/integration/edge_objfiles.py CACHE_DIR COUNT [SIZE] [PREFIX]

writes COUNT objects of SIZE bytes (default 1024) named PREFIX/<n>.bin (default /gen).
"""
import hashlib
import os
import struct
import sys
import time
from pathlib import Path

MAGIC = b"ECHOSOBJ"
VERSION = 1
FIXED = 72  # bytes before the strings


def header(path, body, ctype="application/octet-stream", etag=None, lastmod="",
           stored_ms=None):
    """The object file header for `body` stored under object path `path`."""
    p, c = path.encode(), ctype.encode()
    e = (etag if etag is not None else '"%s"' % hashlib.sha256(body).hexdigest()[:32]).encode()
    lm = lastmod.encode()
    hlen = FIXED + len(c) + len(e) + len(lm) + len(p)
    stored_ms = int(time.time() * 1000) if stored_ms is None else stored_ms
    fixed = MAGIC + struct.pack("<IIQ", VERSION, hlen, len(body)) + \
        hashlib.sha256(body).digest() + \
        struct.pack("<HHHHq", len(c), len(e), len(lm), len(p), stored_ms)
    assert len(fixed) == FIXED
    return fixed + c + e + lm + p


def object_file(cache_dir, path):
    """Where the store keeps the object for `path`."""
    hx = hashlib.sha256(path.encode()).hexdigest()
    return Path(cache_dir) / "objects" / hx[:2] / hx


def write_object(cache_dir, path, body, **meta):
    """Writes one committed object (no fsync: for tests and benchmarks only)."""
    f = object_file(cache_dir, path)
    f.parent.mkdir(parents=True, exist_ok=True)
    with open(f, "wb") as fh:
        fh.write(header(path, body, **meta))
        fh.write(body)
    return f


def write_many(cache_dir, count, size=1024, prefix="/gen"):
    """Writes `count` objects of `size` random-ish bytes; returns {path: body} of the
    first few (to check hits against)."""
    seed = os.urandom(size + 64)
    sample = {}
    for i in range(count):
        path = f"{prefix}/{i}.bin"
        body = (b"%08d" % i + seed)[:size]
        write_object(cache_dir, path, body)
        if i < 4:
            sample[path] = body
    return sample


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cache, count = argv[1], int(argv[2])
    size = int(argv[3]) if len(argv) > 3 else 1024
    prefix = argv[4] if len(argv) > 4 else "/gen"
    t0 = time.monotonic()
    write_many(cache, count, size, prefix)
    print(f"wrote {count} objects of {size} bytes under {cache} in "
          f"{time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
