"""Size limits: a TIFF declaring an enormous frame is refused from its header; the limit can be raised."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from ctc.frames import open_frames
from ctc.io import open_sequence, read_tiff, tiff_header


def _lying_tiff(path: Path, height: int, width: int) -> Path:
    """A 4x4 TIFF whose header claims ``height`` x ``width`` pixels (a few hundred bytes on disk)."""
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), compression="zlib")
    return _patch_size(path, height, width)


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent)])
def test_tiny_file_declaring_a_huge_frame_is_refused(tmp_path: Path, read: object) -> None:
    path = _lying_tiff(tmp_path / "t000.tif", 200_000, 200_000)
    assert path.stat().st_size < 1000
    with pytest.raises(CTCFormatError, match=r"t000.tif: declares an image of 200000 x 200000 = 40,000,000,000 "
                                             r"pixels, more than the limit .* EMBEDTRACK_MAX_PIXELS=40000000000"):
        read(path)  # type: ignore[operator]


def test_the_limit_can_be_raised_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t000.tif"
    tifffile.imwrite(path, np.ones((16, 16), np.uint16))
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "100")
    with pytest.raises(CTCFormatError, match="16 x 16 = 256 pixels, more than the limit of 100"):
        read_tiff(path)
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "256")
    assert read_tiff(path).shape == (16, 16)
    for bad in ("lots", "-5", "nan", "0"):
        monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", bad)
        with pytest.raises(CTCFormatError, match=f"EMBEDTRACK_MAX_PIXELS={bad!r}: expected a positive number"):
            tiff_header(path)


def _oversized_tiles(path: Path, tile: int, size: int = 96) -> Path:
    """A ``size`` x ``size`` TIFF whose one tile is ``tile`` x ``tile`` pixels: zeros, a few hundred bytes
    compressed, but the decoder writes the whole tile."""
    tifffile.imwrite(path, np.zeros((tile, tile), np.uint16), tile=(tile, tile), compression="zlib")
    return _patch_size(path, size, size)


def _patch_size(path: Path, height: int, width: int) -> Path:
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        spots = [(tags[name].valueoffset, tags[name].dtype, value)
                 for name, value in (("ImageWidth", width), ("ImageLength", height))]
    data = bytearray(path.read_bytes())
    for offset, dtype, value in spots:
        data[offset:offset + (2 if dtype == 3 else 4)] = struct.pack("<H" if dtype == 3 else "<I", value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent).read(0),
                                  lambda p: open_frames(p.parent).read(0)])
def test_tiles_decoding_more_than_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        read: object) -> None:
    """What is decoded counts, not only the declared frame: a 96 x 96 frame with a 256 x 256 tile."""
    path = _oversized_tiles(tmp_path / "t000.tif", 256)
    tifffile.imwrite(tmp_path / "t001.tif", np.zeros((96, 96), np.uint16))
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "10000")  # above the 9,216 pixels the frame declares
    with pytest.raises(CTCFormatError, match=r"t000.tif: its tiles of 256 x 256 pixels would decode 65,536 pixels, "
                                             r"more than the limit of 10,000; .* EMBEDTRACK_MAX_PIXELS=65536"):
        read(path)  # type: ignore[operator]
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "65536")
    assert read_tiff(path).shape == (96, 96)


def test_a_tiff_stack_checks_each_page_it_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stack.tif"
    frames = np.zeros((3, 64, 64), np.uint16)
    tifffile.imwrite(path, frames, tile=(32, 32), compression="zlib", photometric="minisblack")
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "4096")
    stack = open_frames(path)
    assert stack.read(2).shape == (64, 64)
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "4000")
    with pytest.raises(CTCFormatError, match="stack.tif: declares an image of 64 x 64"):
        stack.read(1)


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent),
                                  lambda p: open_frames(p.parent / "stack.tif")])
def test_complex_pixels_are_refused(tmp_path: Path, read: object) -> None:
    """Complex frames are refused, not cast to their real part."""
    path = tmp_path / "t000.tif"
    tifffile.imwrite(path, np.full((8, 8), 1 + 2j, np.complex64))
    tifffile.imwrite(tmp_path / "stack.tif", np.full((3, 8, 8), 1 + 2j, np.complex128), photometric="minisblack")
    with pytest.raises(CTCFormatError, match=r"\.tif: pixels are complex numbers \(complex(64|128)\)"):
        read(path)  # type: ignore[operator]


#: The one way in: these modules open and decode frames (file-type checks, caps, pages and series, chunks).
OPENER = {"ctc/tiff.py", "ctc/io.py", "ctc/frames.py", "ctc/zarr_frames.py"}
#: Pixel readers of the opener, and the modules besides it that may call them: the validator reads each mask
#: file on its own to report its faults one by one.
PIXEL_READERS = {"read_tiff", "read_page", "open_tiff", "open_zarr", "open_stack", "open_tiff_folder", "TiffStack",
                 "ZarrFrames", "_open_node"}
PIXEL_READER_USERS = OPENER | {"ctc/validate.py"}
#: Reading functions of image libraries (tifffile, imageio, PIL, scikit-image, OpenCV, numpy files).
LIBRARY_READS = {"imread", "mimread", "volread", "mvolread", "get_reader", "imopen", "TiffFile", "TiffSequence",
                 "FileSequence", "fromfile", "load", "open_array", "open_group", "open_consolidated", "open"}
ALLOWED_LIBRARY_READS = {("ctc/tiff.py", "tifffile"), ("ctc/zarr_frames.py", "zarr")}
READ_MODES = (None, "r", "r+")


def _module_names(tree: ast.AST) -> dict[str, str]:
    """The names a module binds to modules: ``import imageio.v2 as iio`` -> ``{"iio": "imageio"}``, ``from PIL
    import Image`` -> ``{"Image": "PIL.Image"}``."""
    names = {"tifffile": "tifffile", "zarr": "zarr", "imageio": "imageio", "cv2": "cv2", "np": "numpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _library_read(module: str, attr: str, node: ast.Call, name: str) -> str | None:
    """A call ``module.attr(...)`` that reads an image with a library, or None."""
    root = module.split(".")[0]
    if root == "tifffile":
        if attr in ("imwrite", "TiffWriter") or (attr == "memmap" and name == "ctc/frames.py"):
            return None  # memmap: only of a stack whose pages ctc.frames checked
        return f"{name}: tifffile.{attr}"
    if root == "zarr":
        mode = next((k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)),
                    None)
        if attr in LIBRARY_READS and mode in READ_MODES and (name, "zarr") not in ALLOWED_LIBRARY_READS:
            return f"{name}: zarr.{attr} (mode {mode!r})"
        return None
    if root in ("imageio", "cv2", "numpy") or module.startswith("skimage.io") or module == "PIL.Image":
        if attr in LIBRARY_READS and (module != "PIL.Image" or attr == "open"):
            return f"{name}: {module}.{attr}"
    return None


def _offences(path: Path, name: str) -> list[str]:
    """Ways ``path`` (``name`` relative to the repository) reads frames other than through the opener."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = _module_names(tree)
    found = []
    for node in ast.walk(tree):
        module_name = getattr(node, "module", None) or ""
        if isinstance(node, ast.ImportFrom) and (module_name.split(".")[0] in ("tifffile", "imageio", "cv2", "zarr")
                                                 or module_name.startswith("skimage.io")
                                                 or (module_name == "skimage" and "io" in [a.name for a in node.names])):
            found.append(f"{name}: from {node.module} import")
        if isinstance(node, ast.ImportFrom) and module_name.startswith("ctc") and name not in PIXEL_READER_USERS:
            found += [f"{name}: imports {a.name}" for a in node.names if a.name in PIXEL_READERS]
        if isinstance(node, ast.Attribute) and node.attr in PIXEL_READERS and name not in PIXEL_READER_USERS:
            found.append(f"{name}: uses {node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id in modules:
            found += [o for o in [_library_read(modules[node.func.value.id], node.func.attr, node, name)] if o]
    return found


def test_frames_are_read_only_through_the_one_opener() -> None:
    """The one way in: only ``ctc/tiff.py`` opens or decodes TIFF files (elsewhere tifffile only writes, or
    ``ctc.frames`` memory-maps an uncompressed stack whose pages it checked), only ``ctc/zarr_frames.py`` opens
    zarr stores for reading, the opener's pixel readers are called by nothing else (but the validator), and no
    other image library reads a frame. Everything else takes frames from :func:`ctc.frames.open_frames`,
    :func:`ctc.io.open_sequence` and its kin, or :func:`ctc.frames.array_frames` for arrays in memory."""
    repo = Path(__file__).resolve().parents[2]
    offenders = []
    for path in sorted(p for package in ("ctc", "embedtrack") for p in (repo / package).rglob("*.py")):
        name = path.relative_to(repo).as_posix()
        if name != "ctc/tiff.py":
            offenders += _offences(path, name)
    assert offenders == []
