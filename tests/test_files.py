"""write_atomic: the file holds the old text or the new, never a half-written one."""

import pytest

from bpkit.files import write_atomic


def test_write_atomic_replaces_the_file(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "bad surrogate \udc80")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]
