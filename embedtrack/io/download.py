"""Fetch a Cell Tracking Challenge dataset zip and unpack it into the CTC layout.

``download_dataset("Fluo-N2DH-SIM+", root)`` downloads
``http://data.celltrackingchallenge.net/training-datasets/Fluo-N2DH-SIM+.zip`` (``kind="challenge"``:
``.../test-datasets/...``) to ``<root>/Fluo-N2DH-SIM+-training.zip.part``, resuming an interrupted transfer with an
HTTP Range request, checks its size against the server's Content-Length and its SHA-256 where one is known, and
unpacks it into ``<root>/Fluo-N2DH-SIM+/01, 01_GT, 02, ...`` through a temporary folder that is renamed into place
only when everything is extracted. Only the standard library's urllib is used.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import http.client
import logging
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from ctc.errors import CTCFormatError
from ctc.fsutil import move_into_place, parents_made, temp_dir_beside
from ctc.guard import CTC_DATASET, check_output
from ctc.limits import DEFAULT_MAX_UNPACKED_GB, MAX_UNPACKED_ENV, env_limit
from ctc.progress import progress
from embedtrack._version import __version__
from embedtrack.errors import EmbedTrackError
from embedtrack.models.presets import CTC_DATASETS

logger = logging.getLogger(__name__)

#: The nine 2-D CTC datasets EmbedTrack was evaluated on (the CTC rows of the preset table).
KNOWN_DATASETS: tuple[str, ...] = CTC_DATASETS

#: ``--kind`` -> folder of the CTC download server.
KINDS: dict[str, str] = {"training": "training-datasets", "challenge": "test-datasets"}

DEFAULT_BASE_URL = "http://data.celltrackingchallenge.net"

#: SHA-256 of the CTC zips. The CTC does not publish checksums; these are the values the torch-em project
#: records for the same URLs. If the CTC re-releases an archive they stop matching: the error says so and
#: ``verify_checksum=False`` (``--no-checksum``) unpacks the download anyway (each member's CRC is still checked).
KNOWN_SHA256: dict[tuple[str, str], str] = {
    ("training", "BF-C2DL-HSC"): "0aa68ec37a9b06e72a5dfa07d809f56e1775157fb674bb75ff904936149657b1",
    ("training", "BF-C2DL-MuSC"): "ca72b59042809120578a198ba236e5ed3504dd6a122ef969428b7c64f0a5e67d",
    ("training", "DIC-C2DH-HeLa"): "832fed2d05bb7488cf9c51a2994b75f8f3f53b3c3098856211f2d39023c34e1a",
    ("training", "Fluo-C2DL-MSC"): "a083521f0cb673ae02d4957c5e6580c2e021943ef88101f6a2f61b944d671af2",
    ("training", "Fluo-N2DH-GOWT1"): "1a7bd9a7d1d10c4122c7782427b437246fb69cc3322a975485c04e206f64fc2c",
    ("training", "Fluo-N2DH-SIM+"): "3e809148c87ace80c72f563b56c35e0d9448dcdeb461a09c83f61e93f5e40ec8",
    ("training", "Fluo-N2DL-HeLa"): "35dd99d58e071aba0b03880128d920bd1c063783cc280f9531fbdc5be614c82e",
    ("training", "PhC-C2DH-U373"): "b18185c18fce54e8eeb93e4bbb9b201d757add9409bbf2283b8114185a11bc9e",
    ("training", "PhC-C2DL-PSC"): "9d54bb8febc8798934a21bf92e05d92f5e8557c87e28834b2832591cdda78422",
    ("challenge", "BF-C2DL-HSC"): "fd1c05ec625fd0526c8369d1139babe137e885457eee98c10d957da578d0d5bc",
    ("challenge", "BF-C2DL-MuSC"): "c5cae259e6090e82a2596967fb54c8a768717c1772398f8546ad1c8df0820450",
    ("challenge", "DIC-C2DH-HeLa"): "5e5d5f2aa90aef99d750cf03f5c12d799d50b892f98c86950e07a2c5955ac01f",
    ("challenge", "Fluo-C2DL-MSC"): "c90b13e603dde52f17801d4f0cadde04ed7f21cc05296b1f0957d92dbfc8ffa6",
    ("challenge", "Fluo-N2DH-GOWT1"): "c6893ec2d63459de49d4dc21009b04275573403c62cc02e6ee8d0cb1a5068add",
    ("challenge", "Fluo-N2DH-SIM+"): "c4f257add739b284d02176057814de345dee2ac1a7438e360ccd2df73618db68",
    ("challenge", "Fluo-N2DL-HeLa"): "45cf3daf05e8495aa2ce0febacca4cf0928fab808c0b14ed2eb7289a819e6bb8",
    ("challenge", "PhC-C2DH-U373"): "7aa3162e4363a416b259149adc13c9b09cb8aecfe8165eb1428dd534b66bec8a",
    ("challenge", "PhC-C2DL-PSC"): "8c98ac6203e7490157ceb6aa1131d60a3863001b61fb75e784bc49d47ee264d5",
}

_CHUNK = 1 << 20
_SEQUENCE_DIR = re.compile(r"^[0-9]{2,}$", re.ASCII)
_CONTENT_RANGE = re.compile(r"^bytes\s+(?:([0-9]+)-([0-9]+)|\*)/([0-9]+|\*)$", re.ASCII)


class DownloadError(EmbedTrackError):
    """A dataset could not be fetched (network, HTTP error, wrong size or checksum)."""


class UnpackSizeError(DownloadError):
    """An archive would unpack to more than the size limit or the free disk space (the zip is kept)."""


class DownloadSizeError(DownloadError):
    """The server announces a file larger than the size limit or the free disk space (nothing is written)."""


class _RetryableError(Exception):
    """A transient failure: try again, resuming from what is on disk."""


def check_dataset_name(name: str) -> str:
    """Return the canonical spelling of a known dataset name (case-insensitive), else raise listing the known ones."""
    for known in KNOWN_DATASETS:
        if name.lower() == known.lower():
            return known
    close = difflib.get_close_matches(name, KNOWN_DATASETS, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise EmbedTrackError(
        f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(KNOWN_DATASETS)}."
    )


def dataset_url(name: str, kind: str = "training", base_url: str = DEFAULT_BASE_URL) -> str:
    """URL of a dataset's zip on the CTC server (or on a mirror at ``base_url`` with the same layout)."""
    if kind not in KINDS:
        raise EmbedTrackError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    return f"{base_url.rstrip('/')}/{KINDS[kind]}/{urllib.parse.quote(name, safe='+')}.zip"


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``'bytes 100-199/200'`` -> (100, 200); ``'bytes */200'`` -> (None, 200); unparsable -> (None, None)."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def _check_announced(url: str, total: int | None, have: int, part: Path, limit_gb: float) -> None:
    """Refuse, before a byte is written, a download whose announced size exceeds the unpack limit (a zip is
    never larger than what it unpacks to, give or take its headers) or the free space beside ``part``."""
    if total is None:
        return
    if total > limit_gb * 1e9:
        raise DownloadSizeError(f"{url}: the server announces {total:,} bytes ({total / 1e9:,.1f} GB), more than the "
                                f"limit of {limit_gb:g} GB; if the file is genuine, raise it with --max-unpacked-gb "
                                f"or {MAX_UNPACKED_ENV}")
    free = shutil.disk_usage(part.parent).free
    if total - have > free:
        raise DownloadSizeError(f"{url}: the server announces {total:,} bytes ({total / 1e9:,.1f} GB), but only "
                                f"{free / 1e9:,.1f} GB are free in {part.parent}; free some space and run again")


def _fetch_once(url: str, part: Path, timeout: float, desc: str, limit_gb: float) -> tuple[int, int | None]:
    """One HTTP request appending to ``part``; returns (bytes on disk, total size or None if the server kept it).
    The announced size is checked (:func:`_check_announced`) before anything is written."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"embedtrack/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            _, total = _parse_content_range(err.headers.get("Content-Range"))
            if total == have:
                return have, total
            logger.warning("%s: the partial download does not fit the file on the server; starting over", part)
            part.unlink()
            raise _RetryableError("partial download discarded") from err
        if err.code >= 500:
            raise _RetryableError(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _RetryableError(str(getattr(err, "reason", err))) from err

    with response:
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != have:
                logger.warning("%s: server resumed at byte %s instead of %d; starting over", url, start, have)
                part.unlink()
                raise _RetryableError("server answered a different range")
            mode = "ab"
        else:
            if have:
                logger.info("%s: server does not resume downloads; starting over", url)
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and re.fullmatch(r"[0-9]{1,20}", length, re.ASCII) else None
        _check_announced(url, total, have, part, limit_gb)
        try:
            with open(part, mode) as handle, progress(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=desc
            ) as bar:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
        except (TimeoutError, ConnectionError, http.client.HTTPException, urllib.error.URLError) as err:
            raise _RetryableError(f"connection lost ({err})") from err
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(part, url) from err
            raise
    return part.stat().st_size, total


def _disk_full(part: Path, url: str) -> DownloadError:
    """The error for a full disk while downloading: the bytes written so far are kept for the next run to resume
    from, and the message says where (so that the user can also delete them)."""
    have = part.stat().st_size if part.exists() else 0
    return DownloadError(f"{part}: the disk is full after {have} bytes of {url}; they are kept in this file so "
                         "that the next run resumes the download: free some space and run the command again "
                         "(or delete the file to give up)")


def fetch(
    url: str,
    dest: Path,
    *,
    retries: int = 3,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
    desc: str = "download",
    max_gb: float | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest + '.part'`` if an earlier attempt left one.

    Interrupted transfers are resumed up to ``retries`` times (waiting ``retry_wait * 2**attempt`` s). The file
    only gets its final name when its size equals the server's Content-Length; otherwise the ``.part`` file is
    kept so that the next call resumes it. A size announced above ``max_gb`` (default
    ``EMBEDTRACK_MAX_UNPACKED_GB`` or 64) or above the free space is refused before anything is written.
    """
    part = dest.with_name(dest.name + ".part")
    limit_gb = max_gb if max_gb is not None else env_limit(MAX_UNPACKED_ENV, DEFAULT_MAX_UNPACKED_GB)
    reason = ""
    total: int | None = None
    for attempt in range(retries + 1):
        if attempt:
            wait = retry_wait * 2 ** (attempt - 1)
            logger.warning("%s: %s; resuming in %.0f s (attempt %d of %d)", url, reason, wait, attempt + 1, retries + 1)
            time.sleep(wait)
        try:
            have, total = _fetch_once(url, part, timeout, desc, limit_gb)
        except _RetryableError as err:
            reason = str(err)
            continue
        if total is None:
            logger.warning("%s: the server did not send the size; it cannot be checked", url)
            break
        if have == total:
            break
        if have > total:
            part.unlink()
            reason = f"got {have} bytes but the server announced {total}"
            continue
        reason = f"transfer stopped at {have} of {total} bytes"
    else:
        have = part.stat().st_size if part.exists() else 0
        size = f" of {total}" if total is not None else ""
        raise DownloadError(
            f"{url}: download incomplete after {retries + 1} attempts ({reason}); {have}{size} bytes are kept "
            f"in {part} — run the command again to resume."
        )
    part.replace(dest)
    return dest


def _safe_members(archive: zipfile.ZipFile, zip_path: Path) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths and '..' (a zip must not write outside its folder)."""
    members = []
    for info in archive.infolist():
        pure = PurePosixPath(info.filename.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
            raise CTCFormatError(f"{zip_path}: member {info.filename!r} would be written outside the target folder")
        if pure.parts and pure.parts[0] == "__MACOSX":
            continue
        members.append(info)
    return members


def _dataset_folder(extracted: Path, name: str, zip_path: Path) -> Path:
    """The folder holding 01, 02, ... inside an extracted archive (``<name>/`` or a single top folder, or the root)."""
    candidates = [extracted / name]
    subdirs = [p for p in extracted.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1:
        candidates.append(subdirs[0])
    candidates.append(extracted)
    for folder in candidates:
        if folder.is_dir() and any(p.is_dir() and _SEQUENCE_DIR.match(p.name) for p in folder.iterdir()):
            return folder
    raise CTCFormatError(f"{zip_path}: no CTC sequence folders (01, 02, ...) in the archive")


def _check_unpacked_size(members: list[zipfile.ZipInfo], zip_path: Path, root: Path, limit_gb: float) -> None:
    """Refuse an archive whose members declare more than ``limit_gb`` or than the free space (zipfile never
    writes more than a member declares, so this bounds what extraction can write)."""
    total = sum(info.file_size for info in members)
    if total > limit_gb * 1e9:
        raise UnpackSizeError(f"{zip_path}: unpacks to {total / 1e9:.1f} GB, more than the limit of {limit_gb:g} GB; "
                              f"if the archive is genuine, raise it with --max-unpacked-gb or {MAX_UNPACKED_ENV}")
    free = shutil.disk_usage(root).free
    if total > free:
        raise UnpackSizeError(f"{root}: the archive {zip_path.name} unpacks to {total / 1e9:.1f} GB, but only "
                              f"{free / 1e9:.1f} GB are free; free some space and run again")


def unpack(zip_path: Path, root: Path, name: str, overwrite: bool = False,
           max_unpacked_gb: float | None = None) -> Path:
    """Extract a CTC zip into ``root/name`` atomically (temporary folder + rename); returns ``root/name``.

    A corrupt archive (bad zip, CRC error), one that unpacks to more than ``max_unpacked_gb`` (default
    ``EMBEDTRACK_MAX_UNPACKED_GB`` or 64) or to more than the free space raises :class:`DownloadError` and
    leaves nothing behind but the zip. ``overwrite`` replaces only a folder holding nothing but sequences.
    """
    target = root / name
    check_output(target, replace=overwrite, kind=CTC_DATASET)
    limit_gb = max_unpacked_gb if max_unpacked_gb is not None else env_limit(MAX_UNPACKED_ENV, DEFAULT_MAX_UNPACKED_GB)
    tmp = temp_dir_beside(root / name)
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = _safe_members(archive, zip_path)
                _check_unpacked_size(members, zip_path, root, limit_gb)
                for info in progress(members, desc=f"unpack {name}", unit="file"):
                    archive.extract(info, tmp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
            raise DownloadError(f"{zip_path}: not a valid zip archive ({err})") from err
        source = _dataset_folder(tmp, name, zip_path)
        move_into_place(source, target, overwrite=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_dataset(
    name: str,
    root: str | Path,
    kind: str = "training",
    *,
    base_url: str = DEFAULT_BASE_URL,
    overwrite: bool = False,
    keep_zip: bool = False,
    verify_checksum: bool = True,
    retries: int = 3,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
    max_unpacked_gb: float | None = None,
) -> Path:
    """Download and unpack one CTC dataset; returns the dataset folder ``<root>/<name>``.

    The zip is kept as ``<root>/<name>-<kind>.zip`` until unpacked (and afterwards with ``keep_zip``); an existing
    one is reused instead of downloading again. Training and challenge data unpack to the same folder name, as
    on the CTC site: give them different roots.
    """
    name = check_dataset_name(name)
    url = dataset_url(name, kind, base_url)
    root = Path(root)
    target = root / name
    check_output(target, replace=overwrite, kind=CTC_DATASET)
    with parents_made(target):  # the root, if created here, is removed again when nothing was kept in it
        zip_path = root / f"{name}-{kind}.zip"
        if zip_path.exists():
            logger.info("using the earlier download %s", zip_path)
        else:
            logger.info("downloading %s", url)
            fetch(url, zip_path, retries=retries, retry_wait=retry_wait, timeout=timeout, desc=f"download {name}",
                  max_gb=max_unpacked_gb)
        expected = KNOWN_SHA256.get((kind, name))
        if verify_checksum and expected is not None:
            actual = sha256_of(zip_path)
            if actual != expected:
                raise DownloadError(
                    f"{zip_path}: SHA-256 {actual} does not match the known {expected}. The file is kept: if the CTC "
                    f"has re-released the dataset, run again with --no-checksum to unpack it; otherwise delete it and "
                    f"run again to download it anew."
                )
            logger.info("%s: SHA-256 verified", zip_path.name)
        try:
            unpack(zip_path, root, name, overwrite=overwrite, max_unpacked_gb=max_unpacked_gb)
        except UnpackSizeError:
            raise  # the zip is kept: raise the limit or free space and run again
        except DownloadError as err:
            zip_path.unlink(missing_ok=True)
            raise DownloadError(f"{err}; the file was deleted, run the command again to download it anew") from err
        if not keep_zip:
            zip_path.unlink()
        logger.info("%s (%s) is in %s", name, kind, target)
        return target
