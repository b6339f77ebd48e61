"""Generate the Cell Tracking Challenge scripts ``ctc_scripts/<DATASET>-0N.sh`` from one template.

Usage::

    python docker/make_ctc_scripts.py            # (re)write ctc_scripts/
    python docker/make_ctc_scripts.py --check    # exit 1 if ctc_scripts/ differs from the template

The dataset names come from ``docker/ctc_datasets.txt``, the text from ``docker/ctc_script.sh.in``
(placeholders ``@DATASET@`` and ``@SEQ@``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_DIR = DOCKER_DIR.parent
TEMPLATE = DOCKER_DIR / "ctc_script.sh.in"
DATASETS_FILE = DOCKER_DIR / "ctc_datasets.txt"
OUTPUT_DIR = REPO_DIR / "ctc_scripts"
SEQUENCES: tuple[str, ...] = ("01", "02")


def read_datasets(path: Path = DATASETS_FILE) -> list[str]:
    """Return the dataset names listed in ``path`` (one per line, ``#`` starts a comment)."""
    names = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [name for name in names if name]


def render(template: str, dataset: str, seq: str) -> str:
    """Fill the template's placeholders for one dataset and sequence."""
    return template.replace("@DATASET@", dataset).replace("@SEQ@", seq)


def expected_scripts(template_path: Path = TEMPLATE, datasets_path: Path = DATASETS_FILE) -> dict[str, str]:
    """Map each script file name (``<DATASET>-<SEQ>.sh``) to its generated text."""
    template = template_path.read_text(encoding="utf-8")
    return {
        f"{dataset}-{seq}.sh": render(template, dataset, seq)
        for dataset in read_datasets(datasets_path)
        for seq in SEQUENCES
    }


def stale_scripts(out_dir: Path, scripts: dict[str, str]) -> list[str]:
    """Names of scripts in ``out_dir`` that are missing, differ from ``scripts`` or are not executable."""
    stale = []
    for name, text in scripts.items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text or not path.stat().st_mode & 0o111:
            stale.append(name)
    return stale


def write_scripts(out_dir: Path, scripts: dict[str, str]) -> None:
    """Write every script into ``out_dir`` with mode 0755."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: write the scripts, or with ``--check`` only compare them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the scripts are up to date")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="target folder (default: ctc_scripts/)")
    args = parser.parse_args(argv)
    scripts = expected_scripts()
    if args.check:
        stale = stale_scripts(args.output, scripts)
        if stale:
            sys.stderr.write(
                f"{args.output}: out of date with {TEMPLATE.name}: {', '.join(stale)}; "
                f"run python docker/make_ctc_scripts.py\n"
            )
            return 1
        return 0
    write_scripts(args.output, scripts)
    sys.stdout.write(f"wrote {len(scripts)} scripts to {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
