"""A run id from a journal or a side file never picks a path: `--openmetrics 'dir/{run_id}.om'`
stays in `dir` whatever the id holds, and never prints a traceback."""
import json
import os

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.sinks.openmetrics import file_name_for
from tests.crafted_journals import with_recorded_run_id, write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)

HOSTILE_IDS = ["../../escaped", "..", ".", "/etc/passwd", "a/../../b", "nul\x00byte", "-rf", "x" * 400,
               "back\\slash", "new\nline", "ü/.."]


def listing(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


@pytest.mark.parametrize("run_id", HOSTILE_IDS)
def test_a_hostile_run_id_from_a_journal_stays_in_the_directory(tmp_path, recorders, run_id):
    journal = write_journal(tmp_path, lambda document: with_recorded_run_id(document, run_id))
    out = tmp_path / "deep" / "dir"
    out.mkdir(parents=True)
    influx = recorders()
    result = CliRunner().invoke(replay, [journal, "--openmetrics", str(out / "{run_id}.om"),
                                         "--influx-url", influx.url, "--influx-database", "chaos"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    [written] = os.listdir(out)
    assert written == file_name_for(run_id) + ".om"
    assert listing(tmp_path) == sorted(["crafted.json", os.path.join("deep", "dir", written)])
    assert (out / written).read_text(encoding="utf-8").endswith("# EOF\n")
    # The run id is data, not a path, for the other targets: it arrives as it is, escaped.
    [write] = influx.requests
    assert write.path == "/write"


def test_a_hostile_run_id_from_a_side_file_stays_in_the_directory(tmp_path):
    side_file = tmp_path / "run.events.jsonl"
    header = {"chaostoolkit-replay": "side-file", "version": 1, "run_id": "../../../side", "title": "t",
              "start": "2024-01-01T00:00:00+00:00", "node": "n"}
    event = {"id": "e1", "run_id": "../../../side", "kind": "experiment", "phase": None, "name": "t",
             "activity_type": None, "start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T00:00:01+00:00",
             "status": "completed", "tags": {}, "fields": {}}
    side_file.write_text(json.dumps(header) + "\n" + json.dumps(event) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(replay, [str(side_file), "--openmetrics", str(out / "{run_id}.om")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert os.listdir(out) == [file_name_for("../../../side") + ".om"]
    assert listing(tmp_path) == sorted(["run.events.jsonl", os.path.join("out", os.listdir(out)[0])])


def test_safe_run_ids_keep_their_name_and_unsafe_ones_never_collide():
    assert file_name_for("631d448454bb923b") == "631d448454bb923b"
    names = {file_name_for(run_id) for run_id in HOSTILE_IDS + ["a_.._b", "a/.//b", ""]}
    assert len(names) == len(HOSTILE_IDS) + 3
    for name in names:
        assert "/" not in name and "\x00" not in name and name not in ("", ".", "..")
        assert not name.startswith(("-", ".")) and len(name) < 200
