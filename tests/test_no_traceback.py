"""No traceback, ever: odd inputs give one line on stderr and a documented exit code.

Each case runs the real `chaos-replay` executable in a subprocess (as a user or
CI would), with a good journal next to the odd input where the odd input is a
journal: that one must still be read and shown, once.
"""
import json
import os
import subprocess
import sys

import pytest

from chaosreplay.errors import EXIT_INVALID_CONFIG, EXIT_INVALID_JOURNAL, EXIT_OK
from chaosreplay.journal import read_journal

from .conftest import JOURNALS

CHAOS_REPLAY = os.path.join(os.path.dirname(sys.executable), "chaos-replay")
GOOD = os.path.join(JOURNALS, "generated-basic.json")
GOOD_RUN_ID = read_journal(GOOD).run_id
UNUSED_PORT_URL = "http://127.0.0.1:9"


def _journal(**experiment_changes):
    with open(GOOD, encoding="utf-8") as handle:
        journal = json.load(handle)
    journal["experiment"].update(experiment_changes)
    return journal


def _write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _write_bytes(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _with_influx(database):
    """A journal whose chaosdb `configuration.influxdb` names `database`."""
    return json.dumps(_journal(configuration={"influxdb": {"host": "127.0.0.1", "port": 9, "database": database}}))


def _lone_surrogate_title(directory):
    # json.dumps writes the lone surrogate as the escape "\udc80", as chaostoolkit would.
    return [_write(directory, "surrogate.json", json.dumps(_journal(title="\udc80 cut")))]


def _lone_surrogate_error(directory):
    journal = _journal()
    journal["run"][0]["exception"] = ["Traceback ...", "OSError: bad name \udc80"]
    return [_write(directory, "surrogate-error.json", json.dumps(journal))]


def _integer_of_5000_digits(directory):
    text = json.dumps(_journal()).replace('"deviated": false', '"deviated": 1' + "0" * 5000, 1)
    assert "0" * 5000 in text
    return [_write(directory, "long-integer.json", text)]


def _configuration_nested_1500_deep(directory):
    nested = '{"a": ' * 1500 + "{}" + "}" * 1500
    text = json.dumps(_journal(configuration={"influxdb": {"host": "127.0.0.1"}, "deep": "NESTED"}))
    return [_write(directory, "deep-configuration.json", text.replace('"NESTED"', nested))]


def _env_reference_with_a_list_key(directory):
    return [_write(directory, "env-list.json", _with_influx({"type": "env", "key": ["X"]}))]


def _mark_field_10_to_the_400(directory):
    journal = _journal()
    mark = {"id": "m1", "run_id": GOOD_RUN_ID, "kind": "mark", "name": "peak", "start": journal["start"],
            "end": journal["start"], "status": "succeeded", "phase": "method", "activity_type": None,
            "tags": {}, "fields": {"rps": "HUGE"}}
    journal["extensions"] = [{"name": "chaostoolkit-replay", "version": 1, "run_id": GOOD_RUN_ID, "events": [mark]}]
    text = json.dumps(journal).replace('"HUGE"', "1" + "0" * 400)
    return [_write(directory, "huge-mark.json", text)]


def _influx_database_list(directory):
    return [_write(directory, "database-list.json", _with_influx(["chaos"]))]


def _influx_database_number(directory):
    return [_write(directory, "database-number.json", _with_influx(5))]


def _unresolved_variable(directory):
    return [_write(directory, "unresolved.json", _with_influx("${influx_db}"))]


def _unset_secret_variable(directory):
    journal = _journal(configuration={"influxdb": {"host": "127.0.0.1", "port": 9}},
                       secrets={"influxdb": {"influxdb_password": {"type": "env", "key": "CTK_REPLAY_UNSET_PASSWORD"}}})
    return [_write(directory, "unset-secret.json", json.dumps(journal))]


def _config_file(directory, document):
    return ["--config", _write(directory, "targets.json", json.dumps(document)), GOOD, "--dry-run"]


def _symlink_loop_in_a_directory(directory):
    runs = os.path.join(directory, "runs")
    os.makedirs(os.path.join(runs, "sub"))
    os.symlink(GOOD, os.path.join(runs, "journal.json"))
    os.symlink("loop.json", os.path.join(runs, "loop.json"))  # a link to itself
    os.symlink("..", os.path.join(runs, "sub", "up"))  # a directory loop for `**`
    return runs


def _fifo(directory):
    path = os.path.join(directory, "pipe.json")
    os.mkfifo(path)
    return [path]


ODD_JOURNALS = [
    ("lone-surrogate-in-a-name", _lone_surrogate_title, EXIT_INVALID_JOURNAL, "lone UTF-16 surrogate"),
    ("lone-surrogate-in-an-error", _lone_surrogate_error, EXIT_INVALID_JOURNAL, "fields.error: contains a lone"),
    # Pythons before 3.10.7 (no limit on integer digits) read such a number like any other.
    ("integer-of-5000-digits", _integer_of_5000_digits, EXIT_INVALID_JOURNAL, "more than 4,300 digits")
    if hasattr(sys, "get_int_max_str_digits") else
    ("integer-of-5000-digits", _integer_of_5000_digits, EXIT_OK, ""),
    ("mark-field-10^400", _mark_field_10_to_the_400, EXIT_INVALID_JOURNAL, "fields.rps: number out of range"),
    ("fifo-named-json", _fifo, EXIT_INVALID_JOURNAL, "not a regular file"),
    ("dev-zero", lambda directory: ["/dev/zero"], EXIT_INVALID_JOURNAL, "not a regular file"),
]


@pytest.mark.parametrize("make, code, text", [case[1:] for case in ODD_JOURNALS],
                         ids=[case[0] for case in ODD_JOURNALS])
def test_an_odd_journal_is_one_line_and_the_others_are_still_read(tmp_path, make, code, text):
    completed = _run(*make(str(tmp_path)), GOOD)
    if code == EXIT_OK:
        assert (completed.returncode, completed.stderr) == (EXIT_OK, "")
    else:
        _assert_one_line(completed, code, text)
    assert completed.stdout.count(f"run {GOOD_RUN_ID}") == 1, completed.stdout


ODD_CONFIGURATIONS = [
    ("configuration-nested-1500-deep", lambda d: [*_configuration_nested_1500_deep(d), "--dry-run"],
     (EXIT_INVALID_JOURNAL, EXIT_INVALID_CONFIG), "nested too deeply"),
    ("env-reference-key-is-a-list", lambda d: [*_env_reference_with_a_list_key(d), "--dry-run"],
     EXIT_INVALID_CONFIG, "influx.database: an env reference whose key is not a variable name but an array"),
    ("non-utf8-tag", lambda d: [GOOD, "--tag", b"team:\xff\xfe"], EXIT_INVALID_CONFIG, "--tag"),
    ("influx-timeout-inf", lambda d: [GOOD, "--influx-url", UNUSED_PORT_URL, "--influx-database", "x",
                                      "--influx-timeout", "inf"], EXIT_INVALID_CONFIG, "influx.timeout"),
    ("influx-timeout-nan", lambda d: [GOOD, "--influx-url", UNUSED_PORT_URL, "--influx-database", "x",
                                      "--influx-timeout", "nan"], EXIT_INVALID_CONFIG, "influx.timeout"),
    ("dry-run-to-a-host-with-a-space", lambda d: [GOOD, "--dry-run", "--influx-url", "http://bad host:8086",
                                                  "--influx-database", "x"], EXIT_INVALID_CONFIG, "influx.url"),
    ("influx-database-list", lambda d: [*_influx_database_list(d), "--dry-run"],
     EXIT_INVALID_CONFIG, "influx.database: expected a string"),
    ("influx-database-number", lambda d: [*_influx_database_number(d), "--dry-run"],
     EXIT_INVALID_CONFIG, "influx.database: expected a string"),
    ("config-database-list", lambda d: _config_file(d, {"influx": {"url": UNUSED_PORT_URL, "database": ["x"]}}),
     EXIT_INVALID_CONFIG, "influx.database: expected a string"),
    ("config-section-is-a-url", lambda d: _config_file(d, {"influx": "http://127.0.0.1:8086"}),
     EXIT_INVALID_CONFIG, "configuration influx: expected an object"),
    ("config-unknown-key", lambda d: _config_file(d, {"influx": {"url": UNUSED_PORT_URL, "databse": "x"}}),
     EXIT_INVALID_CONFIG, "configuration influx.databse: unknown key"),
    ("config-unknown-pushgateway-key", lambda d: _config_file(d, {"pushgateway": {"url": UNUSED_PORT_URL, "jobb": "x"}}),
     EXIT_INVALID_CONFIG, "configuration pushgateway.jobb: unknown key"),
    ("config-unknown-section", lambda d: _config_file(d, {"influxdb": {"url": UNUSED_PORT_URL}}),
     EXIT_INVALID_CONFIG, "unknown section 'influxdb'"),
    ("config-not-utf8", lambda d: ["--config", _write_bytes(d, "latin1.json", b'{"influx": {"database": "\xe9"}}'),
                                   GOOD], EXIT_INVALID_CONFIG, "not UTF-8 text"),
    ("var-file-not-utf8", lambda d: [GOOD, "--var-file", _write_bytes(d, "vars.env", b"X=\xe9\n")],
     EXIT_INVALID_CONFIG, "--var-file"),
    ("var-file-nested-100000-deep", lambda d: [GOOD, "--var-file", _write(d, "vars.json", '{"configuration": {"x": '
                                                                         + "[" * 100_000 + "]" * 100_000 + "}}")],
     EXIT_INVALID_CONFIG, "nested too deeply"),
    ("unresolved-variable", lambda d: [*_unresolved_variable(d), "--dry-run"],
     EXIT_INVALID_CONFIG, "influx.database: ${influx_db} is not defined"),
    ("unset-secret-variable", lambda d: [*_unset_secret_variable(d), "--dry-run"],
     EXIT_INVALID_CONFIG, "influx.password: environment variable CTK_REPLAY_UNSET_PASSWORD is not set"),
]


@pytest.mark.parametrize("arguments, code, text", [case[1:] for case in ODD_CONFIGURATIONS],
                         ids=[case[0] for case in ODD_CONFIGURATIONS])
def test_an_odd_configuration_is_one_line_naming_it(tmp_path, arguments, code, text):
    completed = _run(*arguments(str(tmp_path)))
    _assert_one_line(completed, code, text)
    assert "127.0.0.1:9" not in completed.stdout, "nothing planned or sent"


@pytest.mark.parametrize("pattern", ["{runs}", "{runs}/**/*.json"], ids=["directory", "glob"])
def test_a_symlink_loop_is_one_line_and_each_journal_is_read_once(tmp_path, pattern):
    runs = _symlink_loop_in_a_directory(str(tmp_path))
    completed = _run(pattern.format(runs=runs))
    _assert_one_line(completed, EXIT_INVALID_JOURNAL, "loop.json: cannot read: Too many levels of symbolic links")
    assert completed.stdout.count(f"run {GOOD_RUN_ID}") == 1, completed.stdout


def test_a_file_given_twice_is_read_once(tmp_path):
    completed = _run(GOOD, os.path.join(JOURNALS, ".", "generated-basic.json"), GOOD)
    assert (completed.returncode, completed.stderr) == (EXIT_OK, "")
    assert completed.stdout.count(f"run {GOOD_RUN_ID}") == 1


def _run(*arguments):
    # No inherited target configuration: the cases name their own.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("INFLUX_", "GRAFANA_", "PUSHGATEWAY_", "PROMETHEUS_", "OPENMETRICS_"))}
    return subprocess.run([CHAOS_REPLAY, *arguments], capture_output=True, timeout=60, env=env,
                          encoding="utf-8", errors="backslashreplace")


def _assert_one_line(completed, code, text):
    codes = code if isinstance(code, tuple) else (code,)
    assert completed.returncode in codes, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaos-replay: error: "), completed.stderr
    assert text in lines[0]
