"""Generate the Cell Tracking Challenge scripts ``ctc_scripts/<DATASET>-0N.sh`` and the dataset list
``docker/ctc_datasets.txt`` (read by the container entrypoint) from one template and one table.

Usage::

    python docker/make_ctc_scripts.py            # (re)write ctc_scripts/ and docker/ctc_datasets.txt
    python docker/make_ctc_scripts.py --check    # exit 1 if either differs from what would be generated

The dataset names come from the preset table (``embedtrack.models.presets.CTC_DATASETS``), the text from
``docker/ctc_script.sh.in`` (placeholders ``@DATASET@`` and ``@SEQ@``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_DIR = DOCKER_DIR.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

from ctc.fsutil import write_atomic  # noqa: E402  (the repository is on the path only from here on)
from embedtrack.models.presets import CTC_DATASETS  # noqa: E402

TEMPLATE = DOCKER_DIR / "ctc_script.sh.in"
DATASETS_FILE = DOCKER_DIR / "ctc_datasets.txt"
OUTPUT_DIR = REPO_DIR / "ctc_scripts"
SEQUENCES: tuple[str, ...] = ("01", "02")

DATASETS_HEADER = (
    "# The nine 2-D Cell Tracking Challenge datasets this package has CTC scripts for (one name per line).\n"
    "# Generated from embedtrack/models/presets.py by docker/make_ctc_scripts.py; read by the container entrypoint.\n"
)


def datasets_file_text(datasets: tuple[str, ...] = CTC_DATASETS) -> str:
    """The text of ``docker/ctc_datasets.txt``: a comment, then one dataset name per line."""
    return DATASETS_HEADER + "".join(f"{name}\n" for name in datasets)


def datasets_file_stale(path: Path = DATASETS_FILE) -> bool:
    """Whether ``path`` differs from :func:`datasets_file_text`."""
    return not path.is_file() or path.read_text(encoding="utf-8") != datasets_file_text()


def render(template: str, dataset: str, seq: str) -> str:
    """Fill the template's placeholders for one dataset and sequence."""
    return template.replace("@DATASET@", dataset).replace("@SEQ@", seq)


def expected_scripts(template_path: Path = TEMPLATE, datasets: tuple[str, ...] = CTC_DATASETS) -> dict[str, str]:
    """Map each script file name (``<DATASET>-<SEQ>.sh``) to its generated text."""
    template = template_path.read_text(encoding="utf-8")
    return {f"{dataset}-{seq}.sh": render(template, dataset, seq) for dataset in datasets for seq in SEQUENCES}


def stale_scripts(out_dir: Path, scripts: dict[str, str]) -> list[str]:
    """Names of scripts in ``out_dir`` that are missing, differ from ``scripts`` or are not executable."""
    stale = []
    for name, text in scripts.items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text or not path.stat().st_mode & 0o111:
            stale.append(name)
    return stale


def write_scripts(out_dir: Path, scripts: dict[str, str]) -> None:
    """Write every script into ``out_dir`` with mode 0755 (each renamed into place when complete)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        path = write_atomic(out_dir / name, lambda f, text=text: f.write(text.encode("utf-8")))
        path.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: write the scripts, or with ``--check`` only compare them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the scripts are up to date")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="target folder (default: ctc_scripts/)")
    args = parser.parse_args(argv)
    scripts = expected_scripts()
    if args.check:
        stale = stale_scripts(args.output, scripts) + ([DATASETS_FILE.name] if datasets_file_stale(DATASETS_FILE) else [])
        if stale:
            sys.stderr.write(
                f"{args.output}: out of date with {TEMPLATE.name} or the preset table: {', '.join(stale)}; "
                f"run python docker/make_ctc_scripts.py\n"
            )
            return 1
        return 0
    write_scripts(args.output, scripts)
    write_atomic(DATASETS_FILE, lambda f: f.write(datasets_file_text().encode("utf-8")))
    sys.stdout.write(f"wrote {len(scripts)} scripts to {args.output} and {DATASETS_FILE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
