"""`embedtrack show` and `embedtrack download` through the click command line."""

from __future__ import annotations

import functools
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from embedtrack.cli import main
from embedtrack.io.download import KNOWN_DATASETS


def write_sequence(root: Path, n: int = 4) -> tuple[Path, Path]:
    """root/01 (raw) and root/01_RES (one square drifting right, track 1) with res_track.txt."""
    raw, res = root / "01", root / "01_RES"
    raw.mkdir(parents=True)
    res.mkdir()
    for t in range(n):
        labels = np.zeros((40, 50), np.uint16)
        labels[10:22, 5 + 4 * t : 17 + 4 * t] = 1
        tifffile.imwrite(raw / f"t{t:03d}.tif", (50 + 150 * (labels > 0)).astype(np.uint8))
        tifffile.imwrite(res / f"mask{t:03d}.tif", labels)
    (res / "res_track.txt").write_text(f"1 0 {n - 1} 0\n")
    return res, raw


def test_show_writes_gif_and_default_lineage(tmp_path: Path) -> None:
    res, raw = write_sequence(tmp_path)
    out = tmp_path / "movie.gif"
    result = CliRunner().invoke(main, ["show", str(res), "--raw", str(raw), "--out", str(out), "--fps", "2"])
    assert result.exit_code == 0, result.output
    lineage = tmp_path / "movie_lineage.png"
    assert str(out) in result.output and str(lineage) in result.output
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.info["duration"] == 500
    with Image.open(lineage) as im:
        assert im.format == "PNG"


def test_show_max_frames_and_explicit_lineage(tmp_path: Path) -> None:
    res, raw = write_sequence(tmp_path)
    out, tree = tmp_path / "a.gif", tmp_path / "trees" / "t.png"
    args = ["show", str(res), "--raw", str(raw), "--out", str(out), "--lineage", str(tree), "--max-frames", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.n_frames == 2
    assert tree.is_file() and not (tmp_path / "a_lineage.png").exists()


@pytest.mark.parametrize("form", ["stack", "named folder", "zarr"])
def test_show_takes_every_raw_form_run_takes(tmp_path: Path, form: str) -> None:
    """--raw goes through the opener `run` uses: the same pictures from a stack, named TIFFs or a zarr array."""
    res, ctc_raw = write_sequence(tmp_path)
    frames = np.stack([tifffile.imread(ctc_raw / f"t{t:03d}.tif") for t in range(4)])
    if form == "stack":
        raw = tmp_path / "movie.tif"
        tifffile.imwrite(raw, frames, photometric="minisblack")
    elif form == "named folder":
        raw = tmp_path / "named"
        raw.mkdir()
        for t, frame in enumerate(frames):
            tifffile.imwrite(raw / f"img{t + 1}.tif", frame)
    else:
        pytest.importorskip("zarr")
        from tests.ctc.test_zarr_frames import write_array

        raw = tmp_path / "movie.zarr"
        write_array(raw, frames)
    expected, out = tmp_path / "ctc.gif", tmp_path / "form.gif"
    for source, gif in ((ctc_raw, expected), (raw, out)):
        result = CliRunner().invoke(main, ["show", str(res), "--raw", str(source), "--out", str(gif)])
        assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected.read_bytes()


def test_show_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    res, _ = write_sequence(tmp_path)
    args = ["show", str(res), "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "x.gif")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "Error:" in result.output and "nope" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.gif").exists()


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        frame = io.BytesIO()
        tifffile.imwrite(frame, np.zeros((8, 8), np.uint8))
        archive.writestr("PhC-C2DL-PSC/01/t000.tif", frame.getvalue())
        archive.writestr("PhC-C2DL-PSC/02/t000.tif", frame.getvalue())
    return buffer.getvalue()


@pytest.fixture()
def mirror(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving tmp_path/www (CTC layout: training-datasets/<NAME>.zip)."""
    www = tmp_path / "www" / "training-datasets"
    www.mkdir(parents=True)
    (www / "PhC-C2DL-PSC.zip").write_bytes(_zip_bytes())

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "www")))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_download_command(mirror: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    args = ["download", "phc-c2dl-psc", "--root", str(root), "--base-url", mirror, "--no-checksum"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "01, 02" in result.output
    assert (root / "PhC-C2DL-PSC" / "02" / "t000.tif").is_file()
    assert [p.name for p in root.iterdir()] == ["PhC-C2DL-PSC"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_download_unknown_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["download", "HeLa", "--root", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "unknown dataset 'HeLa'" in result.output
    for known in KNOWN_DATASETS:
        assert known in result.output
    assert not (tmp_path / "r").exists()


def test_help_texts() -> None:
    for name in ("show", "download"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "Fluo-N2DH-SIM+" in CliRunner().invoke(main, ["download", "--help"]).output
