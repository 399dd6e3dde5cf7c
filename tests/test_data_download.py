"""Download logic against a local HTTP server on 127.0.0.1 (no test touches the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmcourse.data import downloader as dl
from llmcourse.data import registry
from llmcourse.data.checksums import read_sidecar
from llmcourse.data.fetch import ChecksumError, DownloadError, dataset_path, download

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes, not all the same
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {"/data.txt": PAYLOAD}
        self.fail_next = 0  # answer this many requests with HTTP 500
        self.truncate_next = 0  # send only half of the body on this many requests, then close
        self.support_range = True
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.mid_body_hook: Callable[[], None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        if srv.fail_next > 0:
            srv.fail_next -= 1
            self.send_error(500, "transient failure")
            return
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "not found")
            return
        start, end = 0, len(body) - 1
        if rng and srv.support_range:
            first, _, last = rng.split("=")[1].partition("-")
            start = int(first)
            end = min(int(last), len(body) - 1) if last else len(body) - 1
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:end + 1]
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Connection", "close")
        self.end_headers()
        half = len(chunk) // 2
        self.wfile.write(chunk[:half])
        self.wfile.flush()
        if srv.truncate_next > 0:
            srv.truncate_next -= 1
            self.close_connection = True
            return  # the client sees a short body
        if srv.mid_body_hook is not None:
            srv.mid_body_hook()
        self.wfile.write(chunk[half:])


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(root))
    monkeypatch.delenv(registry.DATA_ENV, raising=False)
    monkeypatch.setattr(dl, "DEFAULT_BACKOFF", 0.0)
    return root


def _get(server: _Server, dest: Path, **kw: object) -> Path:
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0.0)
    return download(f"{server.base}/data.txt", dest, **kw)  # type: ignore[arg-type]


def test_download_writes_file_and_records_sha256(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.txt"
    assert _get(server, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.txt.part").exists()
    assert (tmp_path / "sub" / "data.txt.sha256").read_text().split() == [PAYLOAD_SHA, "data.txt"]


def test_existing_good_file_is_not_downloaded_again(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    _get(server, dest, sha256=PAYLOAD_SHA)
    n = len(server.requests)
    _get(server, dest, sha256=PAYLOAD_SHA)
    _get(server, dest)  # no hash given: the recorded one is checked
    assert len(server.requests) == n


def test_file_put_in_place_by_hand_gets_its_hash_recorded(
    server: _Server, tmp_path: Path
) -> None:
    dest = tmp_path / "data.txt"
    dest.write_bytes(PAYLOAD)
    _get(server, dest)
    assert server.requests == []
    assert (tmp_path / "data.txt.sha256").read_text().split()[0] == PAYLOAD_SHA


def test_resume_partial_file_with_range(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    (tmp_path / "data.txt.part").write_bytes(PAYLOAD[:10_000])
    _get(server, dest, sha256=PAYLOAD_SHA)
    assert server.requests == [("/data.txt", "bytes=10000-")]
    assert dest.read_bytes() == PAYLOAD


def test_server_without_range_support_restarts(server: _Server, tmp_path: Path) -> None:
    server.support_range = False
    dest = tmp_path / "data.txt"
    (tmp_path / "data.txt.part").write_bytes(PAYLOAD[:10_000])
    _get(server, dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD  # not the first 10,000 bytes twice


def test_complete_part_file_gets_416_and_is_used(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    (tmp_path / "data.txt.part").write_bytes(PAYLOAD)
    _get(server, dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD


def test_retry_after_transient_server_errors(server: _Server, tmp_path: Path) -> None:
    server.fail_next = 2
    dest = tmp_path / "data.txt"
    _get(server, dest, sha256=PAYLOAD_SHA, retries=3)
    assert len(server.requests) == 3
    assert dest.read_bytes() == PAYLOAD


def test_dropped_connection_is_resumed(server: _Server, tmp_path: Path) -> None:
    server.truncate_next = 1
    dest = tmp_path / "data.txt"
    _get(server, dest, sha256=PAYLOAD_SHA, retries=2)
    assert len(server.requests) == 2
    assert server.requests[0][1] is None
    assert server.requests[1][1] == f"bytes={len(PAYLOAD) // 2}-"  # resumed, not restarted
    assert dest.read_bytes() == PAYLOAD


def test_retries_exhausted_keeps_part_and_explains(server: _Server, tmp_path: Path) -> None:
    server.truncate_next = 10
    dest = tmp_path / "data.txt"
    with pytest.raises(DownloadError, match="after 2 attempts") as info:
        _get(server, dest, retries=1)
    assert "resumes" in str(info.value) and str(dest) in str(info.value)
    assert not dest.exists()
    assert (tmp_path / "data.txt.part").stat().st_size > 0


def test_http_404_is_not_retried(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.base}/missing.txt", tmp_path / "m.txt", progress=False, backoff=0.0)
    assert len(server.requests) == 1


def test_hash_mismatch_deletes_download(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    with pytest.raises(ChecksumError, match="corrupted.*sha256") as info:
        _get(server, dest, sha256="0" * 64)
    assert "deleted" in str(info.value)
    assert not dest.exists()
    assert not (tmp_path / "data.txt.part").exists()


def test_size_mismatch_is_detected(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match="size"):
        _get(server, tmp_path / "data.txt", size=len(PAYLOAD) + 1)


def test_bad_download_never_overwrites_good_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    good = b"the good cached copy"
    dest.write_bytes(good)
    server.files["/data.txt"] = b"something else entirely"
    with pytest.raises(ChecksumError, match="left as it was"):
        _get(server, dest, sha256=hashlib.sha256(good).hexdigest(), force=True)
    assert dest.read_bytes() == good
    assert not (tmp_path / "data.txt.part").exists()


def test_final_path_never_holds_partial_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    part = tmp_path / "data.txt.part"
    seen: list[tuple[bool, bool]] = []

    def hook() -> None:  # runs in the server thread with half of the body sent
        deadline = time.monotonic() + 5.0
        while not part.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the client opens the .part file once the headers arrive
        seen.append((dest.exists(), part.exists()))

    server.mid_body_hook = hook
    _get(server, dest, sha256=PAYLOAD_SHA)
    assert seen == [(False, True)]  # mid-download: only the .part file exists
    assert dest.read_bytes() == PAYLOAD


def test_corrupted_cache_is_redownloaded(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    _get(server, dest)  # no official hash: the computed one is recorded next to the file
    dest.write_bytes(PAYLOAD[:-1] + b"X")  # later corruption
    with pytest.warns(UserWarning, match="corrupted"):
        _get(server, dest)
    assert dest.read_bytes() == PAYLOAD


# --- dataset_path: cache mode with the registry pointed at the local server -----------------


def _point_registry(monkeypatch: pytest.MonkeyPatch, url: str, sha: str | None) -> None:
    info = registry.DATASETS["shakespeare"]
    file = dataclasses.replace(info.files["train"], url=url, sha256=sha, size=None)
    monkeypatch.setitem(
        registry.DATASETS, "shakespeare", dataclasses.replace(info, files={"train": file})
    )


def test_dataset_path_downloads_into_cache(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_registry(monkeypatch, f"{server.base}/data.txt", PAYLOAD_SHA)
    path = dataset_path("shakespeare", progress=False)
    assert path == cache / "datasets" / "shakespeare" / "tinyshakespeare.txt"
    assert path.read_bytes() == PAYLOAD
    assert dataset_path("shakespeare", download=False) == path


def test_offline_and_not_cached_says_what_to_do(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{server.base}/data.txt"
    _point_registry(monkeypatch, url, PAYLOAD_SHA)
    monkeypatch.setattr(dl, "DEFAULT_RETRIES", 1)
    server.fail_next = 100  # the network keeps failing
    with pytest.raises(DownloadError) as info:
        dataset_path("shakespeare", progress=False)
    msg = str(info.value)
    dest = cache / "datasets" / "shakespeare" / "tinyshakespeare.txt"
    assert url in msg and str(dest) in msg and registry.DATA_ENV in msg
    assert "tinyshakespeare.txt" in msg
    with pytest.raises(FileNotFoundError, match="download=False"):
        dataset_path("shakespeare", download=False)


def test_connection_refused_is_a_download_error(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = _Server()  # bound, then closed: nothing listens on the port any more
    url = f"{srv.base}/data.txt"
    srv.server_close()
    _point_registry(monkeypatch, url, None)
    monkeypatch.setattr(dl, "DEFAULT_RETRIES", 0)
    with pytest.raises(DownloadError, match="offline"):
        dataset_path("shakespeare", progress=False)


def test_no_warning_on_plain_cached_use(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_registry(monkeypatch, f"{server.base}/data.txt", None)
    dataset_path("shakespeare", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset_path("shakespeare", progress=False)


# ---- sizes stated before a download, and heads of large files (Range requests) --------------

LINES = b"".join(b"line %05d of a long text file\n" % i for i in range(2000))  # 62,000 bytes


def test_download_states_its_size_before_the_first_byte(server: _Server, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _get(server, tmp_path / "a.txt", progress=True, desc="demo train")
    err = capsys.readouterr().err
    assert f"downloading demo train: 51.2 kB from 127.0.0.1:{server.server_address[1]}" in err


def test_head_downloads_only_the_first_bytes_cut_at_a_line(server: _Server, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    server.files["/lines.txt"] = LINES
    dest = tmp_path / "lines.first.txt"
    download(f"{server.base}/lines.txt", dest, head=10_000, progress=True, desc="lines", backoff=0.0)
    data = dest.read_bytes()
    assert LINES.startswith(data) and data.endswith(b"\n") and 10_000 - 31 < len(data) <= 10_000
    assert server.requests[-1] == ("/lines.txt", "bytes=0-9999")  # only the head was asked for
    assert "downloading the first 10.0 kB of lines (62.0 kB in all)" in capsys.readouterr().err
    assert read_sidecar(dest) == hashlib.sha256(data).hexdigest()


def test_head_from_a_server_that_ignores_range(server: _Server, tmp_path: Path) -> None:
    server.files["/lines.txt"] = LINES
    server.support_range = False  # answers 200 with the whole file: reading stops at the head
    dest = tmp_path / "lines.first.txt"
    download(f"{server.base}/lines.txt", dest, head=5_000, progress=False, backoff=0.0)
    data = dest.read_bytes()
    assert LINES.startswith(data) and data.endswith(b"\n") and 5_000 - 31 < len(data) <= 5_000


def test_head_larger_than_the_file_is_the_whole_file(server: _Server, tmp_path: Path) -> None:
    server.files["/lines.txt"] = LINES
    dest = tmp_path / "all.txt"
    download(f"{server.base}/lines.txt", dest, head=10**9, progress=False, backoff=0.0)
    assert dest.read_bytes() == LINES


def test_bad_head_is_refused_before_any_request(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="head must be a positive number of bytes"):
        download(f"{server.base}/lines.txt", tmp_path / "x.txt", head=0)
    assert server.requests == []


def test_dataset_path_max_bytes_caches_a_head(server: _Server, cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/TinyStories-train.txt"] = LINES
    info = registry.DATASETS["tinystories"]
    files = dict(info.files)
    files["train"] = dataclasses.replace(files["train"], url=f"{server.base}/TinyStories-train.txt")
    monkeypatch.setitem(registry.DATASETS, "tinystories", dataclasses.replace(info, files=files))
    path = dataset_path("tinystories", "train", max_bytes=20_000, progress=False)
    assert path == cache / "datasets" / "tinystories" / "TinyStories-train.first-20000.txt"
    assert LINES.startswith(path.read_bytes()) and path.stat().st_size <= 20_000
    assert server.requests == [("/TinyStories-train.txt", "bytes=0-19999")]
    assert dataset_path("tinystories", "train", max_bytes=20_000, progress=False) == path
    assert len(server.requests) == 1  # cached, and checked against its recorded hash
    with pytest.raises(ValueError, match="max_bytes must be a positive number of bytes"):
        dataset_path("tinystories", "train", max_bytes=-5)


def test_data_mirror_replaces_the_download_address(server: _Server, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/TinyStories-valid.txt"] = LINES
    monkeypatch.setenv(registry.MIRROR_ENV, server.base + "/")
    path = dataset_path("tinystories", "val", progress=False)  # the registered URL is on the hub
    assert path.read_bytes() == LINES
    assert server.requests == [("/TinyStories-valid.txt", None)]
