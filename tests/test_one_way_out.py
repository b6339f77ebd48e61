"""One way out: no code of the package writes a file except through ``ctc.writer``.

The source of ``ctc`` and ``embedtrack`` is scanned for every way Python writes or moves a file (``open`` for
writing, ``Path.write_text``/``write_bytes``, ``tifffile.imwrite``, ``numpy.save``, ``json.dump``, ``pickle.dump``,
Pillow's or torch's ``save`` to anything but a handle, ``shutil.copy*``/``move``, renames, links, zip extraction,
video writers) and for the unguarded atomic helpers of ``ctc.fsutil``. Only ``ctc/writer.py`` may use them; the
few other places are listed in :data:`ALLOWED`, each with the reason it is safe.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRITER = "ctc/writer.py"

#: Method or function names that write, copy, move or link a file whatever they are called on.
WRITES = {"write_text", "write_bytes", "imwrite", "imsave", "savez", "savez_compressed", "savetxt", "tofile",
          "copyfile", "copytree", "rename", "symlink_to", "hardlink_to", "extract", "extractall", "get_writer",
          "TiffWriter", "mkstemp", "NamedTemporaryFile"}
#: Names that write only on these modules (``array.copy()``, ``str.replace(a, b)`` do not).
MODULE_WRITES = {"shutil": {"copy", "copy2", "move", "copyfileobj"}, "os": {"replace", "rename", "link", "symlink"}}
#: Serialisers that may only write to a handle the writer gives (named ``handle``) or to memory (``buffer``).
SERIALISERS = {"save": {"torch": 1, "np": 1, "numpy": 1}, "dump": {"json": 1, "pickle": 1}}
#: The helpers of ctc.fsutil that land a file without the guard's check.
UNGUARDED = {"atomic_path", "write_atomic", "move_into_place", "land_together", "temp_dir_beside", "temp_file_beside",
             "set_aside"}
HANDLES = {"handle", "buffer"}

#: (file, call) -> why it is safe there.
ALLOWED = {
    ("ctc/fsutil.py", "open"): "write_atomic writes the temporary file it made itself",
    ("ctc/fsutil.py", "replace"): "the renames that land a complete temporary file or folder",
    ("ctc/fsutil.py", "mkstemp"): "temp_file_beside makes the temporary file of an atomic write",
    ("ctc/fsutil.py", "atomic_path"): "the primitives themselves",
    ("ctc/fsutil.py", "temp_dir_beside"): "the primitives themselves",
    ("ctc/fsutil.py", "temp_file_beside"): "the primitives themselves",
    ("ctc/fsutil.py", "land_together"): "the primitives themselves",
    ("ctc/guard.py", "replace"): "remove_stale_temps puts back a previous version a killed run had moved aside",
    ("ctc/io.py", "temp_dir_beside"): "ResultWriter checks its outputs with ctc.guard.check_outputs first",
    ("ctc/io.py", "temp_file_beside"): "ResultWriter: the settings file landing with the result",
    ("ctc/io.py", "land_together"): "ResultWriter lands the result and its settings after checking them again",
    ("ctc/export.py", "open_group"): "the geff store is built inside a ctc.writer.staged_folder",
    ("embedtrack/io/download.py", "open"): "a resumable download appends to its own .part file",
    ("embedtrack/io/download.py", "replace"): "the complete download renamed from its .part file to the zip",
    ("embedtrack/io/download.py", "extract"): "members already checked for names and size, into a temporary folder",
    ("embedtrack/io/download.py", "temp_dir_beside"): "unpack checks the dataset folder with ctc.guard first",
    ("embedtrack/io/download.py", "move_into_place"): "unpack checks the dataset folder with ctc.guard first",
    ("embedtrack/training/loop.py", "set_aside"): "--overwrite sets aside a model folder ctc.guard checked",
    ("embedtrack/training/calibrate.py", "temp_dir_beside"): "a hidden scratch folder; results in it go through ResultWriter",
    ("embedtrack/training/lock.py", "open"): "the lock file of a training folder (os.open, O_CREAT)",
}


def _name(func: ast.expr) -> tuple[str, str]:
    """(the called name, the name it is an attribute of or "")."""
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return func.attr, owner
    if isinstance(func, ast.Name):
        return func.id, ""
    return "", ""


def _mode(call: ast.Call, position: int) -> str:
    """The mode (or ``os.open`` flags) as source text; one that is not a literal counts as writing ("w")."""
    given = next((k.value for k in call.keywords if k.arg in ("mode", "flags")), None)
    if given is None and len(call.args) > position:
        given = call.args[position]
    if given is None:
        return ""
    if isinstance(given, ast.Constant) or isinstance(given, (ast.Attribute, ast.BinOp)):
        return ast.unparse(given)
    return "w"


def _writes(call: ast.Call) -> str | None:
    """The name of the way ``call`` writes a file, or None when it does not."""
    name, owner = _name(call.func)
    if name == "open" or name in ("open_group", "open_array"):
        mode = _mode(call, 0 if owner not in ("", "os", "io", "zarr", "gzip") else 1)
        if owner == "os":
            return name if any(flag in mode for flag in ("O_CREAT", "O_WRONLY", "O_RDWR", "O_APPEND")) else None
        return name if any(c in mode for c in "wax+") else None
    if name in WRITES or name in UNGUARDED or name in MODULE_WRITES.get(owner, ()):
        return name
    if (name == "replace" and isinstance(call.func, ast.Attribute) and owner != "os" and len(call.args) == 1
            and not call.keywords):
        return name  # Path.replace(target); str.replace takes two arguments, dataclass replace keywords
    if name in SERIALISERS:
        position = SERIALISERS[name].get(owner, 0)
        target = call.args[position] if len(call.args) > position else None
        return None if isinstance(target, ast.Name) and target.id in HANDLES else name
    return None


def direct_writes(source: str, where: str, used: set[tuple[str, str]] | None = None) -> list[str]:
    """``where:line: name`` for each direct write in ``source`` not in :data:`ALLOWED` (those that are go to
    ``used``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _writes(node)
            if name is not None and (where, name) in ALLOWED:
                (used if used is not None else set()).add((where, name))
            elif name is not None:
                found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_every_file_is_written_through_the_guarded_writer() -> None:
    offenders: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in sorted(p for package in ("ctc", "embedtrack") for p in (REPO / package).rglob("*.py")):
        where = path.relative_to(REPO).as_posix()
        if where != WRITER:
            offenders += direct_writes(path.read_text(encoding="utf-8"), where, used)
    assert offenders == [], "write these through ctc.writer (write_file, write_path, staged_folder)"
    assert sorted(set(ALLOWED) - used) == [], "no longer needed: remove from ALLOWED"


def test_the_scan_finds_each_way_of_writing() -> None:
    ways = ['open(p, "w")', 'open(p, mode="ab")', 'p.open("x")', 'open(p, "r+b")', "p.write_text('x')",
            "p.write_bytes(b'')", "tifffile.imwrite(p, a)", "np.save(p, a)", "json.dump(d, f)", "pickle.dump(d, f)",
            "torch.save(s, p)", "Image.fromarray(a).save(p)", "shutil.copyfile(a, b)", "shutil.copy(a, b)",
            "shutil.move(a, b)", "os.replace(a, b)", "p.rename(q)", "zipfile.ZipFile(z).extractall(p)",
            "os.open(p, os.O_CREAT | os.O_WRONLY)", "write_atomic(p, f)", "move_into_place(a, b)",
            'zarr.open_group(p, mode="w")', "imageio.get_writer(p)", "tifffile.TiffWriter(p)", "open(p, mode)",
            "p.replace(q)", "os.link(a, b)"]
    for way in ways:
        assert len(direct_writes(way, "embedtrack/x.py")) == 1, way
    safe = ['open(p)', 'open(p, "rb")', 'p.open()', "json.dumps(d)", "torch.save(s, handle)",
            "image.save(buffer, format='GIF')", "os.open(p, os.O_RDONLY)", "write_file(p, b'', KIND)",
            "a.copy()", "text.replace('a', 'b')", "config.replace(seed=1)"]
    for way in safe:
        assert direct_writes(way, "embedtrack/x.py") == [], way
