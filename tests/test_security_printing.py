"""Nothing a journal holds can forge a line of `chaos-replay`'s output or send escape codes.

Run ids, statuses, activity types, names, target labels and errors all go
through the one filter (`chaosreplay.render.printable`) in the timeline, the
delivery lines, `--dry-run` and error messages; the journal is sent for real
to a recording server so that the delivery line is printed too.
"""
import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.delivery import TargetReport, warning_line
from chaosreplay.render import printable
from tests.crafted_journals import with_recorded_run_id, write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)

FORGED = "\n  -> influx http://127.0.0.1:1 db=x: delivered 999 event(s)"
HOSTILE = ["\n", "\r", "\x1b[2J", "\x1b]0;title\x07", "\x85", "\x9b31m", "\u202e", "\u2066", "\u2028", "\x00"]


def hostile_journal(tmp_path):
    def change(document):
        with_recorded_run_id(document, "run" + FORGED + "\x1b[2J\u202e")
        document["status"] = "completed" + FORGED
        document["run"][0]["status"] = "failed\x9b\u2029"
        document["run"][0]["activity"]["type"] = "action" + FORGED + "\x85"
        document["run"][0]["activity"]["name"] = "name\u202e" + FORGED
    return write_journal(tmp_path, change, name="hostile")


def assert_no_forged_line(text):
    for line in text.splitlines():
        assert not line.startswith("  -> influx http://127.0.0.1:1"), line
    for character in HOSTILE:
        assert character not in text.replace("\n", ""), repr(character)


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_hostile_run_id_status_and_type_print_escaped_in_text_output(tmp_path, recorders, extra):
    influx = recorders()
    journal = hostile_journal(tmp_path)
    result = CliRunner().invoke(replay, [journal, "--influx-url", influx.url, "--influx-database", "chaos",
                                         *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert_no_forged_line(result.stdout)
    assert_no_forged_line(result.stderr)
    lines = result.stdout.splitlines()
    # One line per event, a title, a summary, then the target's line(s): nothing more.
    assert lines[0].count(" run ") == 1 and "\\n  -> influx" in lines[0] and "\\x1b[2J\\u202e" in lines[0]
    assert any("[completed\\n  -> influx" in line for line in lines)
    assert any("action\\n  -> influx" in line and "[failed\\x9b\\u2029]" in line for line in lines)
    if extra:
        assert any(line.startswith(f"  -> influx {influx.url} db=chaos: ") for line in lines)
        assert influx.requests == []
    else:
        assert lines[-1] == f"  -> influx {influx.url} db=chaos: delivered 10 event(s)"
        # What was sent is the data as it is (escaped by the line protocol), not the printed form.
        [write] = influx.requests
        assert write.path == "/write" and "completed" in write.text


def test_a_hostile_label_and_server_error_print_escaped(tmp_path, recorders):
    journal = write_journal(tmp_path)
    # A database name is printed in the target's label; the refused port's error is printed too.
    result = CliRunner().invoke(replay, [journal, "--influx-url", "http://127.0.0.1:9", "--influx-retries", "0",
                                         "--influx-database", "db" + FORGED + "\x1b[31m"], catch_exceptions=False)
    assert result.exit_code == 5
    assert_no_forged_line(result.stdout)
    assert "db=db\\n  -> influx" in result.stdout


def test_errors_print_escaped(tmp_path):
    bad = tmp_path / ("bad" + "\x1b[2J\u202e.json")
    bad.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(replay, [str(bad)], catch_exceptions=False)
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("chaos-replay: error: ") and "\\x1b[2J\\u202e" in line
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


def test_the_live_warning_line_is_escaped():
    report = TargetReport(label="influx http://h db=x" + FORGED, delivered=1, undelivered=("e1",),
                          last_error="HTTP 500 \x1b[31mred\u202e" + FORGED)
    line = warning_line(report, "journal.json")
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "delivered 999" in line  # shown, escaped, on the one line


@pytest.mark.parametrize("text, shown", [
    ("plain name", "plain name"), ("a\nb", "a\\nb"), ("\x1b[0m", "\\x1b[0m"), ("\x85", "\\x85"),
    ("\u202eevil", "\\u202eevil"), ("\u2028", "\\u2028"), ("日本 é\xa0x", "日本 é\xa0x"),
])
def test_the_filter(text, shown):
    assert printable(text) == shown
