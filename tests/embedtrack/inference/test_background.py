"""ReadAhead and WriteBehind: order kept, bounded, an error of their thread raised once in the caller's, threads
joined (never left running, not even as daemons)."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from embedtrack.inference.background import ReadAhead, WriteBehind


def worker_threads() -> list[str]:
    """Names of the background threads of embedtrack still running."""
    return [t.name for t in threading.enumerate() if t.name.startswith("embedtrack-")]


def test_read_ahead_keeps_order_and_stays_at_most_depth_ahead() -> None:
    produced = [0]

    def numbers() -> Iterator[int]:
        for i in range(200):
            produced[0] += 1
            yield i

    got = []
    for i in ReadAhead(numbers(), depth=1):
        assert produced[0] <= i + 3  # item i consumed, i+1 queued, i+2 made and waiting for room
        got.append(i)
    assert got == list(range(200))
    assert worker_threads() == []


def test_read_ahead_raises_the_source_error_once_after_the_items_before_it() -> None:
    error = ValueError("t003.tif: not a readable TIFF file")

    def frames() -> Iterator[int]:
        yield from range(3)
        raise error

    reader = ReadAhead(frames())
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError) as raised:
        next(reader)
    assert raised.value is error
    assert list(reader) == []  # once: the iteration has ended
    assert worker_threads() == []


def test_read_ahead_closed_early_stops_the_source_in_its_thread() -> None:
    closed_in = []

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed_in.append(threading.current_thread().name)

    with ReadAhead(endless(), depth=2) as reader:
        assert next(reader) == 0 and next(reader) == 1
    assert closed_in == ["embedtrack-read"]
    assert worker_threads() == []


@pytest.mark.parametrize("threaded", [True, False])
def test_write_behind_runs_calls_in_order(threaded: bool) -> None:
    calls: list[tuple[int, str]] = []
    with WriteBehind(threaded=threaded) as behind:
        for i in range(50):
            behind.submit(lambda i: calls.append((i, threading.current_thread().name)), i)
        behind.wait()
        assert [i for i, _ in calls] == list(range(50))  # all done once wait() returns
    assert {name for _, name in calls} == {"embedtrack-write" if threaded else "MainThread"}
    assert behind.busy_seconds > 0
    assert worker_threads() == []


def test_write_behind_holds_at_most_depth_calls_waiting() -> None:
    release = threading.Event()
    behind = WriteBehind(depth=1)
    behind.submit(release.wait)  # running
    behind.submit(lambda: None)  # waiting
    third = threading.Thread(target=behind.submit, args=(lambda: None,))
    third.start()
    third.join(timeout=0.05)
    assert third.is_alive()  # blocked until there is room
    release.set()
    third.join()
    behind.close()
    assert worker_threads() == []


def test_write_behind_raises_a_failed_call_once_and_skips_the_rest() -> None:
    error = OSError(28, "No space left on device", "mask001.tif")
    done = []

    def write(i: int) -> None:
        if i == 1:
            raise error
        done.append(i)

    behind = WriteBehind()
    for i in range(3):
        behind.submit(write, i)
    with pytest.raises(OSError) as raised:
        behind.wait()
    assert raised.value is error and done == [0]
    behind.close()  # already raised: not again
    assert worker_threads() == []


def test_write_behind_close_raises_an_error_nobody_saw() -> None:
    error = RuntimeError("lost write")
    behind = WriteBehind()
    behind.submit(lambda: (_ for _ in ()).throw(error))
    with pytest.raises(RuntimeError) as raised:
        behind.close()
    assert raised.value is error
    assert worker_threads() == []
