"""run.json is written from a typed RunRecord and read back as one: the file format stays what it
was (every committed run.json round-trips byte for byte), older files are read, and a missing,
unknown or ill-typed key behaves as runstore/run_record.py documents."""

import json
from pathlib import Path

import pytest

from runstore.folder import RUN_FILE, RunFolder, read_run, read_run_dict
from runstore.run_record import RunRecord, RunSession

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMITTED = sorted(DOCS.rglob(RUN_FILE))

# a run.json of an early wavebench: no fingerprints, sessions, hardware note or throttle
OLD_RUN = {"schema_version": 1, "wavebench_version": "0.1.0", "run_id": "20250101-000000-abc", "device": "cpu",
           "device_name": "AMD EPYC", "host": "vm", "settings": {"reps": 10}, "settings_hash": "abc",
           "profile_note": None, "environment": {"python": "3.10"}, "status": "complete",
           "started": "2025-01-01T00:00:00+0000", "finished": "2025-01-01T00:10:00+0000", "counts": {"ok": 4}}


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2)


def test_the_committed_runs_are_there():
    assert DOCS / "bench-report" / RUN_FILE in COMMITTED and DOCS / "variants-report" / RUN_FILE in COMMITTED


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(DOCS)))
def test_committed_run_json_round_trips_byte_for_byte(path):
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    ascii_only = dumps(data) == text  # written by RunFolder.write_run; else by hand with "…" kept as is
    record = read_run(path.parent)
    assert isinstance(record, RunRecord) and record.extra == {}
    assert json.dumps(record.to_dict(), indent=2, ensure_ascii=ascii_only) == text
    assert record.run_id == data["run_id"] and record.counts == data["counts"]
    assert all(isinstance(s, RunSession) for s in record.sessions or [])


def test_the_writer_reproduces_a_run_it_wrote(tmp_path):
    source = DOCS / "bench-report" / RUN_FILE
    folder = RunFolder(tmp_path / "run")
    folder.write_run(read_run(source.parent))
    assert (folder.path / RUN_FILE).read_bytes() == source.read_bytes()
    session = folder.read_run().sessions[0]
    assert session.status == "complete" and session.gemm_flops_per_s


def test_an_older_run_json_is_read_and_written_back_as_it_was(tmp_path):
    (tmp_path / RUN_FILE).write_text(dumps(OLD_RUN))
    record = read_run(tmp_path)
    assert (record.status, record.counts, record.profile_note) == ("complete", {"ok": 4}, None)
    assert record.fingerprint is None and record.sessions is None and record.hardware_note is None  # it had none
    assert record.to_dict() == OLD_RUN and list(record.to_dict()) == list(OLD_RUN)  # no key added, none moved
    assert read_run_dict(tmp_path) == OLD_RUN


def test_a_missing_field_is_none_and_written_once_it_has_a_value(tmp_path):
    (tmp_path / RUN_FILE).write_text(dumps(OLD_RUN))
    folder = RunFolder(tmp_path)
    folder.update_run(hardware_note="not a Raspberry Pi")
    written = json.loads((tmp_path / RUN_FILE).read_text())
    assert list(written) == [*OLD_RUN, "hardware_note"]  # the file's keys keep their places
    with pytest.raises(TypeError, match="run.json has no field 'hardwar_note'"):
        folder.update_run(hardwar_note="typo")


def test_unknown_keys_are_kept_in_extra_and_in_place():
    data = {"schema_version": 1, "lock_owner": {"pid": 7}, "run_id": "r", "a_future_field": 12.5}
    record = RunRecord.from_dict(data)
    assert record.extra == {"lock_owner": {"pid": 7}, "a_future_field": 12.5}
    assert list(record.to_dict().items()) == list(data.items())


def test_a_value_of_the_wrong_kind_reads_none_is_kept_and_a_new_value_wins():
    data = {"run_id": "r", "status": 3, "schema_version": True, "sessions": "lost", "counts": {"ok": 1}}
    record = RunRecord.from_dict(data)
    assert (record.status, record.schema_version, record.sessions) == (None, None, None)
    assert record.to_dict() == data  # nothing of the file is lost
    record.status = "complete"
    assert record.to_dict()["status"] == "complete"


def test_a_missing_run_json_is_an_empty_record(tmp_path):
    assert read_run(tmp_path).to_dict() == {} and read_run_dict(tmp_path) == {}
    with pytest.raises(ValueError, match="expected a JSON object"):
        (tmp_path / RUN_FILE).write_text("[1, 2]")
        read_run(tmp_path)


def test_a_new_record_writes_the_notes_as_null_and_its_fields_in_order():
    record = RunRecord(schema_version=1, run_id="r", status="running",
                       sessions=[RunSession(started="t0", status="running")])
    assert record.to_dict() == {"schema_version": 1, "run_id": "r", "profile_note": None, "hardware_note": None,
                                "status": "running", "sessions": [{"started": "t0", "status": "running"}]}
