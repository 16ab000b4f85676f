"""`chaos-replay` (and `chaos replay`): a thin click shell over the engine."""
import logging
import os
import shutil
import sys
import textwrap
import threading
import time
from collections import deque
from concurrent.futures import Future
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Deque, Dict, Iterator, List, Mapping, Optional, Tuple

import click

from . import __version__
from .config import Redactor, Settings, load_config_file
from .dashboards.command import WithDashboardSubcommand
from .dashboards.provision import provision_dashboards
from .delivery import DELIVERIES_KEY, sections_from_controls, undelivered_run
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_CONFIG,
    EXIT_OK,
    EXIT_UNDELIVERED,
    ConfigError,
    JournalError,
    NotAJournal,
)
from .events import Run, parse_time
from .journal import cycle_collection_paused, find_inputs, read_runs
from .pipeline import Lane, read_ahead
from .redelivery import read_record, record_path, write_record
from .render import SameLine, delivery_text, plans_lines, printable, run_document_blocks, timeline_blocks
from .sinks import Delivery, Planned, sink_modules
from .sinks.http import Credentials
from .timeline import add_tags, only_actions, shift_to
from .variables import load_variables

logger = logging.getLogger("chaostoolkit_replay")

# Runs read ahead of the sending; runs (and their events) sent and not printed yet: the
# memory a back-fill holds. Enough for the batches and look-up windows to fill before the
# oldest run has to be printed.
READ_AHEAD_RUNS = 16
MAX_PENDING_RUNS = 10_000
MAX_PENDING_EVENTS = 50_000
# Runs read to resolve their targets are kept for sending while they hold fewer events in all.
KEPT_EVENTS = 200_000
# How often the progress line on a terminal is redrawn, at most.
PROGRESS_SECONDS = 0.2

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 2 usage error; 3 invalid journal input; "
    "4 invalid configuration (nothing was sent); 5 some events could not be delivered; "
    "130 interrupted (Ctrl-C)."
)


def _parse_tag(ctx, param, values) -> Dict[str, str]:
    tags = {}
    for value in values:
        key, sep, tag_value = value.partition(":")
        if not sep or not key or not tag_value:
            raise click.BadParameter(f"{value!r} is not key:value", ctx=ctx, param=param)
        tags[key] = tag_value
    return tags


def _parse_shift(ctx, param, value) -> Optional[datetime]:
    if value is None:
        return None
    if value == "now":
        return datetime.now(timezone.utc)
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise click.BadParameter(f"{value!r} is neither 'now' nor an ISO-8601 time", ctx=ctx, param=param)


def _with_sink_options(command):
    for module in reversed(sink_modules()):
        for option in reversed(getattr(module, "OPTIONS", [])):
            command = option(command)
    return command


@click.command(name="replay", cls=WithDashboardSubcommand, epilog=EXIT_CODES_HELP)
@click.argument("journals", nargs=-1, required=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json", "html", "svg"]), default="text",
              show_default=True, help="Timeline as readable text, one JSON document, or a picture of the runs: "
                                      "a self-contained HTML page or an SVG drawing.")
@click.option("--dry-run", is_flag=True, help="Resolve targets and build every request; send nothing, show them.")
@click.option("--shift-to", callback=_parse_shift, metavar="now|ISO-8601",
              help="Re-time each run to start at this instant, keeping every offset.")
@click.option("--tag", "tags", multiple=True, callback=_parse_tag, metavar="KEY:VALUE",
              help="Add a tag to every event (repeatable).")
@click.option("--only-actions", is_flag=True, help="Leave probes out.")
@click.option("--var", "variables", multiple=True, metavar="NAME[:TYPE]=VALUE",
              help="Value for ${NAME} in the journal's configuration (as `chaos run --var`).")
@click.option("--var-file", "var_files", multiple=True, type=click.Path(dir_okay=False),
              help="JSON/YAML file of configuration/secrets values, or a .env file (repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="JSON file of targets (sections influx, grafana, pushgateway, ...).")
@click.option("--only-undelivered", is_flag=True,
              help="Send each target only the events the run's live delivery recorded as missed "
                   "(and an earlier re-send left missing: <journal>.redelivered).")
@click.option("--no-journal-targets", "no_journal_targets", is_flag=True,
              help="Ignore the targets the journal names (its configuration and live controls): send only to "
                   "what the flags, environment and --config name.")
@click.option("--verbose", is_flag=True, help="Log details (each retry and its cause) to stderr.")
@_with_sink_options
@click.version_option(__version__, prog_name="chaos-replay")
def replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
           config_path, only_undelivered, no_journal_targets, verbose, **sink_options):
    """Show a Chaos Toolkit run's timeline and ship its events to dashboards.

    JOURNALS are journal.json files, the recorder's side files (*.events.jsonl),
    directories of them, or globs.
    """
    if shift_to is not None and only_undelivered:
        raise click.UsageError("--shift-to makes new runs (their own ids): --only-undelivered has no "
                               "delivery record for them; use one or the other")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="chaos-replay: %(levelname)s: %(message)s")
    # One command, then exit: runs, lines and requests hold no reference cycle,
    # and the collector would rescan every event of every run again and again
    # (0.4 s of CPU in the benchmark's replay of 100,000 events into InfluxDB).
    try:
        with cycle_collection_paused():
            _replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
                    config_path, only_undelivered, sink_options, journal_targets=not no_journal_targets)
    except KeyboardInterrupt:
        _error("interrupted: the runs being sent may be partly delivered; "
               "replaying them again is safe (the same points and annotations are updated)")
        sys.stdout.flush()
        sys.stderr.flush()
        # Sends in flight wait in worker threads that Python would join before exiting:
        # against a server that does not answer, its timeout times its retries (40 s).
        os._exit(EXIT_INTERRUPTED)


def _replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
            config_path, only_undelivered, sink_options, journal_targets=True):
    exit_code = EXIT_OK
    try:
        _check_tags_are_text(tags)
        config_file = load_config_file(config_path)
        config_vars, env_overrides = load_variables(variables, var_files)
    except ConfigError as error:
        _error(str(error))
        sys.exit(error.exit_code)
    env = {**os.environ, **env_overrides}

    def prepared(path: str, index: int) -> Run:
        runs = read_runs(path)
        if index >= len(runs):
            raise JournalError(path, "", "holds fewer runs than when it was first read")
        return _prepare(runs[index], shift_to, tags, only_actions)

    # Every run's targets are resolved before anything is sent (a configuration error
    # sends nothing). The runs read for that are kept while they are few; the others
    # are read again when their turn comes, so memory does not grow with the input.
    # The last run read that did not fit is kept too until the next input is read: the
    # last input (a single huge journal) is then read once, and at most one run over
    # the budget is held, as when it is read again.
    shared = _SharedTargets()
    resolver = _TargetResolver(sink_options, env, config_file, config_vars, shared, journal_targets)
    inputs: List[_Input] = []
    kept_events = 0
    over_budget: Optional[_Input] = None
    journal_config_failed = False
    for item in find_inputs(journals):
        if over_budget is not None:
            over_budget.run = None  # read again in its turn: freed before reading more
            over_budget = None
        try:
            runs = read_runs(item.path)
        except NotAJournal as error:
            if not item.named:
                # A directory `chaos run` left holds the experiment file next to the journal.
                logger.info(f"{item.path}: not a journal, passed over")
                continue
            _error(str(error))
            exit_code = error.exit_code
            continue
        except JournalError as error:
            _error(str(error))
            exit_code = error.exit_code
            continue
        # A side file may hold several runs (runs sharing one fixed `events_path`).
        for index, run in enumerate(runs):
            run = _prepare(run, shift_to, tags, only_actions)
            targets, redactor = resolver.targets_of(run)
            if targets is None:
                # Its own configuration is wrong (said above): the other runs are still sent.
                journal_config_failed = True
                continue
            keep = kept_events + len(run.events) <= KEPT_EVENTS
            kept_events += len(run.events) if keep else 0
            inputs.append(_Input(item.path, run, targets, index, run.run_id, run.from_side_file, redactor))
            if not keep:
                if over_budget is not None:
                    over_budget.run = None
                over_budget = inputs[-1]
        runs = run = None  # not kept: freed now
    inputs = _without_side_file_twins(inputs)
    if resolver.failed:
        sys.exit(EXIT_INVALID_CONFIG)
    if sink_options.get("grafana_dashboard"):
        lines, saved = provision_dashboards([item.targets for item in inputs], sink_options["grafana_dashboard"],
                                            dry_run)
        for line in lines:
            click.echo(line, err=output_format != "text")
        if not saved and exit_code == EXIT_OK:
            exit_code = EXIT_UNDELIVERED

    def runs() -> Iterator[Tuple[Optional[Run], list, Optional[JournalError]]]:
        for item in inputs:
            # Known secrets are masked before anything is shown or sent.
            if item.run is not None:
                run, item.run = item.run, None  # held from here on by the sending only
                yield run.redacted(item.redactor), item.targets, None
                run = None
                continue
            try:
                yield prepared(item.path, item.index).redacted(item.redactor), item.targets, None
            except JournalError as error:  # changed since it was first read
                yield None, item.targets, error

    undelivered, read_failed = _send_and_show(read_ahead(runs(), READ_AHEAD_RUNS), dry_run, only_undelivered,
                                              output_format, len(inputs), shared.targets)
    # Targets that write once every run is in (the OpenMetrics file of many runs).
    for problem in shared.finish_all():
        _error(problem)
        undelivered = True
    shared.close_all()
    if read_failed and exit_code == EXIT_OK:
        exit_code = read_failed
    if journal_config_failed and exit_code == EXIT_OK:
        exit_code = EXIT_INVALID_CONFIG
    if undelivered and exit_code == EXIT_OK:
        exit_code = EXIT_UNDELIVERED
    sys.exit(exit_code)


class _Input:
    """A run to replay: the file it is read from (and which of the file's runs: a side file
    may hold several), its run if kept, its targets, its id and whether a side file holds it,
    and its known secrets, masked in its events (`Redactor`)."""

    __slots__ = ("path", "run", "targets", "index", "run_id", "from_side_file", "redactor")

    def __init__(self, path: str, run: Optional[Run], targets: list, index: int, run_id: str,
                 from_side_file: bool, redactor: Redactor):
        self.path = path
        self.run = run
        self.targets = targets
        self.index = index
        self.run_id = run_id
        self.from_side_file = from_side_file
        self.redactor = redactor


def _check_tags_are_text(tags: Dict[str, str]) -> None:
    """A `--tag` of bytes that are not UTF-8 arrives with lone surrogates no sink can send."""
    for key, value in tags.items():
        try:
            f"{key}:{value}".encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("--tag", f"{key.encode('utf-8', 'backslashreplace').decode()}: not UTF-8 text") from None


def _without_side_file_twins(inputs: List[_Input]) -> List[_Input]:
    """A side file's run that a journal given too holds is replayed from the journal, the
    fuller record (and the same events: replaying both would only send them twice)."""
    from_journals = {item.run_id for item in inputs if not item.from_side_file}
    kept = []
    for item in inputs:
        if item.from_side_file and item.run_id in from_journals:
            logger.info(f"{item.path}: run {item.run_id} is replayed from its journal")
            continue
        kept.append(item)
    return kept


def _send_and_show(runs, dry_run, only_undelivered, output_format, count, targets) -> Tuple[bool, int]:
    """Send (or plan) each run and print it in input order as its deliveries complete.

    Returns whether some event was not delivered, and the exit code of a journal
    that could not be read again (0 if none).
    """
    undelivered, read_failed = False, 0
    lanes: Dict[str, Lane] = {}
    # (sequence number, run, [(future, lane)]) of the runs sent and not shown yet.
    pending: Deque[Tuple[int, Run, List[Tuple[Future, str]]]] = deque()
    pending_events = 0
    dispatched = 0
    # The sequence number the next run would have had when each lane was last flushed.
    flushed_at: Dict[str, int] = {}
    out = _Output(output_format)
    with _progress(count, dry_run, targets) as progress:

        def show_oldest() -> None:
            nonlocal undelivered, pending_events
            _, run, futures = pending.popleft()
            pending_events -= len(run.events)
            deliveries = [future.result() for future, _ in futures]
            undelivered = undelivered or any(not d.ok for d in deliveries)
            progress.update(run)
            if only_undelivered and not dry_run:
                _record_resent(run, deliveries)
            out.run(run, None, deliveries)

        for run, targets, error in runs:
            if error is not None:
                _error(str(error))
                read_failed = error.exit_code
                continue
            missed = _missed(run) if only_undelivered else None
            if dry_run:
                # Each target's requests are made as they are shown, one target after the other.
                out.run(run, ((target.label, _plan(run, target, missed)) for target in targets), [])
                continue
            futures: List[Tuple[Future, str]] = []
            for server, same_server in _by_server(targets):
                jobs = []
                for target in same_server:
                    part = _part_for(run, target, missed)
                    nothing = None if part is not None else _nothing_to_send(target, missed)
                    jobs.append((target, part, nothing, Future()))
                lane = lanes.get(server)
                if lane is None:
                    lane = lanes[server] = Lane(server)
                lane.put(jobs)
                futures.extend((job[3], server) for job in jobs)
            pending.append((dispatched, run, futures))
            pending_events += len(run.events)
            dispatched += 1
            while pending and all(future.done() for future, _ in pending[0][2]):
                show_oldest()
            while pending and (len(pending) > MAX_PENDING_RUNS or pending_events > MAX_PENDING_EVENTS):
                # The oldest run may wait for a batch or window that only later runs would
                # fill: the lanes still holding it send what they have (once: a lane flushed
                # since the run was handed to it is only busy sending it).
                sequence, _, futures = pending[0]
                for future, server in futures:
                    if not future.done() and flushed_at.get(server, 0) <= sequence:
                        lanes[server].flush()
                        flushed_at[server] = dispatched
                show_oldest()
        for lane in lanes.values():
            lane.end()
        while pending:
            show_oldest()
        for lane in lanes.values():
            lane.join()
    out.close()
    return undelivered, read_failed


def _prepare(run: Run, shift, tags, actions_only) -> Run:
    if actions_only:
        run = only_actions(run)
    run = add_tags(run, tags)
    if shift is not None:
        run = shift_to(run, shift)
    return run


class _Missed(dict):
    """Target label -> what it still misses of a run: the live delivery's record in the
    journal, overlaid with what earlier `--only-undelivered` re-sends left (`resent`)."""

    def __init__(self, recorded: Mapping[str, Any], resent: Mapping[str, Any], record_file: str):
        super().__init__({**recorded, **resent})
        self.resent = set(resent)
        self.record_file = record_file


def _missed(run: Run) -> _Missed:
    recorded = run.extension.get(DELIVERIES_KEY) if isinstance(run.extension, Mapping) else None
    return _Missed(recorded if isinstance(recorded, Mapping) else {}, read_record(run.source, run.run_id),
                   record_path(run.source))


def _record_resent(run: Run, deliveries: List[Delivery]) -> None:
    """Keep what each target that was sent to still misses, for the next `--only-undelivered`."""
    sent = [delivery for delivery in deliveries if not delivery.skipped]
    if not sent:
        return
    problem = write_record(run.source, run.run_id, sent)
    if problem:
        click.echo(f"chaos-replay: warning: what was re-sent could not be recorded ({printable(problem)}): "
                   "the next --only-undelivered sends it again", err=True)


def _part_for(run: Run, target, missed: Optional[Mapping[str, Any]]) -> Optional[Run]:
    """What `target` gets of `run`: all of it (`missed` None), what it still misses, or
    None when it misses nothing."""
    if missed is None:
        return run
    part = undelivered_run(run, target.label, missed)
    if not part.events:
        return None
    # A target that replaces what it holds (a pushgateway group) must get the whole run.
    return run if getattr(target, "needs_whole_run", False) else part


def _nothing_to_send(target, missed: _Missed) -> Delivery:
    if target.label in missed.resent:
        note = f"everything is through (re-sent before, recorded in {missed.record_file}): not sent again"
    else:
        note = "the live delivery missed nothing: not sent again"
    return Delivery(target.label, notes=(note,), skipped=True)


def _plan(run: Run, target, missed: Optional[Mapping[str, Any]]) -> Planned:
    part = _part_for(run, target, missed)
    return Planned(0, ()) if part is None else target.planned(part)


def _by_server(targets) -> List[Tuple[str, list]]:
    """The targets grouped by server URL (else label), in order: two targets of one server
    (two dashboards of one Grafana) are sent to one after the other, as before, since each
    one's look-up sees what the other created."""
    groups: Dict[str, list] = {}
    for target in targets:
        server = getattr(getattr(target, "config", None), "url", None) or target.label
        groups.setdefault(server, []).append(target)
    return list(groups.items())


class _TargetResolver:
    """Every target of every run, before anything is sent; config errors all reported
    (`failed` says whether there was one).

    Precedence: flags, environment, --config, the journal's live controls, then
    its configuration (chaosdb keys) and secrets; without `journal_targets` only the
    first three. Each run also gets its known secrets: the journal's and the
    credentials of its targets.
    """

    def __init__(self, sink_options, env, config_file, config_vars, shared, journal_targets=True):
        self.sink_options, self.env, self.config_file, self.config_vars = sink_options, env, config_file, config_vars
        self.journal_targets = journal_targets
        self.shared = shared
        self.modules = sink_modules()
        self.named, self.command_valid = _sinks_the_command_names(
            self.modules, sink_options, env, config_file, config_vars)
        self.failed = False
        self._reported: set = set()

    def targets_of(self, run: Run) -> Tuple[Optional[list], Redactor]:
        """The run's targets, and its known secrets; no targets (None) when the run's own
        configuration is wrong while the command's is right: that run alone is left out."""
        try:
            # The journal's live controls name targets too, below --config.
            journal = Settings(cli=self.sink_options, env=self.env, file=self.config_file,
                               controls=sections_from_controls(run.controls),
                               configuration=run.configuration, secrets=run.secrets, variables=self.config_vars)
            settings = journal if self.journal_targets else Settings(
                cli=self.sink_options, env=self.env, file=self.config_file, variables=self.config_vars)
        except ConfigError as error:  # a configuration too deeply nested to be read
            _error(f"{run.source}: {error}")
            return self._left_out()
        redactor = Redactor(journal.known_secrets())
        targets = []
        journal_failed = False
        for module in self.modules:
            try:
                for target in module.targets(settings):
                    target = self.shared.get(target)
                    # Named twice (a URL given twice): sent once, not twice at the same time.
                    if not any(known is target for known in targets):
                        targets.append(target)
            except ConfigError as error:
                message = f"{run.source}: {error}"
                if self.named and module not in self.named and error.key.startswith("configuration"):
                    # The journal's own target, in a sink the command does not send to:
                    # e.g. the `configuration.grafana` chaosdb left in a journal replayed
                    # to InfluxDB only. The targets the command names still get the run.
                    message += "; not sent to (the command names its own targets)"
                    if message not in self._reported:
                        self._reported.add(message)
                        _warning(message)
                    continue
                journal_failed = True
                if message not in self._reported:
                    self._reported.add(message)
                    _error(message)
        if journal_failed:
            return self._left_out()
        redactor.add(_credentials_of(targets))
        return targets, redactor

    def _left_out(self) -> Tuple[Optional[list], Redactor]:
        """A run whose targets cannot be resolved. When the command's own configuration is
        wrong too, every run would fail the same way: nothing is sent at all (`failed`)."""
        if not self.command_valid:
            self.failed = True
        return None, Redactor()


def _credentials_of(targets) -> Iterator[Any]:
    """The passwords and tokens the targets send: masked in the run's events too."""
    for target in targets:
        config = getattr(target, "config", None)
        for holder in (config, getattr(config, "endpoint", None)):
            if isinstance(holder, Credentials):
                yield from (holder.password, holder.token)


def _sinks_the_command_names(modules, sink_options, env, config_file, config_vars) -> Tuple[list, bool]:
    """The sink modules given a target by the command itself (flags, environment, --config),
    whatever the journals say, and whether those settings are valid. A module whose settings
    are wrong there counts as named: its error is reported when the runs' targets are resolved."""
    try:
        settings = Settings(cli=sink_options, env=env, file=config_file, variables=config_vars)
    except ConfigError:
        return list(modules), False  # the error is reported with each run's targets
    named, valid = [], True
    for module in modules:
        try:
            if module.targets(settings):
                named.append(module)
        except ConfigError:
            named.append(module)
            valid = False
    return named, valid


class _SharedTargets:
    """Runs resolving to the same target share one instance: one HTTP session for
    hundreds of journals, and one OpenMetrics file that holds them all."""

    def __init__(self):
        self._targets: list = []

    @property
    def targets(self) -> list:
        return list(self._targets)

    def get(self, target):
        for known in self._targets:
            if (type(known) is type(target) and known.label == target.label
                    and getattr(known, "config", None) == getattr(target, "config", None)):
                _close(target)  # the duplicate's own session is never used
                return known
        self._targets.append(target)
        return target

    def finish_all(self) -> List[str]:
        """Let the targets that write at the end do it; their problems, one line each."""
        problems = []
        for target in self._targets:
            finish = getattr(target, "finish", None)
            problem = finish() if finish is not None else None
            if problem:
                problems.append(f"{target.label}: {problem}")
        return problems

    def close_all(self) -> None:
        for target in self._targets:
            _close(target)


def _close(target) -> None:
    """Release a target's connections (targets that hold none have no `close`)."""
    close = getattr(target, "close", None)
    if close is not None:
        close()


class _NoProgress:
    def update(self, _run):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Progress:
    """One line on a terminal (stderr) while runs are sent: runs and events done, and the
    requests each target's server has answered so far."""

    def __init__(self, count: int, targets, stream=None, columns: Optional[int] = None):
        self.stream = stream or sys.stderr
        self.columns = columns
        self.count = count
        self.runs = self.events = 0
        self.requests: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._drawn = 0.0
        self._width = 0
        for target in targets:
            session = getattr(target, "session", None)
            if session is not None:
                self.requests[target.label] = 0
                session.hooks["response"].append(self._counter(target.label))

    def _counter(self, label: str):
        def count(response, *args, **kwargs):
            with self._lock:
                self.requests[label] += 1
        return count

    def text(self) -> str:
        with self._lock:
            requests_ = "; ".join(f"{label}: {number:,} request(s)" for label, number in self.requests.items())
        return (f"replaying: {self.runs:,}/{self.count:,} runs, {self.events:,} events"
                + (f"; {requests_}" if requests_ else ""))

    def update(self, run: Run) -> None:
        self.runs += 1
        self.events += len(run.events)
        now = time.monotonic()
        if now - self._drawn >= PROGRESS_SECONDS or self.runs == self.count:
            self._drawn = now
            self._draw(self.text())

    def _draw(self, text: str) -> None:
        self._width = max(1, (self.columns or shutil.get_terminal_size().columns) - 1)
        self.stream.write("\r" + text[: self._width].ljust(self._width))
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        return False


def _progress(count: int, dry_run: bool, targets):
    """A progress line on a terminal for long work; nothing when piped."""
    if not dry_run and count > 1 and sys.stderr.isatty():
        return _Progress(count, targets)
    return _NoProgress()


class _Output:
    """The runs printed one by one: a text timeline each, or one JSON document
    streamed run by run (the same text `json.dumps(..., indent=2)` of the whole gives),
    or a picture of all the runs at the end."""

    def __init__(self, output_format: str):
        self.json = output_format == "json"
        self._picture = None
        if output_format in ("html", "svg"):
            # Imported for a picture only: every other replay starts without its code.
            from .picture import PICTURE_FORMATS
            self._picture = PICTURE_FORMATS[output_format]
        self._pictured: List[Run] = []
        self._first = True

    def run(self, run: Run, plans, deliveries) -> None:
        if self._picture is not None:
            self._pictured.append(run)
            # stdout holds the picture alone: what was sent is said on stderr.
            _echo_text(None, plans, deliveries, err=True)
            return
        if not self.json:
            _echo_lines(timeline_blocks(run), at_once=1)
            click.echo("")
            _echo_text(None, plans, deliveries)
            return
        click.echo('{\n  "runs": [\n' if self._first else ",\n", nl=False)
        self._first = False
        _echo_lines(run_document_blocks(run, plans, deliveries), indent="    ", at_once=1)

    def close(self) -> None:
        if self._picture is not None:
            click.echo(self._picture(self._pictured), nl=False)
        elif self.json:
            click.echo('{\n  "runs": []\n}' if self._first else "\n  ]\n}")


# Lines printed at a time: a run of 10^6 events is never held as one text.
ECHO_LINES = 1000


def _echo_lines(lines: Iterator[str], indent: str = "", at_once: Optional[int] = None, err: bool = False) -> None:
    """Print `"\\n".join(lines)` (each line indented), `at_once` lines (ECHO_LINES) at a time;
    a `SameLine` goes on with the line before it (no newline before it, nor indent)."""
    lines, separator = iter(lines), ""
    for piece in iter(lambda: list(islice(lines, at_once or ECHO_LINES)), []):
        texts = []
        for line in piece:
            if isinstance(line, SameLine):
                texts.append(textwrap.indent(line, indent, _every_line)[len(indent):] if indent else line)
            else:
                texts.append(separator + (textwrap.indent(line, indent, _every_line) if indent else line))
            separator = "\n"
        click.echo("".join(texts), nl=False, err=err)


def _every_line(line: str) -> bool:
    return True


def _echo_text(timeline: Optional[str], plans, deliveries, err: bool = False) -> None:
    if timeline is not None:
        click.echo(timeline, err=err)
    for label, requests in plans or []:
        _echo_lines(plans_lines(label, requests), err=err)
        click.echo("", err=err)
    for delivery in deliveries:
        click.echo(delivery_text(delivery), err=err)


def _error(message: str) -> None:
    click.echo(f"chaos-replay: error: {printable(message)}", err=True)


def _warning(message: str) -> None:
    click.echo(f"chaos-replay: warning: {printable(message)}", err=True)


def main():
    replay(prog_name="chaos-replay")
