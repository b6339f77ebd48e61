"""The track-file parser (man_track.txt, res_track.txt): strict ASCII integers, errors name the file and line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc.errors import CTCFormatError
from ctc.io import read_track_file, write_track_file
from ctc.lineage import Track

tracks = st.lists(st.builds(Track, st.integers(1, 65535), st.integers(0, 9999), st.integers(0, 9999),
                            st.integers(0, 65535)), max_size=8)


def _parse(text: str) -> list[Track]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "res_track.txt"
        path.write_text(text, encoding="utf-8")
        return read_track_file(path)


@settings(max_examples=100, deadline=None)
@given(tracks, st.sampled_from([" ", "\t", "  ", " \t "]), st.sampled_from(["\n", "\r\n"]))
def test_written_tracks_read_back(written: list[Track], sep: str, newline: str) -> None:
    text = "".join(sep.join(str(v) for v in (t.label, t.begin, t.end, t.parent)) + newline for t in written)
    assert _parse(text) == written
    with tempfile.TemporaryDirectory() as tmp:
        write_track_file(Path(tmp) / "t.txt", written)
        assert read_track_file(Path(tmp) / "t.txt") == sorted(written, key=lambda t: t.label)


_bad_field = st.one_of(
    st.text(st.characters(categories=["Nd", "No"]).filter(lambda c: c not in "0123456789"), min_size=1, max_size=3),
    st.sampled_from(["-1", "+1", "1.0", "1e3", "0x1", "", "one", "1_000"]),
)


@settings(max_examples=150, deadline=None)
@given(tracks.filter(bool), st.data())
def test_any_bad_field_is_one_error_naming_file_and_line(good: list[Track], data: st.DataObject) -> None:
    lines = [[str(v) for v in (t.label, t.begin, t.end, t.parent)] for t in good]
    row = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["field", "missing", "extra"]))
    if how == "field":
        lines[row][data.draw(st.integers(0, 3))] = data.draw(_bad_field)
    elif how == "missing":
        lines[row].pop(data.draw(st.integers(0, 3)))
    else:
        lines[row].append(data.draw(st.sampled_from(["0", "x"])))
    text = "\n".join(" ".join(line) for line in lines) + "\n"
    with pytest.raises(CTCFormatError, match=rf"res_track.txt: line {row + 1} is not four non-negative integers"):
        _parse(text)


def test_superscript_two_is_not_a_digit() -> None:
    with pytest.raises(CTCFormatError, match=r"line 2 .*'2 0 ² 0'"):
        _parse("1 0 3 0\n2 0 ² 0\n")


def test_non_utf8_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "man_track.txt"
    path.write_bytes(b"1 0 3 0\n\xff\xfe\n")
    with pytest.raises(CTCFormatError, match="man_track.txt: cannot read track file"):
        read_track_file(path)
