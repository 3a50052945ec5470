"""Hypothesis strategies for requests built to break the inference server, and one way to send them.

Shared by ``tests/test_serving_fuzz.py`` (10,000 cases, 0 server errors) and ``bench/serve_hardening.py``
(the same cases, counted and timed). Two kinds:

* payloads: any method on real and odd routes, JSON of every shape (deep, wide, long, non-finite),
  feature rows and raw bars near the validators' edges, other encodings and plain binary;
* model loads: ``POST /models`` with odd names and URLs (traversal, absolute, other schemes, s3://)
  and with tarballs written into the model root whose members are links, devices, escaping names,
  truncated or corrupted archives, or real package files in the wrong shape.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

from bqx.serving.synthetic import feature_names

FEATURES = feature_names(12)
MODEL = "eurusd"  # the model loaded before the fuzz; cases must not unload it


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    tarball: bytes | None = None  # written into the model root as the load URL's file first


SCALAR = (st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers()
          | st.text(max_size=8))
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=16)
NUMBER = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**400), max_value=10**400)
          | st.booleans() | st.none() | st.text(max_size=3))
ROW = st.dictionaries(st.sampled_from([*FEATURES, "extra", ""]), NUMBER, max_size=len(FEATURES) + 1)
FULL_ROW = st.fixed_dictionaries({f: st.floats(-1e3, 1e3) for f in FEATURES})
BAR = st.fixed_dictionaries(
    {"ts_utc": st.sampled_from(["2024-07-01T00:00:00Z", "2024-07-01T00:01:00+00:00", "2024-07-01T00:00:30Z",
                                "2024-07-01", "2024-W01-1T00:00Z", "9999-12-31T23:59:00-23:59", "1677-09-21",
                                "0001-01-01T00:00:00Z"]) | st.text(max_size=5),
     "open": NUMBER, "high": NUMBER, "low": NUMBER, "close": NUMBER},
    optional={"volume": NUMBER, "bid": NUMBER, "ask": NUMBER})
BARS = st.lists(BAR, min_size=1, max_size=4)


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, opener: str, balanced: bool) -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '{"a":' * depth + "1" + "}" * depth if opener == "{" else opener * depth + closer * depth
    return (inner if balanced else opener * depth).encode()


CSV_FIELD = (st.floats(allow_nan=True, allow_infinity=True).map(repr)
             | st.sampled_from(["", " ", "nan", "1e999", "-", "0x10", '"3"', "1_0", "\t2"]) | st.text(max_size=4))
CSV_BODY = st.lists(st.lists(CSV_FIELD, min_size=10, max_size=14).map(",".join), max_size=5).map(
    lambda lines: "\n".join(lines).encode())


BODY = st.one_of(
    CSV_BODY,
    st.builds(lambda n: ("\n".join([",".join(["0.5"] * len(FEATURES))] * n)).encode(),
              st.sampled_from([1, 10_001, 200_000])),
    JSON.map(_dumps),
    st.binary(max_size=256),
    st.builds(_nested, st.integers(0, 200_000), st.sampled_from(["[", "{"]), st.booleans()),
    st.fixed_dictionaries({"rows": st.lists(ROW, max_size=3)}).map(_dumps),
    st.fixed_dictionaries({"rows": st.lists(FULL_ROW, min_size=1, max_size=3)}, optional={
        "ts_utc": st.sampled_from(["2024-07-03T10:00:00Z", "yesterday", "", 5])}).map(_dumps),
    st.builds(lambda row, n: b'{"rows": [' + b",".join([_dumps(row)] * n) + b"]}", FULL_ROW,
              st.sampled_from([1, 9_999, 10_001, 20_000])),
    st.fixed_dictionaries({"features": ROW | JSON}).map(_dumps),
    st.fixed_dictionaries({"bars": JSON | BARS | st.dictionaries(st.sampled_from(["eurusd", "gbpusd", "xxxyyy", ""]),
                                                                 BARS, max_size=3)}).map(_dumps),
    st.builds(lambda n: b'{"rows": [{"' + b"a" * n + b'": 1}]}', st.sampled_from([10, 100_000, 2_000_000])),
    st.builds(lambda v, enc: json.dumps(v, ensure_ascii=False).encode(enc, "replace"), JSON,
              st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig", "cp1252"])),
    st.builds(lambda n: b" " * n + b"{}", st.sampled_from([0, 1 << 20, 17 << 20])),
)
PATH = st.sampled_from([f"/models/{MODEL}/invoke", "/invocations", "/models", f"/models/{MODEL}", "/ping",
                        "/models/%00/invoke", f"/models/{MODEL}/invoke/x", "/%2e%2e/%2e%2e/etc/passwd",
                        "/models?max_results=-1", "/models?max_results=99999999999999999999",
                        "/models?next_page_token=%ff%fe", "/models/" + "a" * 3000, "//models", "/models/%2F..%2F"])
METHOD = st.sampled_from(["POST"] * 6 + ["GET", "DELETE", "PUT", "HEAD", "PATCH", "OPTIONS"])
CONTENT_TYPE = st.sampled_from(["application/json", "application/json; charset=utf-16", "text/csv", "",
                                "application/jsonlines", "*/*", "multipart/form-data; boundary=x", "\u00e9"])
HEADERS = st.builds(lambda ct, target, accept: tuple(
    h for h in (("Content-Type", ct), ("X-Amzn-SageMaker-Target-Model", target), ("Accept", accept))
    if h[1] is not None),
    CONTENT_TYPE, st.none() | st.sampled_from([MODEL, "nope", "", "a" * 300]),
    st.none() | st.sampled_from(["text/csv", "application/json", "text/csv;q=0.5, */*", "*/*", ""]))


def _keep_model(method: str, path: str) -> str:
    return "GET" if method == "DELETE" and path.startswith(f"/models/{MODEL}") else method


PAYLOAD = st.builds(lambda m, p, h, b: Case(_keep_model(m, p), p, h, b), METHOD, PATH, HEADERS, BODY)

# -- model loads ---------------------------------------------------------------------------------------
MEMBER_NAME = st.sampled_from(["model.cbm", "selection.json", "meta.json", "reference.parquet", "./model.cbm",
                               "../escape", "/abs/path", "a/../../b", "dir/", "dir/model.cbm", "x" * 300, "",
                               ".", "\u00e9t\u00e9", "a\\..\\b"]) | st.text(max_size=12)
MEMBER_TYPE = st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                               tarfile.CHRTYPE, tarfile.FIFOTYPE])
MEMBER_DATA = st.binary(max_size=200) | JSON.map(_dumps) | st.sampled_from([
    b'{"features": ["technical_idx.f000"]}', b'{"features": []}', b"[" * 5000, b"{}", b"CBM1" + b"\0" * 64])


@st.composite
def tarballs(draw: st.DrawFn, good: dict[str, bytes]) -> bytes:
    """A tar archive of drawn members (sometimes the real package's files among them), maybe gzipped,
    maybe truncated or with bytes flipped."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT,
                                                                          tarfile.USTAR_FORMAT]))) as tar:
        real = draw(st.lists(st.sampled_from(sorted(good)), max_size=len(good), unique=True))
        members = [(name, tarfile.REGTYPE, good[name]) for name in real]
        members += draw(st.lists(st.tuples(MEMBER_NAME, MEMBER_TYPE, MEMBER_DATA), max_size=4))
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, draw(st.sampled_from(["/etc/passwd", "../../x", "model.cbm", ""]))
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            try:
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            except (ValueError, UnicodeEncodeError):  # a name this tar format cannot hold
                continue
    raw = buf.getvalue()
    if draw(st.booleans()) or not raw:
        raw = gzip.compress(raw, mtime=0)
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:]
    return raw


URL = st.sampled_from(["../outside.tar.gz", "/etc/passwd", "/proc/self/environ", "/dev/zero", "..", ".", "",
                       "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", "s3://", "s3://bucket",
                       "s3://no-such-bucket/model.tar.gz", "s3://bqx-fuzz/none.tar.gz", "s3://bqx-fuzz/junk.tar.gz",
                       "s3://Bad_Bucket!/x.tar.gz", f"{MODEL}.tar.gz", "missing.tar.gz", "sub/../../x.tar.gz",
                       "a" * 5000]) | st.text(max_size=20)
NAME = st.text(max_size=300) | st.integers() | st.none() | st.sampled_from(["ok", "\x00", "a/b", "../x", MODEL])
_counter = itertools.count()


def loads(good: dict[str, bytes]) -> st.SearchStrategy[Case]:
    """POST /models cases: odd JSON, odd names and URLs, and fuzzed tarballs inside the model root."""
    def post(body: bytes) -> Case:
        return Case("POST", "/models", (("Content-Type", "application/json"),), body)

    named = st.fixed_dictionaries({"model_name": NAME, "url": URL | st.integers()}).map(_dumps)

    def with_tarball(name: str, raw: bytes) -> Case:
        file = f"fuzz-{next(_counter)}.tar.gz"
        return Case("POST", "/models", (("Content-Type", "application/json"),),
                    _dumps({"model_name": name, "url": file}), raw)

    return st.one_of(st.builds(post, named), st.builds(post, BODY),
                     st.builds(with_tarball, st.text(min_size=1, max_size=12), tarballs(good)))


def package_files(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def send(client: httpx.Client, case: Case, root: Path) -> httpx.Response:
    """Send one case (writing its tarball into the model root first) and unload what it loaded."""
    body = json.loads(case.body) if case.tarball is not None else None
    if case.tarball is not None:
        (root / body["url"]).write_bytes(case.tarball)
    try:
        headers = [(k, v.encode()) for k, v in case.headers]
        r = client.request(case.method, case.path, content=case.body, headers=headers)
    finally:
        if case.tarball is not None:
            (root / body["url"]).unlink()
    if r.status_code == 200 and case.path == "/models" and case.method == "POST":
        name = r.json()["modelName"]
        if name != MODEL:
            client.delete(f"/models/{quote(name, safe='')}")
    return r


def problem(case: Case, r: httpx.Response) -> str | None:
    """What is wrong with the answer: a 5xx, or an error that is not JSON ``{"error": ...}``."""
    if r.status_code >= 500:
        return f"{r.status_code} on {case.method} {case.path} {case.body[:200]!r}: {r.text[:500]}"
    if case.method != "HEAD" and r.status_code not in (200, 202) and "error" not in r.json():
        return f"{r.status_code} without an error message: {r.text[:300]}"
    return None
