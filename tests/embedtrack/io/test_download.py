"""embedtrack.io.download against a local HTTP server (Range support written here) serving a synthetic CTC zip."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from embedtrack.io import download as dl
from embedtrack.errors import EmbedTrackError

NAME = "Fluo-N2DH-SIM+"
ZIP_NAME = f"{NAME}-training.zip"


@dataclass
class ServerState:
    """What the handler serves and how it misbehaves; `requests` records (path, Range header)."""

    files: dict[str, bytes] = field(default_factory=dict)
    mode: str = "normal"  # normal | norange | truncate | truncate_first
    announce: int | None = None  # a Content-Length to claim instead of the real one
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class RangeHandler(BaseHTTPRequestHandler):
    """A tiny GET handler with `Range: bytes=N-[M]` support, 206/416 answers and optional truncation."""

    state: ServerState

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        state = self.state
        path = urllib.parse.unquote(self.path)
        state.requests.append((path, self.headers.get("Range")))
        data = state.files.get(path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start, end, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match and state.mode != "norange":
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start : end + 1]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(state.announce or len(body)))
        self.end_headers()
        truncate = state.mode == "truncate" or (state.mode == "truncate_first" and len(state.requests) == 1)
        self.wfile.write(body[: len(body) // 3] if truncate else body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base class)
        return


def make_ctc_zip(seed: int = 0) -> tuple[bytes, dict[str, bytes]]:
    """A small CTC training zip (<NAME>/01, 01_GT/TRA) of random frames; returns (zip bytes, member -> bytes)."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    for t in range(3):
        for rel, array in (
            (f"01/t{t:03d}.tif", rng.integers(0, 4000, (48, 40), dtype=np.uint16)),
            (f"01_GT/TRA/man_track{t:03d}.tif", np.pad(np.ones((4, 4), np.uint16), 10)),
        ):
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, array)
            members[f"{NAME}/{rel}"] = buffer.getvalue()
    members[f"{NAME}/01_GT/TRA/man_track.txt"] = b"1 0 2 0\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue(), members


@pytest.fixture()
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    handler = type("Handler", (RangeHandler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def served_zip(server: tuple[str, ServerState], monkeypatch: pytest.MonkeyPatch) -> tuple[str, ServerState, bytes]:
    """The synthetic zip served at the training URL, with its real SHA-256 registered as the known one."""
    base_url, state = server
    data, _ = make_ctc_zip()
    state.files[f"/training-datasets/{NAME}.zip"] = data
    monkeypatch.setitem(dl.KNOWN_SHA256, ("training", NAME), hashlib.sha256(data).hexdigest())
    return base_url, state, data


def assert_unpacked(root: Path) -> None:
    _, members = make_ctc_zip()
    for name, data in members.items():
        assert (root / name).read_bytes() == data
    leftovers = [p.name for p in root.iterdir() if p.name != NAME]
    assert leftovers == [], f"left behind: {leftovers}"


def test_full_download_unpacks_ctc_layout(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, _ = served_zip
    root = tmp_path / "data"
    target = dl.download_dataset(NAME, root, base_url=base_url, retry_wait=0)
    assert target == root / NAME
    assert sorted(p.name for p in target.iterdir()) == ["01", "01_GT"]
    assert_unpacked(root)
    assert state.requests == [(f"/training-datasets/{NAME}.zip", None)]


def test_keep_zip_and_challenge_url(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base_url, state = server
    data, _ = make_ctc_zip(seed=1)
    state.files[f"/test-datasets/{NAME}.zip"] = data
    dl.download_dataset(NAME, tmp_path, "challenge", base_url=base_url, keep_zip=True, verify_checksum=False)
    assert state.requests[0][0] == f"/test-datasets/{NAME}.zip"
    assert (tmp_path / f"{NAME}-challenge.zip").read_bytes() == data
    assert (tmp_path / NAME / "01" / "t000.tif").is_file()


def test_resume_from_partial_file(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, data = served_zip
    (tmp_path / f"{ZIP_NAME}.part").write_bytes(data[:1000])
    dl.download_dataset(NAME, tmp_path, base_url=base_url, retry_wait=0)
    assert state.requests == [(f"/training-datasets/{NAME}.zip", "bytes=1000-")]
    assert_unpacked(tmp_path)


def test_resume_when_server_ignores_range(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, _ = served_zip
    state.mode = "norange"
    (tmp_path / f"{ZIP_NAME}.part").write_bytes(b"x" * 500)  # garbage: must be overwritten, not appended to
    dl.download_dataset(NAME, tmp_path, base_url=base_url, retry_wait=0)
    assert_unpacked(tmp_path)


def test_partial_file_already_complete(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, data = served_zip
    (tmp_path / f"{ZIP_NAME}.part").write_bytes(data)
    dl.download_dataset(NAME, tmp_path, base_url=base_url, retry_wait=0)
    assert state.requests == [(f"/training-datasets/{NAME}.zip", f"bytes={len(data)}-")]
    assert_unpacked(tmp_path)


def test_broken_transfer_is_resumed_automatically(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, data = served_zip
    state.mode = "truncate_first"
    dl.download_dataset(NAME, tmp_path, base_url=base_url, retries=1, retry_wait=0)
    assert [r for _, r in state.requests] == [None, f"bytes={len(data) // 3}-"]
    assert_unpacked(tmp_path)


def test_truncated_download_fails_then_resumes(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, state, data = served_zip
    state.mode = "truncate"
    with pytest.raises(dl.DownloadError, match=r"incomplete after 2 attempts.*run the command again to resume"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url, retries=1, retry_wait=0)
    part = tmp_path / f"{ZIP_NAME}.part"
    assert 0 < part.stat().st_size < len(data)
    assert data.startswith(part.read_bytes())
    assert not (tmp_path / NAME).exists()
    kept = part.stat().st_size

    state.mode = "normal"
    state.requests.clear()
    dl.download_dataset(NAME, tmp_path, base_url=base_url, retry_wait=0)
    assert state.requests == [(f"/training-datasets/{NAME}.zip", f"bytes={kept}-")]
    assert_unpacked(tmp_path)


def test_unknown_dataset_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(EmbedTrackError) as info:
        dl.download_dataset("Fluo-N2DH-SIM", tmp_path / "root", base_url="http://127.0.0.1:9")
    message = str(info.value)
    assert "'Fluo-N2DH-SIM'" in message and "Did you mean Fluo-N2DH-SIM+?" in message
    for known in dl.KNOWN_DATASETS:
        assert known in message
    assert not (tmp_path / "root").exists()


def test_dataset_name_is_case_insensitive_and_url_keeps_plus() -> None:
    assert dl.check_dataset_name("fluo-n2dh-sim+") == NAME
    assert dl.dataset_url(NAME) == f"http://data.celltrackingchallenge.net/training-datasets/{NAME}.zip"
    assert dl.dataset_url("PhC-C2DL-PSC", "challenge", "http://m/") == "http://m/test-datasets/PhC-C2DL-PSC.zip"
    with pytest.raises(EmbedTrackError, match="unknown kind"):
        dl.dataset_url(NAME, "testing")


def test_checksum_mismatch_keeps_zip_and_can_be_skipped(
    served_zip: tuple[str, ServerState, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, state, data = served_zip
    monkeypatch.setitem(dl.KNOWN_SHA256, ("training", NAME), "0" * 64)
    with pytest.raises(dl.DownloadError, match="SHA-256 .* does not match .*--no-checksum"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url, retry_wait=0)
    assert (tmp_path / ZIP_NAME).read_bytes() == data
    assert not (tmp_path / NAME).exists()
    dl.download_dataset(NAME, tmp_path, base_url=base_url, verify_checksum=False)
    assert len(state.requests) == 1  # the kept zip was reused
    assert_unpacked(tmp_path)


def test_corrupt_zip_is_deleted_and_nothing_unpacked(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base_url, state = server
    state.files[f"/training-datasets/{NAME}.zip"] = b"PK\x03\x04 not really a zip" * 50
    with pytest.raises(dl.DownloadError, match="not a valid zip archive.*download it anew"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url, verify_checksum=False)
    assert list(tmp_path.iterdir()) == []


def test_zip_without_sequence_folders_is_refused(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base_url, state = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}/readme.txt", "nothing here")
    state.files[f"/training-datasets/{NAME}.zip"] = buffer.getvalue()
    with pytest.raises(CTCFormatError, match="no CTC sequence folders"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url, verify_checksum=False)
    assert [p.name for p in tmp_path.iterdir()] == [ZIP_NAME]


def test_zip_member_outside_target_is_refused(tmp_path: Path) -> None:
    zip_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(CTCFormatError, match="outside the target folder"):
        dl.unpack(zip_path, tmp_path, NAME)
    assert not (tmp_path.parent / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.zip"]


def test_existing_target_refused_before_download(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base_url, state = server
    (tmp_path / NAME).mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url)
    assert state.requests == []


def test_overwrite_replaces_existing_dataset(served_zip: tuple[str, ServerState, bytes], tmp_path: Path) -> None:
    base_url, _, _ = served_zip
    (tmp_path / NAME / "07_GT" / "TRA").mkdir(parents=True)  # an earlier download's sequence folders
    (tmp_path / NAME / "07_GT" / "TRA" / "man_track.txt").write_text("1 0 0 0\n")
    dl.download_dataset(NAME, tmp_path, base_url=base_url, overwrite=True)
    assert not (tmp_path / NAME / "07_GT").exists()
    assert_unpacked(tmp_path)


def test_http_404_is_one_clear_error(server: tuple[str, ServerState], tmp_path: Path) -> None:
    base_url, _ = server
    with pytest.raises(dl.DownloadError, match=r"training-datasets/PhC-C2DL-PSC\.zip: HTTP 404"):
        dl.download_dataset("PhC-C2DL-PSC", tmp_path, base_url=base_url, retry_wait=0)
    assert list(tmp_path.iterdir()) == []


def test_an_announced_size_beyond_the_limit_is_refused_before_writing(served_zip: tuple[str, ServerState, bytes],
                                                                     tmp_path: Path) -> None:
    base_url, state, _ = served_zip
    state.announce = 10**15
    root = tmp_path / "data"
    with pytest.raises(dl.DownloadSizeError, match=rf"{re.escape(base_url)}/training-datasets/Fluo-N2DH-SIM\+.zip: "
                                                   r"the server announces 1,000,000,000,000,000 bytes \(1,000,000.0 "
                                                   r"GB\), more than the limit of 64 GB"):
        dl.download_dataset(NAME, root, base_url=base_url, retries=0)
    assert not root.exists()  # nothing written, the folder made for it removed


def test_an_announced_size_beyond_the_free_space_is_refused(served_zip: tuple[str, ServerState, bytes],
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, _, data = served_zip
    usage = dl.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: usage._replace(free=len(data) - 1))
    with pytest.raises(dl.DownloadSizeError, match=rf"announces {len(data):,} bytes .* are free in "):
        dl.download_dataset(NAME, tmp_path / "data", base_url=base_url, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_a_partial_download_is_kept_when_the_rest_is_refused(served_zip: tuple[str, ServerState, bytes],
                                                             tmp_path: Path) -> None:
    base_url, _, data = served_zip
    part = tmp_path / f"{ZIP_NAME}.part"
    part.write_bytes(data[:100])
    with pytest.raises(dl.DownloadSizeError, match="more than the limit of 1e-06 GB"):
        dl.download_dataset(NAME, tmp_path, base_url=base_url, retries=0, max_unpacked_gb=1e-6)
    assert part.read_bytes() == data[:100]


class _DiskFullAfter(io.FileIO):
    """A file on a disk with room for ``ROOM`` bytes: writes beyond it fail with ENOSPC."""

    ROOM = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        room = self.ROOM - self.tell()
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(bytes(data)[:room])


def test_a_full_disk_keeps_the_partial_download_says_where_and_the_next_run_resumes(
        served_zip: tuple[str, ServerState, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, state, data = served_zip
    root, part = tmp_path / "new" / "root", tmp_path / "new" / "root" / f"{ZIP_NAME}.part"
    monkeypatch.setattr(_DiskFullAfter, "ROOM", len(data) // 2)
    monkeypatch.setattr(dl, "open", lambda path, mode: _DiskFullAfter(path, mode), raising=False)
    with pytest.raises(dl.DownloadError) as raised:
        dl.download_dataset(NAME, root, base_url=base_url, retry_wait=0)
    message = str(raised.value)
    assert message.startswith(f"{part}: the disk is full after {len(data) // 2} bytes") and "kept" in message
    assert "nothing half-written" not in message and "\n" not in message
    assert sorted(p.name for p in root.iterdir()) == [part.name] and part.read_bytes() == data[:len(data) // 2]
    monkeypatch.delattr(dl, "open")  # space freed
    state.requests.clear()
    dl.download_dataset(NAME, root, base_url=base_url, retry_wait=0)
    assert state.requests == [(f"/training-datasets/{NAME}.zip", f"bytes={len(data) // 2}-")]
    assert_unpacked(root)


@pytest.mark.parametrize("failure", ["404", "unreachable", "corrupt zip"])
def test_a_failed_download_leaves_no_root_folder_it_created(server: tuple[str, ServerState], tmp_path: Path,
                                                            failure: str) -> None:
    base_url, state = server
    if failure == "unreachable":
        base_url = "http://127.0.0.1:9"  # discard port: connection refused
    elif failure == "corrupt zip":
        state.files[f"/training-datasets/{NAME}.zip"] = b"PK\x03\x04 not really a zip" * 50
    with pytest.raises(dl.DownloadError):
        dl.download_dataset(NAME, tmp_path / "a" / "root", base_url=base_url, retries=0, retry_wait=0,
                            verify_checksum=False, timeout=10)
    assert list(tmp_path.iterdir()) == []
