"""bpkit/grading/identity.py and its parts (records, intake, times, plan), and roster.py: every handed-in
notebook lands on the right student and lesson."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

import collections_fixtures as fx
from bpkit.grading import intake, plan, records, times
from bpkit.grading.choice import choose
from bpkit.grading.identity import (
    CollectionError,
    LatePenalty,
    collect,
    format_plan,
    parse_due,
    parse_late_penalty,
)
from bpkit.grading.roster import RosterError, read_roster
from bpkit.notebook import split_handed_in_name


def collected(batch: fx.Batch, monkeypatch, with_roster: bool = True):
    monkeypatch.chdir(batch.root)
    roster = read_roster(batch.roster) if with_roster and batch.roster else None
    return collect(batch.sources, roster, due=batch.due, lesson=batch.lesson)


def original_bytes(batch: fx.Batch, where: str) -> bytes:
    """The bytes handed in at `where` (a file below the class folder, or a zip entry)."""
    if ".zip/" in where:
        archive, entry = where.split(".zip/", 1)
        with zipfile.ZipFile(batch.root / f"{archive}.zip") as z:
            return z.read(entry)
    return (batch.root / where).read_bytes()


def records_by_where(collection) -> dict:
    found = {r.where: r for r in collection.records}
    assert len(found) == len(collection.records), "two records for one file"
    return found


@pytest.mark.parametrize("build", fx.BATCHES, ids=lambda b: b.__name__)
def test_every_record_of_each_collection_layout(build, tmp_path, monkeypatch):
    batch = build(tmp_path)
    with collected(batch, monkeypatch) as collection:
        found = records_by_where(collection)
        assert sorted(found) == sorted(e.where for e in batch.expected)
        for expected in batch.expected:
            record = found[expected.where]
            seen = (
                record.student,
                record.lesson,
                record.status,
                frozenset(record.problems),
                record.late,
                record.days_late if record.late else None,
            )
            wanted = (
                expected.student,
                expected.lesson,
                expected.status,
                expected.problems,
                expected.late,
                expected.days_late,
            )
            assert seen == wanted, (expected.where, record.problems, record.notes)
            if record.status != "invalid" or "lesson-01 notebook" in record.problems.get("invalid", ""):
                assert record.file.read_bytes() == original_bytes(batch, expected.where)
                metadata = json.loads(record.file.read_bytes())["metadata"]["bpkit"]["lesson"]
                assert record.metadata_lesson == metadata
        assert collection.missing() == batch.missing
        assert not collection.skipped


@pytest.mark.parametrize(
    "build",
    [fx.lab_homes, fx.same_named_files, fx.named_after_other, fx.forty_files, fx.digits_in_ids, fx.nbgrader_layout],
    ids=lambda b: b.__name__,
)
def test_folders_and_names_tell_students_apart_without_a_roster(build, tmp_path, monkeypatch):
    batch = build(tmp_path)
    with collected(batch, monkeypatch, with_roster=False) as collection:
        found = records_by_where(collection)
        for expected in batch.expected:
            record = found[expected.where]
            assert (record.student, record.lesson, record.status) == (
                expected.student,
                expected.lesson,
                expected.status,
            )
            assert "not-in-roster" not in record.problems
            assert set(record.problems) == set(expected.problems)


def test_without_a_roster_canvas_and_moodle_students_are_their_lms_ids(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    (tmp_path / "m").mkdir()
    canvas = fx.canvas_zip(tmp_path / "c")
    with collected(canvas, monkeypatch, with_roster=False) as collection:
        assert sorted(r.student for r in collection.records) == ["canvas-101", "canvas-102", "canvas-103", "canvas-104"]
        assert {r.name for r in collection.records} == {"smithalice", "jonesbob", "leecarol", "nguyendan"}
    moodle = fx.moodle_zip(tmp_path / "m")
    with collected(moodle, monkeypatch, with_roster=False) as collection:
        assert sorted(r.student for r in collection.records) == ["Alice Smith", "Bob Jones", "Chloé Durand"]


def test_a_roster_without_canvas_ids_says_so_for_a_canvas_zip(tmp_path, monkeypatch):
    batch = fx.canvas_zip(tmp_path)
    roster = tmp_path / "plain.csv"
    roster.write_text("id,name,email\nasmith,Alice Smith,\n")
    monkeypatch.chdir(tmp_path)
    with collect(batch.sources, read_roster(roster)) as collection:
        assert all("no canvas_id" in r.problems["not-in-roster"] for r in collection.records)


def test_the_misfiled_notebook_does_not_replace_the_real_one(tmp_path, monkeypatch):
    batch = fx.misfiled_lesson(tmp_path)
    with collected(batch, monkeypatch) as collection:
        alice = [r for r in collection.records if r.student == "m01"]
        assert sorted((r.lesson, r.status) for r in alice) == [("01", "ok"), ("04", "invalid")]
        misfiled = next(r for r in alice if r.lesson == "04")
        assert "lesson-01 notebook" in misfiled.problems["invalid"] and "zip's name" in misfiled.problems["invalid"]
        assert ("BP101-Lesson 04 losses-5513.zip", "moodle, lesson 04 (the zip's name)") in collection.sources


def test_lesson_option_is_the_assignment_and_a_zip_without_one_is_read_by_metadata(tmp_path, monkeypatch):
    batch = fx.canvas_zip(tmp_path)  # submissions.zip: no lesson in its name
    monkeypatch.chdir(tmp_path)
    roster = read_roster(batch.roster)
    with collect(batch.sources, roster, lesson="04") as collection:
        assert {r.status for r in collection.records} == {"invalid"}
        assert all("handed in to lesson 04 (--lesson)" in r.problems["invalid"] for r in collection.records)
    with collect(batch.sources, roster) as collection:
        assert {r.lesson_from for r in collection.records} == {"metadata"}
    with pytest.raises(CollectionError, match="--lesson 99: no such lesson"):
        collect(batch.sources, roster, lesson="99")


def test_a_name_contradicts_the_metadata_only_through_its_trailing_lesson_part(tmp_path, monkeypatch):
    fx._write(tmp_path / "in" / "ab12_04.ipynb", fx.notebook("01", False))  # trailing 04 vs metadata 01
    fx._write(tmp_path / "in" / "ab04_01.ipynb", fx.notebook("01", False))  # 04 is part of the id
    fx._write(tmp_path / "in" / "cd56_2024.ipynb", fx.notebook("01", False))  # a number that is no lesson
    monkeypatch.chdir(tmp_path)
    with collect([Path("in")], None) as collection:
        found = {Path(r.path).stem: r for r in collection.records}
        assert (
            found["ab12_04"].status == "invalid" and "file name says lesson 04" in found["ab12_04"].problems["invalid"]
        )
        assert (found["ab04_01"].student, found["ab04_01"].lesson, found["ab04_01"].status) == ("ab04", "01", "ok")
        assert (found["cd56_2024"].student, found["cd56_2024"].lesson) == ("cd56_2024", "01")


@pytest.mark.parametrize(
    "stem, parts",
    [
        ("ab12_01", ("ab12", "01")),
        ("s07_01", ("s07", "01")),
        ("team03_01", ("team03", "01")),
        ("dave_01_v2", ("dave", "01")),
        ("my_work_01", ("my_work", "01")),
        ("01_neurons", ("", "01")),
        ("alice_lesson4", ("alice", "04")),
        ("bob_01 (1)", ("bob", "01")),
        ("alice", ("alice", None)),
        ("alice_2024", ("alice_2024", None)),
        ("ab12_01_neurons", ("ab12", "01")),
    ],
)
def test_split_handed_in_name(stem, parts):
    assert split_handed_in_name(stem) == parts


def test_files_given_one_by_one_are_read_below_the_folder_they_share(tmp_path, monkeypatch):
    batch = fx.lab_homes(tmp_path)
    monkeypatch.chdir(tmp_path)
    files = sorted(Path("home").glob("*/bpkit-lessons/01_neurons.ipynb"))
    with collect(files, read_roster(batch.roster)) as collection:
        assert sorted((r.where, r.student) for r in collection.records) == [
            ("home/u1001/bpkit-lessons/01_neurons.ipynb", "u1001"),
            ("home/u1002/bpkit-lessons/01_neurons.ipynb", "u1002"),
        ]
    with collect([Path("home/u1001/bpkit-lessons/01_neurons.ipynb")], None) as collection:  # bpkit's folder is no one
        assert [(r.where, r.student) for r in collection.records] == [
            ("home/u1001/bpkit-lessons/01_neurons.ipynb", "u1001")
        ]


# -- conflicts and --student ------------------------------------------------------------------------


def test_choose_settles_a_conflict_with_the_file_that_counts(tmp_path, monkeypatch):
    batch = fx.planted_conflict(tmp_path)
    monkeypatch.chdir(tmp_path)
    roster = read_roster(batch.roster)
    with choose("dave", [Path("inbox/dave_01_v2.ipynb")], roster) as chosen:
        [record] = chosen.records
        assert (record.student, record.lesson, record.status, record.chosen) == ("dave", "01", "ok", True)
    with choose("dave", [Path("inbox/dave_01_v2.ipynb"), Path("inbox/dave_01.ipynb")], roster) as chosen:
        assert {r.status for r in chosen.records} == {"conflict"}
    with pytest.raises(CollectionError, match="give a notebook"):
        choose("dave", [Path("inbox/nothing.ipynb")], roster)


def test_choose_takes_a_zip_entry_as_the_plan_names_it(tmp_path, monkeypatch):
    batch = fx.canvas_zip(tmp_path)
    monkeypatch.chdir(tmp_path)
    entry = Path("submissions.zip/nguyendan_104_9004_ab12_01.ipynb")
    with choose("asmith", [entry], read_roster(batch.roster)) as chosen:
        [record] = chosen.records
        assert (record.student, record.where, record.lesson, record.problems) == ("asmith", str(entry), "01", {})
    late = Path("submissions.zip/jonesbob_late_102_9002_01_neurons.ipynb")
    with choose("bjones", [late], read_roster(batch.roster), due=fx.DUE) as chosen:
        assert (chosen.records[0].late, chosen.records[0].days_late) == (True, 2)
    with pytest.raises(CollectionError, match="has no entry"):
        choose("asmith", [Path("submissions.zip/nope.ipynb")], None)


def test_the_same_content_twice_is_graded_once_not_a_conflict(tmp_path, monkeypatch):
    batch = fx.planted_conflict(tmp_path)
    with collected(batch, monkeypatch) as collection:
        erin = sorted((r for r in collection.records if r.student == "erin"), key=lambda r: r.where)
        assert [r.same_as for r in erin] == ["", "inbox/erin_01 (1).ipynb"]
        assert [r.status for r in erin] == ["ok", "ok"]


# -- files that must not be followed or read -----------------------------------------------------------


def test_links_pipes_and_big_files_are_refused_as_rows(tmp_path, monkeypatch):
    src = tmp_path / "class"
    fx._write(src / "alice" / "01_neurons.ipynb", fx.notebook("01", False))
    (src / "bob").mkdir()
    (src / "bob" / "01_neurons.ipynb").symlink_to("/dev/zero")
    (src / "carol").mkdir()
    (src / "carol" / "01_neurons.ipynb").symlink_to(fx.ROOT / "solutions" / "01_neurons.ipynb")
    (src / "dan").mkdir()
    os.mkfifo(src / "dan" / "01_neurons.ipynb")
    (src / "eve").symlink_to(fx.ROOT / "solutions")  # a whole folder linked: never searched
    fx._write(src / "fay" / "01_neurons.ipynb", b"{" + b" " * 40_000 + b"}")
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 30_000)  # alice's notebook is 17 kB
    monkeypatch.chdir(tmp_path)
    with collect([Path("class")], None) as collection:
        found = {r.student: r for r in collection.records}
        assert sorted(found) == ["alice", "bob", "carol", "dan", "fay"]
        assert found["alice"].status == "ok"
        for student in ("bob", "carol"):
            assert "symbolic link" in found[student].problems["invalid"] and found[student].file is None
        assert "not a regular file" in found["dan"].problems["invalid"]
        assert found["fay"].problems["invalid"].startswith("the file is 40002 bytes, over the 30000 bytes a notebook")
        assert collection.skipped == [("class/eve", "a symbolic link to a folder: not followed")]


def test_a_linked_folder_below_given_files_is_not_followed(tmp_path, monkeypatch):
    fx._write(tmp_path / "home" / "u1" / "bpkit-lessons" / "01_neurons.ipynb", fx.notebook("01", False))
    (tmp_path / "home" / "u2").mkdir()
    (tmp_path / "home" / "u2" / "bpkit-lessons").symlink_to(fx.ROOT / "solutions")
    monkeypatch.chdir(tmp_path)
    files = sorted(Path("home").glob("*/bpkit-lessons/01_neurons.ipynb"))
    assert len(files) == 2  # the shell's glob follows the link
    with collect(files, None) as collection:
        found = {r.student: r for r in collection.records}
        assert found["u1"].status == "ok"
        assert "symbolic link" in found["u2"].problems["invalid"] and found["u2"].file is None


def test_private_copies_are_the_bytes_read_and_go_with_close(tmp_path, monkeypatch):
    batch = fx.digits_in_ids(tmp_path)
    collection = collected(batch, monkeypatch)
    workdir = collection.workdir
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    record = next(r for r in collection.records if r.path == "ab12_01.ipynb")
    (tmp_path / "digits" / "ab12_01.ipynb").write_bytes(b"changed after collecting")
    assert record.file.read_bytes() == fx.notebook("01", True)
    assert record.metadata_lesson == "01"
    collection.close()
    assert not workdir.exists()


# -- zips ---------------------------------------------------------------------------------------------


def _raw_zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=fx.ON_TIME)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the zip is made with a repeated name on purpose
def test_unsafe_zip_entries_are_refused_and_nothing_is_written_outside(tmp_path, monkeypatch):
    nb = fx.notebook("01", False)
    _raw_zip(
        tmp_path / "lesson01.zip",
        [
            ("../evil_01.ipynb", nb, 0o100644),
            ("/abs_01.ipynb", nb, 0o100644),
            ("link_01.ipynb", b"/etc/passwd", 0o120777),
            ("ok_01.ipynb", nb, 0o100644),
            ("ok_01.ipynb", nb, 0o100644),
            ("C:/win_01.ipynb", nb, 0o100644),
            ("__MACOSX/._ok_01.ipynb", b"x", 0o100644),
            ("notes/../../x.csv", b"x", 0o100644),
        ],
    )
    monkeypatch.chdir(tmp_path)
    with collect([Path("lesson01.zip")], None) as collection:
        statuses = sorted((r.path, r.status) for r in collection.records)
        assert statuses == [
            ("../evil_01.ipynb", "invalid"),
            ("/abs_01.ipynb", "invalid"),
            ("C:/win_01.ipynb", "invalid"),
            ("link_01.ipynb", "invalid"),
            ("ok_01.ipynb", "invalid"),
            ("ok_01.ipynb", "ok"),
        ]
        assert "symbolic link" in next(r for r in collection.records if r.path == "link_01.ipynb").problems["invalid"]
        assert [where for where, _ in collection.skipped] == ["lesson01.zip/notes/../../x.csv"]
        written = {p.name for p in collection.workdir.rglob("*") if p.is_file()} - {".lock"}  # the run folder's lock
        assert written == {"ok_01.ipynb", "00001.ipynb"}
    assert not list(tmp_path.parent.glob("evil_01.ipynb")) and not Path("/abs_01.ipynb").exists()


def test_a_zip_bomb_and_a_non_zip_are_one_clear_row(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a_01.ipynb", b"\0" * 3_000_000)  # 3 MB that compress to 3 KB
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    monkeypatch.setattr(intake, "MAX_ZIP_BYTES", 2_000_000)
    monkeypatch.chdir(tmp_path)
    with collect([Path("bomb.zip"), Path("fake.zip")], None) as collection:
        bomb, fake = collection.records
        assert (bomb.where, bomb.status) == ("bomb.zip", "invalid") and "zip bomb" in bomb.problems["invalid"]
        assert (fake.where, fake.status) == ("fake.zip", "invalid") and "not a readable zip" in fake.problems["invalid"]
        assert not list(collection.workdir.rglob("*.ipynb"))
    monkeypatch.setattr(intake, "MAX_ZIP_ENTRIES", 0)
    with collect([Path("bomb.zip")], None) as collection:
        assert "entries, over 0" in collection.records[0].problems["invalid"]


def test_a_zip_entry_time_in_the_extended_field_is_utc(tmp_path):
    info = zipfile.ZipInfo("a_01.ipynb", date_time=(2000, 1, 1, 0, 0, 0))
    stamp = int(datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc).timestamp())
    info.extra = (0x5455).to_bytes(2, "little") + (5).to_bytes(2, "little") + b"\x01" + stamp.to_bytes(4, "little")
    assert times.zip_time(info)[0] == datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
    assert times.zip_time(zipfile.ZipInfo("x", date_time=(1980, 0, 0, 0, 0, 0)))[0] is None


# -- times, due, penalties ----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -1e20, 1e20, -86400.0, 299_000_000_000.0])
def test_no_timestamp_crashes(seconds):
    moment, what, why = times.checked_time(seconds, "file time")
    assert moment is None and why.startswith("file time")


def test_absurd_file_times_leave_lateness_unknown(tmp_path, monkeypatch):
    path = fx._write(tmp_path / "in" / "ann_01.ipynb", fx.notebook("01", False))
    year_11476 = 299_000_000_000
    os.utime(path, ns=(year_11476 * 10**9, year_11476 * 10**9))
    fx._write(tmp_path / "in" / "bo_01.ipynb", fx.notebook("01", True))
    os.utime(tmp_path / "in" / "bo_01.ipynb", (-86400, -86400))
    fx._write(tmp_path / "in" / "cy_01.ipynb", edited("01"))
    os.utime(tmp_path / "in" / "cy_01.ipynb", (datetime(2026, 11, 3, tzinfo=timezone.utc).timestamp(),) * 2)
    monkeypatch.chdir(tmp_path)
    with collect([Path("in")], None, due=fx.DUE) as collection:
        found = {r.student: r for r in collection.records}
        assert not found["ann"].late and any("lateness unknown" in n for n in found["ann"].notes)
        assert not found["bo"].late and any("lateness unknown" in n for n in found["bo"].notes)
        assert (found["cy"].late, found["cy"].days_late) == (True, 2) and "file time" in found["cy"].late_from
    with collect([Path("in")], None) as collection:  # no --due: plain files are never late
        assert not any(r.late or r.notes for r in collection.records)


def edited(lesson: str) -> bytes:
    return fx.edited(lesson, False, "mine")


def test_a_dos_zip_time_is_local_time(monkeypatch):
    import time

    info = zipfile.ZipInfo("a_01.ipynb", date_time=(2026, 11, 2, 6, 0, 0))
    for zone, hour in (("UTC", 6), ("Etc/GMT-2", 4)):  # GMT-2 is two hours ahead of UTC (POSIX sign)
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        assert times.zip_time(info)[0] == datetime(2026, 11, 2, hour, 0, tzinfo=timezone.utc)
    monkeypatch.undo()
    time.tzset()


def test_parse_due():
    assert parse_due("2026-12-01T23:59Z") == datetime(2026, 12, 1, 23, 59, tzinfo=timezone.utc)
    with pytest.raises(CollectionError, match="not a date and time"):
        parse_due("next friday")


@pytest.mark.parametrize(
    "text, penalty",
    [("10", LatePenalty(10.0, 100.0)), ("10:50", LatePenalty(10.0, 50.0)), (" 2.5:5 ", LatePenalty(2.5, 5.0))],
)
def test_parse_late_penalty(text, penalty):
    assert parse_late_penalty(text) == penalty


@pytest.mark.parametrize("text", ["", "ten", "10:50:1", "-5", "150", "nan", "10:inf", "10:"])
def test_parse_late_penalty_refuses(text):
    with pytest.raises(CollectionError, match="--late-penalty"):
        parse_late_penalty(text)


def test_late_penalty_applies_per_started_day_up_to_its_maximum():
    penalty = LatePenalty(10.0, 25.0)
    assert penalty.apply(90.0, 0) == 90.0
    assert penalty.apply(90.0, 1) == 80.0
    assert penalty.apply(90.0, 2) == 70.0
    assert penalty.apply(90.0, 7) == 65.0  # capped at 25 points
    assert penalty.apply(5.0, 3) == 0.0  # never below 0
    assert penalty.apply(90.0, None) == 80.0  # late by a marker only: one day


# -- roster -------------------------------------------------------------------------------------------


def test_canvas_gradebook_export_is_a_roster(tmp_path):
    batch = fx.canvas_zip(tmp_path)
    roster = read_roster(batch.roster)
    assert [(s.id, s.name, s.canvas_id) for s in roster.students] == [
        ("asmith", "Smith, Alice", "101"),
        ("bjones", "Jones, Bob", "102"),
        ("S-3", "Lee, Carol", "103"),
        ("dnguyen", "Nguyen, Dan", "104"),
    ]
    assert roster.by_name("Alice Smith")[0].id == "asmith"


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,email\nann,a@x\n", "header line"),
        ("id,name\nann,Ann\nANN,Ann B\n", "appears twice"),
        ("id,name\n,Ann\n", "empty student id"),
        ("id,name\n../x,Ann\n", "slash"),
        ("id,name,canvas_id\nann,Ann,12a\n", "not a number"),
        ("id,name,canvas_id\nann,Ann,12\nbo,Bo,12\n", "canvas_id 12 is given to both"),
        ("id,name\nann,Smith, Ann\n", "needs quotes"),
        ('Student,ID,SIS User ID,SIS Login ID,Section\n"Smith, Ann",5,,,A\n', "no SIS Login ID"),
        ('Student,ID,Section\n"Smith, Ann",5,A\n', "neither `SIS Login ID`"),
        ("", "empty"),
    ],
)
def test_roster_errors_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(RosterError, match=message):
        read_roster(path)


def test_roster_that_is_not_utf8_or_not_there(tmp_path):
    (tmp_path / "latin.csv").write_bytes("id,name\nann,Zoë\n".encode("latin-1"))
    with pytest.raises(RosterError, match="CSV UTF-8"):
        read_roster(tmp_path / "latin.csv")
    with pytest.raises(RosterError, match="cannot read"):
        read_roster(tmp_path / "none.csv")


def test_two_roster_students_of_one_name_are_not_guessed(tmp_path, monkeypatch):
    roster_path = tmp_path / "r.csv"
    roster_path.write_text("id,name\nm01,Alice Smith\nm09,Alice Smith\nm02,Bob Jones\nm03,Chloé Durand\n")
    batch = fx.moodle_zip(tmp_path)
    monkeypatch.chdir(tmp_path)
    with collect(batch.sources, read_roster(roster_path)) as collection:
        alice = next(r for r in collection.records if r.name == "Alice Smith")
        assert "2 roster students are named 'Alice Smith'" in alice.problems["not-in-roster"]


# -- the plan -----------------------------------------------------------------------------------------


def test_plan_shows_file_student_lesson_and_notes(tmp_path, monkeypatch):
    batch = fx.canvas_zip(tmp_path)
    with collected(batch, monkeypatch) as collection:
        plan = format_plan(collection)
    late_line = next(line for line in plan.splitlines() if "jonesbob_late" in line)
    assert "bjones (Jones, Bob) by Canvas user id 102" in late_line and "late, 2 days" in late_line
    assert (
        "4 notebooks, 4 students, lessons 01: 4 to grade, 0 in conflict, 0 invalid, 0 the same as another, "
        "0 not in the roster, 1 late" in plan
    )
    assert "source submissions.zip: read as canvas" in plan


def test_plan_keeps_names_as_data_but_not_terminal_controls(tmp_path, monkeypatch):
    fx._write(tmp_path / "in" / "=HYPERLINK(x)_01.ipynb", fx.notebook("01", False))
    fx._write(tmp_path / "in" / "eve\u202egnp._01.ipynb", fx.notebook("01", True))
    monkeypatch.chdir(tmp_path)
    with collect([Path("in")], None) as collection:
        assert "=HYPERLINK(x)" in {r.student for r in collection.records}
        plan = format_plan(collection)
    assert "=HYPERLINK(x)" in plan and "\u202e" not in plan and "eve?gnp" in plan


# -- records and the plan ------------------------------------------------------------------------------


def test_conflicts_are_marked_between_different_files_and_a_repeat_is_graded_once():
    def record(path: str, digest: str) -> records.HandIn:
        return records.HandIn("in", path, "files", student="ann", lesson="01", digest=digest)

    first, same, other = record("a_01.ipynb", "d1"), record("b_01.ipynb", "d1"), record("c_01.ipynb", "d2")
    records.mark_conflicts([first, same, other])
    assert (first.status, same.status, other.status) == (records.CONFLICT, "ok", records.CONFLICT)
    assert same.same_as == "in/a_01.ipynb" and "c_01.ipynb" in first.problems[records.CONFLICT]
    assert "--student ann" in other.problems[records.CONFLICT]


def test_the_plan_shows_no_control_or_direction_characters():
    assert plan.shown("evil\u202eburi.ipynb\x1b[31m", 100) == "evil?buri.ipynb?[31m"
    assert plan.shown("x" * 50, 10) == "xxxxxxx..."


def test_the_copies_of_a_killed_run_are_removed_by_the_next_collection(tmp_path, monkeypatch):
    """A run killed with SIGKILL cannot remove its private copies: the next run does (issue 20's stall run)."""
    import subprocess
    import sys
    import tempfile

    (tmp_path / "class").mkdir()
    fx._write(tmp_path / "class" / "ann_01.ipynb", fx.notebook("01", True))
    temp = tmp_path / "tmp"
    temp.mkdir()
    code = (
        "import os, sys\nfrom pathlib import Path\nfrom bpkit.grading.identity import collect\n"
        "print(collect([Path(sys.argv[1])], None).workdir, flush=True)\nos._exit(0)  # no clean-up, as if killed"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "class")],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
        cwd=fx.ROOT,
        check=True,
    )
    left = Path(done.stdout.strip())
    assert left.is_relative_to(temp) and any(left.rglob("*.ipynb"))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with collect([tmp_path / "class"], None) as collection:
        assert not left.exists() and collection.workdir.exists()
    assert not collection.records[0].file.exists()
