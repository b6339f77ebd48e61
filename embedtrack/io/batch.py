"""`batch`: run many CTC sequences as tasks on a Dask cluster (local, or any running scheduler).

Every ``ROOT/<DATASET>/<SEQ>`` folder (two-digit sequence names; CTC frames or any 2-D TIFFs), every
``ROOT/<DATASET>/<NAME>.tif`` stack and every ``<NAME>.zarr`` array (``T×Y×X``) of a dataset that has a model
becomes one task, and each task goes through :func:`embedtrack.io.pipeline.run_sequence`, the code path of
``embedtrack run``: results are written atomically and validated before they appear. A sequence whose
``<SEQ>_RES`` exists and passes :func:`ctc.validate.validate_result` is skipped (unless ``overwrite``), so a
batch that was stopped is finished by starting it again. A failing sequence is reported with its one-line
error and the others go on. When the
batch is stopped (Ctrl-C, SIGTERM, SIGHUP), the temporary folders of the sequences its local workers were
writing are removed once the workers are gone (:func:`remove_leftovers`); those a killed batch left are removed
by the next one.

Workers: each task sets torch's thread count once per worker process and keeps the models it loaded (see
:func:`embedtrack.models.registry.enable_model_cache`). When every worker declares the resource ``sequence=1`` (the
local cluster started here does), a worker runs one sequence at a time with all its threads in torch;
otherwise each worker thread runs its own sequence with one torch thread.

Dask (``dask.distributed``) is an optional dependency: ``pip install ".[distributed]"`` in the embedtrack clone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ctc.frames import sequence_name
from ctc.wording import counted
from ctc.zarr_frames import is_zarr
from embedtrack.errors import EmbedTrackError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

logger = logging.getLogger(__name__)

SEQUENCE_NAME = re.compile(r"[0-9][0-9]", re.ASCII)  # two ASCII digits
RESOURCE = "sequence"  # one unit per worker: the worker runs one sequence at a time with all its threads
EVAL_METRICS = ("SEG", "TRA", "DET")
DONE, SKIPPED, FAILED, NO_MODEL = "done", "skipped", "failed", "no model"


@dataclass(frozen=True)
class Job:
    """One sequence to process: its folder, result folder, model (name or absolute folder) and GT folder."""

    dataset: str
    sequence: str
    seq_dir: str
    output: str
    model: str | None
    gt_dir: str | None


@dataclass
class JobOptions:
    """How each sequence is run (the ``embedtrack run`` options that a batch sets)."""

    device: str = "auto"
    overwrite: bool = False
    evaluate: bool = False
    quiet: bool = False  # `-q`: no per-sequence progress bars in the workers either


@dataclass
class JobResult:
    """The outcome of one sequence: one row of the batch table and report."""

    dataset: str
    sequence: str
    status: str
    frames: int | None = None
    tracks: int | None = None
    seconds: float = 0.0
    error: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    output: str = ""


def require_dask() -> None:
    """One clear error when the optional extra is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as err:
        raise EmbedTrackError("embedtrack batch needs Dask, the optional extra 'distributed': in the embedtrack "
                              "clone run pip install -c constraints.txt \".[distributed]\"") from err


# ------------------------------------------------------------------------------------------ finding work


def _split(value: str | None) -> list[str] | None:
    if value is None or value.strip().lower() == "all":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _dataset_dirs(root: Path, names: list[str] | None) -> list[Path]:
    if not root.is_dir():
        raise EmbedTrackError(f"{root}: batch root folder not found")
    if names is None:
        return sorted(p for p in root.iterdir() if p.is_dir() and _sequence_dirs(p, None))
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        raise EmbedTrackError(f"--datasets: {', '.join(str(root / n) for n in missing)}: dataset folder not found")
    return [root / n for n in names]


def _sequence_dirs(dataset: Path, names: list[str] | None) -> list[Path]:
    """The sequences of a dataset: two-digit folders (CTC frames or any 2-D TIFFs), ``T×Y×X`` TIFF stacks and
    zarr arrays (``<NAME>.zarr``, ``<NAME>.ome.zarr``)."""
    found = sorted(p for p in dataset.iterdir() if not p.name.startswith(".") and (
        (p.is_dir() and (SEQUENCE_NAME.fullmatch(p.name) or (p.suffix.lower() == ".zarr" and is_zarr(p))))
        or (p.is_file() and p.suffix.lower() in (".tif", ".tiff"))))
    return [p for p in found if names is None or sequence_name(p) in names]


def _model_for(dataset: str, model: str | None, model_dir: Path | None) -> str | None:
    """``--model`` for all, else ``--model-dir/<DATASET>``, else the bundled model of that name, else None."""
    from embedtrack.models.registry import bundled_name, resolve_model

    if model is not None:
        return str(resolve_model(model).resolve())
    if model_dir is not None and (model_dir / dataset).is_dir():
        return str((model_dir / dataset).resolve())
    return bundled_name(dataset)  # old names and case as `run --model` takes them


def find_jobs(root: str | Path, datasets: str | None = None, sequences: str | None = None,
              model_dir: str | Path | None = None, model: str | None = None) -> list[Job]:
    """Every ``ROOT/<DATASET>/<SEQ>`` to process, with its model (None: no model found for that dataset).

    ``datasets``/``sequences`` are comma-separated names or ``all`` (None). Raises :class:`EmbedTrackError`
    for a missing root, a named dataset that does not exist, an unknown ``model`` or a missing ``model_dir``.
    """
    root = Path(os.path.abspath(root))
    mdir = Path(os.path.abspath(model_dir)) if model_dir is not None else None
    if mdir is not None and not mdir.is_dir():
        raise EmbedTrackError(f"--model-dir {mdir}: folder not found")
    seq_names = _split(sequences)
    jobs = []
    for ds in _dataset_dirs(root, _split(datasets)):
        chosen = _model_for(ds.name, model, mdir)
        for seq in _sequence_dirs(ds, seq_names):
            name = sequence_name(seq)
            gt = ds / f"{name}_GT"
            jobs.append(Job(ds.name, name, str(seq), str(ds / f"{name}_RES"), chosen, str(gt) if gt.is_dir() else None))
    return jobs


# ----------------------------------------------------------------------------------------- one sequence


_configured_threads: int | None = None


def _configure_worker(exclusive: bool) -> None:
    """Once per worker process: torch threads (all the worker's when it runs one sequence at a time, else 1),
    OMP_NUM_THREADS to match (so that ``run_sequence`` keeps it), and the per-worker model cache."""
    global _configured_threads
    from distributed import get_worker

    try:
        nthreads = get_worker().state.nthreads if exclusive else 1
    except ValueError:  # not on a worker (called directly): leave the process as it is
        return
    if _configured_threads == nthreads:
        return
    import torch

    from embedtrack.models.registry import enable_model_cache

    os.environ["OMP_NUM_THREADS"] = str(nthreads)
    torch.set_num_threads(nthreads)
    enable_model_cache()
    _configured_threads = nthreads


def _one_line(err: BaseException) -> str:
    from ctc.errors import CTCError

    text = " ".join(str(err).split())
    known = isinstance(err, (CTCError, EmbedTrackError, OSError))
    return text if known and text else f"{type(err).__name__}: {text}"


def _existing_result(output: Path) -> tuple[int, int]:
    """Frames and tracks of a valid result folder; raises :class:`EmbedTrackError` when it is not valid."""
    from ctc.io import TRACK_FILE_RES
    from ctc.rules import errors_only
    from ctc.validate import validate_result

    problems = errors_only(validate_result(output))
    if problems:
        raise EmbedTrackError(f"{output} exists but is not a valid CTC result ({problems[0]}); "
                              "pass --overwrite to redo it")
    lines = (output / TRACK_FILE_RES).read_text().split("\n")
    return len(list(output.glob("mask*.tif"))), sum(1 for line in lines if line.strip())


def _scores(job: Job) -> dict[str, float]:
    from ctc.evaluate import evaluate

    gt = Path(job.gt_dir or "")
    wanted = [m for m in EVAL_METRICS if (gt / ("SEG" if m == "SEG" else "TRA")).is_dir()]
    if not wanted:
        return {}
    scores = evaluate(job.output, gt, wanted)
    return {m: round(scores[m], 4) for m in wanted}


def remove_leftovers(jobs: list[Job]) -> None:
    """Remove the temporary folders and files that runs no longer alive (a worker stopped or killed with the
    batch) left beside each job's result folder and settings file; those of live processes are kept."""
    from ctc.guard import remove_stale_temps
    from embedtrack.io.pipeline import settings_path

    for job in jobs:
        for path in (Path(job.output), settings_path(Path(job.output))):
            remove_stale_temps(path)


def process_job(job: Job, options: JobOptions, exclusive: bool = False) -> JobResult:
    """Run (or skip) one sequence; never raises for a problem with this sequence, it reports it instead."""
    result = JobResult(job.dataset, job.sequence, FAILED, output=job.output)
    tic = time.perf_counter()
    try:
        if job.model is None:
            result.status, result.error = NO_MODEL, f"no model for dataset {job.dataset}"
            return result
        _configure_worker(exclusive)
        output = Path(job.output)
        remove_leftovers([job])  # of a killed run, also beside a result that is skipped
        if output.exists() and not options.overwrite:
            result.frames, result.tracks = _existing_result(output)
            result.status = SKIPPED
        else:
            from ctc import progress
            from embedtrack.io.pipeline import RunOptions, run_sequence

            quiet, progress.QUIET = progress.QUIET, progress.QUIET or options.quiet
            try:  # a worker process does not see the command's `-q`: it comes with the options
                report = run_sequence(job.seq_dir, job.model, output,
                                      RunOptions(device=options.device, overwrite=options.overwrite))
            finally:
                progress.QUIET = quiet
            result.frames, result.tracks, result.status = report.frames, report.tracks, DONE
        if options.evaluate and job.gt_dir is not None:
            result.scores = _scores(job)
    except Exception as err:  # one sequence's failure must not stop the others
        result.status, result.error = FAILED, _one_line(err)
    finally:
        result.seconds = round(time.perf_counter() - tic, 2)
    return result


# -------------------------------------------------------------------------------------------- the cluster


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cluster_shape(workers: int | None, threads: int | None, cores: int | None = None) -> tuple[int, int]:
    """Workers and threads per worker for a local cluster, with workers × threads ≤ the usable cores."""
    cores = cores or usable_cores()
    if workers is not None and threads is not None:
        if workers * threads > cores:
            raise EmbedTrackError(f"--workers {workers} × --threads-per-worker {threads} exceeds the {cores} "
                                  "usable cores")
        return workers, threads
    if workers is not None:
        return min(workers, cores), max(1, cores // workers)
    threads = min(threads or 1, cores)
    return max(1, cores // threads), threads


@contextmanager
def open_client(scheduler: str | None, workers: int | None = None, threads: int | None = None) -> Iterator[Client]:
    """A client of the running scheduler at ``scheduler``, or of a local cluster sized to this machine."""
    require_dask()
    from distributed import Client

    if scheduler is not None:
        if workers is not None or threads is not None:
            raise EmbedTrackError("--workers/--threads-per-worker size a local cluster; with --scheduler the "
                                  "running workers are used as they are")
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise EmbedTrackError(f"--scheduler {scheduler}: cannot connect ({err})") from err
        with client:
            yield client
        return
    n_workers, n_threads = cluster_shape(workers, threads)
    with local_cluster(n_workers, n_threads) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def local_cluster(n_workers: int, n_threads: int, dashboard: bool = True) -> Iterator[LocalCluster]:
    """Worker processes on this machine, each running one sequence at a time (resource ``sequence=1``)."""
    import dask
    from distributed import LocalCluster

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive mmap threshold: every
    # large temporary array is then mapped and unmapped again, and a sequence ran 2-3x slower in a worker.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), LocalCluster(
            n_workers=n_workers, threads_per_worker=n_threads, processes=True, resources={RESOURCE: 1},
            dashboard_address=":0" if dashboard else None, env={"TQDM_DISABLE": "1"}) as cluster:
        yield cluster


def _all_exclusive(client: Client) -> bool:
    workers = client.scheduler_info().get("workers", {}).values()
    return bool(workers) and all(w.get("resources", {}).get(RESOURCE, 0) >= 1 for w in workers)


def dashboard(client: Client) -> str | None:
    """The dashboard address, when the scheduler serves one (it needs bokeh)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    return client.dashboard_link


def run_batch(jobs: list[Job], options: JobOptions, client: Client) -> list[JobResult]:
    """Process ``jobs`` on ``client``'s cluster with a progress bar; results in the order of ``jobs``."""
    from distributed import as_completed
    from ctc.progress import progress

    if not client.scheduler_info().get("workers"):
        logger.warning("waiting for the first worker to join %s", client.scheduler.address)
        client.wait_for_workers(1)
    exclusive = _all_exclusive(client)
    extra = {"resources": {RESOURCE: 1}} if exclusive else {}
    futures = {client.submit(process_job, job, options, exclusive, pure=False, **extra): i
               for i, job in enumerate(jobs) if job.model is not None}
    results: list[JobResult | None] = [None if j.model is not None else process_job(j, options) for j in jobs]
    with progress(total=len(jobs), desc="embedtrack batch", unit="seq", initial=len(jobs) - len(futures)) as bar:
        for future in as_completed(futures):
            results[futures[future]] = _collect(future, jobs[futures[future]])
            bar.update()
    return [r for r in results if r is not None]


def _collect(future: Any, job: Job) -> JobResult:
    try:
        return future.result()
    except Exception as err:  # the worker died or the task could not run at all
        return JobResult(job.dataset, job.sequence, FAILED, error=_one_line(err), output=job.output)


# --------------------------------------------------------------------------------------------- reporting


def succeeded(results: list[JobResult], strict_models: bool) -> bool:
    """Whether every sequence is done or skipped (``no model`` counts as a failure when ``strict_models``)."""
    bad = {FAILED, NO_MODEL} if strict_models else {FAILED}
    return not any(r.status in bad for r in results)


def not_done_note(results: list[JobResult], strict_models: bool) -> str | None:
    """A line saying which sequences had no model and why that is no failure, or None when every one had."""
    missing = [r for r in results if r.status == NO_MODEL]
    if not missing or strict_models:
        return None
    datasets = ", ".join(sorted({r.dataset for r in missing}))
    return (f"{len(missing)} of {counted(len(results), 'sequence')} not done: no model for {datasets} (give "
            "--model or --model-dir); exit code 0 because --datasets all runs only the datasets that have a "
            "model; name the datasets with --datasets to make a missing model an error")


def table(results: list[JobResult], evaluate: bool = False) -> str:
    """The batch as a plain-text table: dataset, sequence, frames, tracks, seconds[, SEG, TRA, DET], status."""
    metrics = list(EVAL_METRICS) if evaluate else []
    rows = [["dataset", "sequence", "frames", "tracks", "seconds", *metrics, "status"]]
    for r in results:
        rows.append([r.dataset, r.sequence, _num(r.frames), _num(r.tracks), f"{r.seconds:.1f}",
                     *[_num(r.scores.get(m)) for m in metrics], r.status + (f": {r.error}" if r.error else "")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(row, widths)] + [row[-1]]) for row in rows)


def _num(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def check_report_path(path: str | Path, jobs: list[Job], overwrite: bool = False) -> Path:
    """Fail before any work when the report cannot be written there: it must be a file name in an existing
    folder, none of the batch's inputs (sequences, ground truths, model folders) nor results, and an existing
    file is replaced only with ``overwrite`` and when it is a batch report."""
    from ctc.guard import REPORT, check_not_input, check_output
    from embedtrack.io.pipeline import settings_path

    path = Path(path)
    reads = [Path(p) for job in jobs for p in (job.seq_dir, job.gt_dir, job.model) if p and Path(p).is_dir()]
    check_output(path, reads, replace=overwrite, kind=REPORT)
    check_not_input(path, [p for job in jobs for p in (Path(job.output), settings_path(Path(job.output)))],
                    "the result")
    if not path.parent.is_dir():
        raise EmbedTrackError(f"--report {path}: folder {path.parent} not found")
    return path


def write_report(path: str | Path, results: list[JobResult], meta: dict[str, Any], jobs: list[Job],
                 overwrite: bool = False) -> None:
    """Write the batch report as JSON through :mod:`ctc.writer` (atomic, checked again)."""
    from ctc.guard import REPORT
    from ctc.writer import write_file

    path = check_report_path(path, jobs, overwrite)
    text = json.dumps({**meta, "sequences": [asdict(r) for r in results]}, indent=2) + "\n"
    write_file(path, text, REPORT, overwrite=overwrite)
