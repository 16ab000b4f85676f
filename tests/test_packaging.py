"""The package as a user installs it: unique import names, deprecated aliases, wheel and sdist.

0.1 installed top-level `controls` and `replay`. A team's own `controls/`
package beside its experiments (run with `PYTHONPATH=.`) shadowed ours, and
`chaos run` carried on without recording. These tests run the real `chaos run`
in a directory holding such a package, and install the built wheel and sdist
into fresh virtual environments.
"""
import json
import os
import shutil
import subprocess
import sys
import venv

import pytest

import chaosreplay
from chaosreplay.journal import EXTENSION_NAME, read_journal, recorded_extension

from .conftest import REPO

# Installing and importing is what differs between Pythons: scripts/test runs these on every one.
pytestmark = [pytest.mark.e2e, pytest.mark.every_python]

DEPRECATION = "is deprecated and will be removed in 0.3"
# What a team's own package of controls looks like: importable, and holding no recorder.
USER_CONTROLS = '"""Our team\'s own chaostoolkit controls."""\n'


def _experiment(module: str) -> dict:
    return {
        "version": "1.0.0",
        "title": "packaging: which recorder does chaos run load",
        "description": "One probe and one action, recorded by the control under test.",
        "controls": [{"name": "chaostoolkit-replay", "provider": {"type": "python", "module": module}}],
        "steady-state-hypothesis": {"title": "true", "probes": [
            {"type": "probe", "name": "always-true", "tolerance": 0,
             "provider": {"type": "process", "path": "true"}}]},
        "method": [{"type": "action", "name": "touch", "provider": {"type": "process", "path": "true"}}],
    }


def _chaos_run(bin_dir, workdir, module: str, user_package: bool):
    """`chaos run` in `workdir` with PYTHONPATH=. (the usual layout); returns (journal, output)."""
    if user_package:
        os.makedirs(workdir / "controls")
        (workdir / "controls" / "__init__.py").write_text(USER_CONTROLS)
    (workdir / "experiment.json").write_text(json.dumps(_experiment(module)))
    env = dict(os.environ, PYTHONPATH=".")
    done = subprocess.run(
        [str(bin_dir / "chaos"), "--no-version-check", "run", "experiment.json", "--journal-path", "journal.json"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(workdir / "journal.json", encoding="utf-8") as handle:
        journal = json.load(handle)
    log = (workdir / "chaostoolkit.log").read_text(encoding="utf-8")
    return journal, done.stdout + done.stderr + log


def _recorded_activities(journal_path) -> list:
    extension = recorded_extension(json.load(open(journal_path, encoding="utf-8")))
    assert extension is not None, "the journal holds no chaostoolkit-replay recording"
    return [event["name"] for event in extension["events"] if event["kind"] == "activity"]


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """The wheel and the sdist, built as a release would build them: from a checkout without what a
    working copy gathers (.gitignore's virtualenvs, egg-info, build/), so nothing stale gets in and
    nothing of the working copy is written to, while scripts/test installs other virtualenvs from it."""
    source = tmp_path_factory.mktemp("checkout") / "chaostoolkit-replay"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "*.egg-info", "build", "dist", "__pycache__", ".hypothesis", ".pytest_cache",
        "demo-output", "chaostoolkit.log", "*.events.jsonl"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = sorted(os.listdir(out))
    assert len(names) == 2, names
    return {("wheel" if name.endswith(".whl") else "sdist"): str(out / name) for name in names}


def _install(distribution: str, env_dir) -> "os.PathLike":
    """A fresh virtualenv holding `distribution` and chaostoolkit, as a user installs them."""
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         distribution, "chaostoolkit"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return bin_dir


@pytest.fixture(scope="module")
def wheel_bin(distributions, tmp_path_factory):
    """The bin directory of a virtualenv where the wheel is installed (not editable: as users have it)."""
    return _install(distributions["wheel"], tmp_path_factory.mktemp("wheel") / "venv")


def test_user_controls_package_does_not_shadow_the_recorder(wheel_bin, tmp_path):
    journal, output = _chaos_run(wheel_bin, tmp_path, "chaosreplay.controls.recorder", user_package=True)
    assert _recorded_activities(tmp_path / "journal.json") == ["always-true", "touch", "always-true"]
    assert "Could not find Python module" not in output
    run = read_journal(str(tmp_path / "journal.json"))
    assert run.run_id == recorded_extension(journal)["run_id"]


def test_the_0_1_name_is_what_a_user_package_shadows(wheel_bin, tmp_path):
    """Why the package moved: under the old name chaos run loads the team's package instead."""
    journal, output = _chaos_run(wheel_bin, tmp_path, "controls.recorder", user_package=True)
    assert not any(ext.get("name") == EXTENSION_NAME for ext in journal.get("extensions", []))
    assert "controls.recorder" in output


def test_deprecated_name_records_the_same_and_warns_once(wheel_bin, tmp_path):
    journal, output = _chaos_run(wheel_bin, tmp_path, "controls.recorder", user_package=False)
    assert _recorded_activities(tmp_path / "journal.json") == ["always-true", "touch", "always-true"]
    assert output.count(DEPRECATION) >= 1
    # chaos prints its log to the terminal and to chaostoolkit.log: once in each.
    log = (tmp_path / "chaostoolkit.log").read_text(encoding="utf-8")
    assert log.count(DEPRECATION) == 1
    assert "use 'chaosreplay.controls.recorder'" in log


def test_deprecated_aliases_are_the_new_modules(wheel_bin):
    code = (
        "import logging, chaosreplay.controls.recorder as new, chaosreplay.probes.prometheus as probes\n"
        "import controls.recorder as old, controls.recorder as again, replay.probes.prometheus as old_probes\n"
        "print(old is new, again is new, old_probes is probes)\n"
    )
    done = subprocess.run([str(wheel_bin / "python"), "-c", code], cwd="/", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]
    assert done.stderr.count(DEPRECATION) == 2
    assert "'controls.recorder'" in done.stderr and "'replay.probes.prometheus'" in done.stderr


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_distribution_installs_into_a_clean_virtualenv(distributions, wheel_bin, kind, tmp_path):
    bin_dir = wheel_bin if kind == "wheel" else _install(distributions["sdist"], tmp_path / "venv")
    version = subprocess.run([str(bin_dir / "chaos-replay"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"chaos-replay, version {chaosreplay.__version__}"
    plugin = subprocess.run([str(bin_dir / "chaos"), "replay", "--help"], capture_output=True, text=True)
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.startswith("Usage: chaos replay")
    # The dashboards are package data: they must be in the wheel and the sdist.
    board = subprocess.run([str(bin_dir / "chaos-replay"), "dashboard", "prometheus"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert board.returncode == 0, board.stderr
    assert json.loads(board.stdout)["uid"] == "chaostoolkit-prometheus"
    probe = (
        "import importlib.util as u, importlib.metadata as m\n"
        "print(u.find_spec('influxdb') is None)\n"
        "print(sorted(m.distribution('chaostoolkit-replay').read_text('top_level.txt').split()))\n"
        "print(any(f.name == 'LICENSE' for f in m.distribution('chaostoolkit-replay').files))\n"
        "import chaosreplay.controls.recorder, chaosreplay.probes.prometheus\n"
    )
    checked = subprocess.run([str(bin_dir / "python"), "-c", probe], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    lean, top_level, licensed = checked.stdout.splitlines()
    assert lean == "True", "influxdb is a test dependency only"
    assert top_level == "['chaosreplay', 'controls', 'replay']"
    assert licensed == "True"
