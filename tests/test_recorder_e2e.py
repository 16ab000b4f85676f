"""The recorder in real `chaos run`s, in whichever venv runs pytest (both generations in CI).

Each test runs an experiment from tests/experiments/ in a temporary working
directory and checks the recorded events against what chaoslib did: counts,
order, statuses, ids shared with the journal reader.
"""
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from chaosreplay.events import Event, activity_id, mark_id, phase_id, run_id_for
from chaosreplay.journal import EXTENSION_NAME, journal_to_run, read_journal, read_side_file, recorded_extension

from .conftest import REPO

pytestmark = pytest.mark.e2e

CHAOS = os.path.join(os.path.dirname(sys.executable), "chaos")
CHAOS_REPLAY = os.path.join(os.path.dirname(sys.executable), "chaos-replay")
EXPERIMENTS = os.path.join(REPO, "tests", "experiments")
CONTROL_NAME = "chaostoolkit-replay"
SECRET = "s3cr3t-token-value"  # declared in basic.json's configuration


def _control(arguments=None):
    provider = {"type": "python", "module": "chaosreplay.controls.recorder"}
    if arguments:
        provider["arguments"] = arguments
    return {"provider": provider}


def _prepare(workdir, experiment_name, placements, arguments=None):
    """Write the experiment (and settings/control files) for `placements`; return chaos argv."""
    with open(os.path.join(EXPERIMENTS, experiment_name), encoding="utf-8") as handle:
        experiment = json.load(handle)
    global_argv, run_argv = [], []
    if "experiment" in placements:
        experiment["controls"] = [dict(_control(arguments), name=CONTROL_NAME)]
        if "not-automatic" in placements:
            # The cheaper declaration the README recommends: chaoslib skips the
            # control around each activity, the event registry still sees all.
            experiment["controls"][0]["automatic"] = False
    if "settings" in placements:
        settings = os.path.join(workdir, "settings.yaml")
        with open(settings, "w", encoding="utf-8") as handle:
            json.dump({"controls": {CONTROL_NAME: _control(arguments)}}, handle)
        global_argv = ["--settings", settings]
    if "control-file" in placements:
        control_file = os.path.join(workdir, "controls.json")
        with open(control_file, "w", encoding="utf-8") as handle:
            json.dump({CONTROL_NAME: _control(arguments)}, handle)
        run_argv = ["--control-file", control_file]
    path = os.path.join(workdir, "experiment.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(experiment, handle)
    return experiment, [CHAOS, "--no-version-check", *global_argv, "run", path,
                        "--journal-path", os.path.join(workdir, "journal.json"), *run_argv]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [EXPERIMENTS, env.get("PYTHONPATH")]))
    return env


def _run(workdir, experiment_name, placements=("experiment",), extra=(), arguments=None,
         expect_code=0, output=None):
    """Run the experiment; `output`, a list, receives what chaos printed."""
    experiment, argv = _prepare(str(workdir), experiment_name, placements, arguments)
    done = subprocess.run([*argv, *extra], cwd=workdir, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == expect_code, done.stdout[-3000:] + done.stderr[-3000:]
    if output is not None:
        output.append(done.stdout + done.stderr)
    with open(os.path.join(workdir, "journal.json"), encoding="utf-8") as handle:
        journal = json.load(handle)
    return experiment, journal


def _recorded(journal):
    entries = [e for e in journal.get("extensions", []) if e.get("name") == EXTENSION_NAME]
    assert len(entries) == 1, "one journal entry per run, whatever the placement"
    return entries[0], [Event.from_dict(record) for record in entries[0]["events"]]


def _side_file_lines(workdir):
    paths = glob.glob(os.path.join(str(workdir), "*.events.jsonl"))
    assert len(paths) == 1, paths
    with open(paths[0], encoding="utf-8") as handle:
        return paths[0], [json.loads(line) for line in handle]


def _of(events, kind, phase=None):
    return [e for e in events if e.kind == kind and (phase is None or e.phase == phase)]


def _without_extension(journal):
    stripped = dict(journal)
    stripped["extensions"] = [e for e in journal["extensions"] if e.get("name") != EXTENSION_NAME]
    return journal_to_run(stripped, "stripped")


def _assert_inside(inner, outer):
    assert outer.start <= inner.start and inner.end <= outer.end, (inner, outer)


def test_basic_run_records_every_event_once_in_order(tmp_path):
    (tmp_path / "marker").write_text("")
    experiment, journal = _run(tmp_path, "basic.json")
    entry, events = _recorded(journal)

    run_id = run_id_for(journal["experiment"]["title"], journal["start"], journal["node"])
    assert entry["run_id"] == run_id and entry["version"] == 1
    assert Counter(e.kind for e in events) == {"experiment": 1, "phase": 4, "activity": 10, "mark": 1}
    phases = _of(events, "phase")
    assert [p.phase for p in phases] == ["before", "method", "after", "rollbacks"]
    assert [p.status for p in phases] == ["succeeded", "failed", "succeeded", "succeeded"]
    assert all(a.end <= b.start for a, b in zip(phases, phases[1:])), "phases do not overlap"
    for phase in phases:
        for activity in _of(events, "activity", phase.phase):
            _assert_inside(activity, phase)

    method = _of(events, "activity", "method")
    assert [a.name for a in method] == ["touch", "traffic-peak", "touch", "explode", "check"]
    assert [a.id for a in method if a.name == "touch"] == [
        activity_id(run_id, "method", "touch", 0), activity_id(run_id, "method", "touch", 1)]
    assert [a.status for a in method] == ["succeeded"] * 3 + ["failed", "succeeded"]
    assert "failed on purpose" in method[3].fields["error"]
    assert all(a.fields["duration"] == pytest.approx(a.duration) for a in method)
    probes = _of(events, "activity", "before") + _of(events, "activity", "after")
    assert [p.fields.get("tolerance_met") for p in probes] == [True] * 4
    assert all("tolerance_met" not in a.fields for a in method)

    (run,) = _of(events, "experiment")
    assert run.status == "completed" and run.end is not None
    assert dict(run.fields) == {"deviated": False, "steady_state_before_met": True,
                                "steady_state_after_met": True, "activities": 10,
                                "failed_activities": 1}

    (mark,) = _of(events, "mark")
    assert mark.id == mark_id(run_id, "traffic peak", 0)
    assert (mark.phase, dict(mark.fields), dict(mark.tags)) == (
        "method", {"rps": 1200, "zone": "eu-west-1"}, {"source": "test"})
    # A mark is an instant, done when stamped: `succeeded`, ending where it starts (README).
    assert (mark.status, mark.end) == ("succeeded", mark.start)
    _assert_inside(mark, method[1])
    assert journal["run"][1]["output"]["id"] == mark.id, "mark returns the recorded event"

    # chaostoolkit itself adds "dry"; everything else is as the user wrote it.
    assert {k: v for k, v in journal["experiment"].items() if k != "dry"} == experiment
    assert SECRET not in json.dumps(entry)


def test_side_file_has_each_event_at_start_and_end_and_replays_like_the_journal(tmp_path):
    (tmp_path / "marker").write_text("")
    _, journal = _run(tmp_path, "basic.json")
    entry, events = _recorded(journal)
    path, lines = _side_file_lines(tmp_path)

    assert os.path.basename(path) == f"chaostoolkit-replay-{entry['run_id']}.events.jsonl"
    assert lines[0] == {EXTENSION_NAME: "side-file", "version": 1, "run_id": entry["run_id"],
                        "experiment": journal["experiment"]["title"], "start": journal["start"],
                        "node": journal["node"]}
    per_id = Counter(line["id"] for line in lines[1:])
    kinds = {e.id: e.kind for e in events}
    assert set(per_id) == set(kinds)
    # Probes of a hypothesis come back once more when their tolerance is known.
    expected = {e.id: 1 if e.kind == "mark" else 3 if "tolerance_met" in e.fields else 2
                for e in events}
    assert per_id == expected
    first_lines = {}
    for line in lines[1:]:
        first_lines.setdefault(line["id"], line)
    assert all(line["end"] is None for line in first_lines.values() if line["kind"] != "mark"), \
        "stamped when it starts (a mark is an instant, ended as it starts)"
    side = {e.id: e.to_dict() for e in read_side_file(path).events}
    assert side == {e.id: e.to_dict() for e in events}
    assert SECRET not in open(path, encoding="utf-8").read()


def test_journal_with_and_without_extension_give_the_same_activities(tmp_path):
    (tmp_path / "marker").write_text("")
    _run(tmp_path, "basic.json")
    with_extension = read_journal(str(tmp_path / "journal.json"))
    with open(tmp_path / "journal.json", encoding="utf-8") as handle:
        journal = json.load(handle)
    without = _without_extension(journal)

    def activities(run):
        return [(e.id, e.phase, e.name, e.status) for e in run.events if e.kind == "activity"]

    assert with_extension.run_id == without.run_id
    assert activities(with_extension) == activities(without)
    _, recorded = _recorded(journal)
    assert sorted(a[0] for a in activities(without)) == sorted(e.id for e in _of(recorded, "activity"))
    assert [e.name for e in with_extension.events if e.kind == "mark"] == ["traffic peak"]


def test_deviated_run(tmp_path):
    (tmp_path / "marker").write_text("")
    _, journal = _run(tmp_path, "deviated.json", expect_code=1)
    assert journal["deviated"] is True
    _, events = _recorded(journal)
    (run,) = _of(events, "experiment")
    assert (run.status, run.fields["deviated"], run.fields["steady_state_before_met"],
            run.fields["steady_state_after_met"]) == ("completed", True, True, False)
    after = {p.phase: p for p in _of(events, "phase")}
    assert (after["before"].status, after["after"].status) == ("succeeded", "failed")
    assert after["after"].fields["steady_state_met"] is False
    assert [p.fields["tolerance_met"] for p in _of(events, "activity", "after")] == [False]
    assert [p.fields["tolerance_met"] for p in _of(events, "activity", "before")] == [True]
    assert [(a.name, a.status) for a in _of(events, "activity", "rollbacks")] == [
        ("restore-marker", "succeeded")]


def test_continuous_hypothesis_with_background_activities(tmp_path):
    _, journal = _run(tmp_path, "continuous.json",
                      extra=["--hypothesis-strategy", "continuously", "--hypothesis-frequency", "1"])
    entry, events = _recorded(journal)
    run_id = entry["run_id"]
    iterations = len(journal["steady_states"]["during"])
    assert iterations >= 1

    during = _of(events, "phase", "during")
    assert [p.fields["iteration"] for p in during] == list(range(1, iterations + 1))
    assert [p.id for p in during] == [phase_id(run_id, "during", n) for n in range(1, iterations + 1)]
    assert all(p.status == "succeeded" and p.fields["steady_state_met"] for p in during)
    probes = _of(events, "activity", "during")
    assert [p.id for p in probes] == [
        activity_id(run_id, "during", "always-true", n) for n in range(iterations)]
    for phase, probe in zip(during, probes):
        _assert_inside(probe, phase)
        assert probe.fields["tolerance_met"] is True

    background = [a for a in _of(events, "activity", "method") if a.fields.get("background")]
    assert [a.name for a in background] == ["background-sleep"] * 2
    assert {a.id for a in background} == {activity_id(run_id, "method", "background-sleep", n)
                                         for n in (0, 1)}
    first, second = background
    assert first.start < second.end and second.start < first.end, "they ran side by side"
    assert all(a.status == "succeeded" and a.duration >= 1.4 for a in background)
    (method,) = _of(events, "phase", "method")
    for activity in _of(events, "activity", "method"):
        _assert_inside(activity, method)
    assert [p.phase for p in _of(events, "phase") if p.phase != "during"] == ["before", "method", "after"]

    derived = _without_extension(journal)
    assert sorted(e.id for e in derived.events if e.kind == "activity") == sorted(
        e.id for e in _of(events, "activity"))


def test_aborted_run(tmp_path):
    _, journal = _run(tmp_path, "aborted.json", extra=["--no-validation"], expect_code=1)
    assert journal["status"] == "aborted"
    _, events = _recorded(journal)
    (run,) = _of(events, "experiment")
    assert run.status == "aborted"
    assert [(a.name, a.status) for a in _of(events, "activity")] == [
        ("first", "succeeded"), ("missing-func", "aborted"), ("undo", "succeeded")]
    assert not _of(events, "interruption")
    derived = read_journal(str(tmp_path / "journal.json"))
    assert [e.status for e in derived.events if e.kind == "activity"] == [
        "succeeded", "aborted", "succeeded"]


def _kill_group(pid):
    """SIGKILL what is left of the run's process group; it may all be gone already."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _start_long_run(tmp_path):
    _, argv = _prepare(str(tmp_path), "long-action.json", ("experiment",),
                       arguments={"events_path": "events.jsonl"})
    process = subprocess.Popen(argv, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    side_file = tmp_path / "events.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if side_file.exists() and any(
                json.loads(line).get("name") == "long-sleep"
                for line in side_file.read_text(encoding="utf-8").splitlines()[1:]):
            return process, str(side_file)
        assert process.poll() is None, "chaos ended before the long action started"
        time.sleep(0.05)
    process.kill()
    pytest.fail("the long action never started")


def test_sigterm_mid_run_records_the_interruption(tmp_path):
    process, _ = _start_long_run(tmp_path)
    try:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 1
    finally:
        _kill_group(process.pid)  # the orphaned `sleep`
    with open(tmp_path / "journal.json", encoding="utf-8") as handle:
        journal = json.load(handle)
    assert journal["status"] == "interrupted"
    _, events = _recorded(journal)
    assert [(a.phase, a.name, a.status) for a in _of(events, "activity")] == [
        ("before", "always-true", "succeeded"), ("method", "quick", "succeeded"),
        ("method", "long-sleep", "interrupted")]
    (interruption,) = _of(events, "interruption")
    assert interruption.fields["signal"] == "SIGTERM"
    assert "SIGTERM" in interruption.fields["reason"]
    long_sleep = _of(events, "activity", "method")[-1]
    assert long_sleep.start <= interruption.start and long_sleep.duration < 30
    (run,) = _of(events, "experiment")
    assert run.status == "interrupted"
    assert not _of(events, "activity", "rollbacks"), "chaoslib skips rollbacks when interrupted"
    replayed = read_journal(str(tmp_path / "journal.json"))
    assert [e.fields.get("signal") for e in replayed.events if e.kind == "interruption"] == ["SIGTERM"]


def test_sigkill_mid_run_leaves_a_replayable_side_file(tmp_path):
    process, side_file = _start_long_run(tmp_path)
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        _kill_group(process.pid)
    assert not (tmp_path / "journal.json").exists(), "a killed run writes no journal"

    run = read_side_file(side_file)
    summary = [(e.kind, e.phase, e.name, e.status, e.end is not None) for e in run.events]
    # The side file ends before the run did: the run, its phase and the activity cut
    # short are interrupted at the last stamp (the long action's start).
    assert summary == [
        ("experiment", None, "recorder long action: to be interrupted or killed mid-run", "interrupted", True),
        ("phase", "before", "steady-state hypothesis before", "succeeded", True),
        ("activity", "before", "always-true", "succeeded", True),
        ("phase", "method", "method", "interrupted", True),
        ("activity", "method", "quick", "succeeded", True),
        ("activity", "method", "long-sleep", "interrupted", True),
        ("interruption", None, "interruption", "interrupted", False),
    ]
    long_sleep = run.events[-2]
    assert run.experiment.end == long_sleep.end == long_sleep.start == run.events[-1].start
    probe = next(e for e in run.events if e.kind == "activity" and e.phase == "before")
    assert probe.fields["tolerance_met"] is True

    shown = subprocess.run([CHAOS_REPLAY, "--format", "json", side_file], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "long-sleep" in shown.stdout and run.run_id in shown.stdout


@pytest.mark.parametrize("placements", [
    ("experiment", "not-automatic"),
    ("settings",),
    ("control-file",),
    ("experiment", "settings"),
    ("experiment", "settings", "control-file"),
])
def test_every_placement_records_each_activity_exactly_once(tmp_path, placements):
    (tmp_path / "marker").write_text("")
    _, journal = _run(tmp_path, "basic.json", placements=placements)
    _, events = _recorded(journal)
    derived = _without_extension(journal)
    derived_ids = [e.id for e in derived.events if e.kind == "activity"]
    recorded_ids = [e.id for e in _of(events, "activity")]
    assert len(recorded_ids) == len(set(recorded_ids)) == 10
    assert sorted(recorded_ids) == sorted(derived_ids)
    assert [p.phase for p in _of(events, "phase")] == ["before", "method", "after", "rollbacks"]
    assert len(_of(events, "mark")) == 1
    _, lines = _side_file_lines(tmp_path)
    assert Counter(line["id"] for line in lines[1:] if line["kind"] == "activity") == {
        e.id: 3 if "tolerance_met" in e.fields else 2 for e in _of(events, "activity")}
    assert recorded_extension(journal)["run_id"] == derived.run_id
