"""`chaos-replay` (and `chaos replay`): a thin click shell over the engine."""
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

import click

from . import __version__
from .config import Settings, load_config_file
from .delivery import DELIVERIES_KEY, sections_from_controls, undelivered_run
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_CONFIG,
    EXIT_OK,
    EXIT_UNDELIVERED,
    ConfigError,
    JournalError,
)
from .events import Run, parse_time
from .journal import cycle_collection_paused, expand_inputs, read_source
from .redelivery import read_record, record_path, write_record
from .render import delivery_text, plans_text, run_document, timeline_text
from .sinks import Delivery, sink_modules
from .timeline import add_tags, only_actions, shift_to
from .variables import load_variables

logger = logging.getLogger("chaostoolkit_replay")

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


@click.command(name="replay", epilog=EXIT_CODES_HELP)
@click.argument("journals", nargs=-1, required=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Timeline as readable text or one JSON document.")
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
@click.option("--verbose", is_flag=True, help="Log details (each retry and its cause) to stderr.")
@_with_sink_options
@click.version_option(__version__, prog_name="chaos-replay")
def replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
           config_path, only_undelivered, verbose, **sink_options):
    """Show a Chaos Toolkit run's timeline and ship its events to dashboards.

    JOURNALS are journal.json files, the recorder's side files (*.events.jsonl),
    directories of them, or globs.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="chaos-replay: %(levelname)s: %(message)s")
    # One command, then exit: runs, lines and requests hold no reference cycle,
    # and the collector would rescan every event of every run again and again
    # (0.4 s of CPU in the benchmark's replay of 100,000 events into InfluxDB).
    try:
        with cycle_collection_paused():
            _replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
                    config_path, only_undelivered, sink_options)
    except KeyboardInterrupt:
        _error("interrupted: the runs being sent may be partly delivered; "
               "replaying them again is safe (the same points and annotations are updated)")
        sys.stdout.flush()
        sys.stderr.flush()
        # Sends in flight wait in worker threads that Python would join before exiting:
        # against a server that does not answer, its timeout times its retries (40 s).
        os._exit(EXIT_INTERRUPTED)


def _replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
            config_path, only_undelivered, sink_options):
    exit_code = EXIT_OK
    try:
        config_file = load_config_file(config_path)
        config_vars, env_overrides = load_variables(variables, var_files)
    except ConfigError as error:
        _error(str(error))
        sys.exit(error.exit_code)
    env = {**os.environ, **env_overrides}

    runs: List[Run] = []
    for path in expand_inputs(journals):
        try:
            runs.append(_prepare(read_source(path), shift_to, tags, only_actions))
        except JournalError as error:
            _error(str(error))
            exit_code = error.exit_code

    shared = _SharedTargets()
    targets_by_run, config_failed = _resolve_targets(runs, sink_options, env, config_file, config_vars, shared)
    if config_failed:
        sys.exit(EXIT_INVALID_CONFIG)

    documents = []
    # Each target of a run is sent to from its own thread: a slow server does
    # not hold the others back, and the timeline is rendered while they work.
    senders = ThreadPoolExecutor(max_workers=max(1, shared.count), thread_name_prefix="chaos-replay-send")
    try:
        undelivered = _send_and_show(runs, targets_by_run, senders, dry_run, only_undelivered,
                                     output_format, documents)
    finally:
        # Not `with`: on Ctrl-C it would wait for the sends in flight before letting go.
        senders.shutdown(wait=False)
    shared.close_all()
    if output_format == "json":
        click.echo(json.dumps({"runs": documents}, indent=2, ensure_ascii=False))
    if undelivered and exit_code == EXIT_OK:
        exit_code = EXIT_UNDELIVERED
    sys.exit(exit_code)


def _send_and_show(runs, targets_by_run, senders, dry_run, only_undelivered, output_format, documents) -> bool:
    """Send (or plan) each run and print it, or add its document; True if some event was not delivered."""
    undelivered = False
    with _progress(runs, targets_by_run, dry_run) as progress:
        for run, targets in zip(runs, targets_by_run):
            deliveries, plans = [], None
            missed = _missed(run) if only_undelivered else None
            if dry_run:
                plans = [(target.label, _plan(run, target, missed)) for target in targets]
            sending = [] if dry_run else [senders.submit(_deliver_in_turn, run, same_server, missed)
                                          for same_server in _by_server(targets)]
            timeline = timeline_text(run) if output_format == "text" else None
            if not dry_run:
                deliveries = [delivery for future in sending for delivery in future.result()]
                undelivered = undelivered or any(not d.ok for d in deliveries)
                progress.update(1)
                if missed is not None:
                    _record_resent(run, deliveries)
            if output_format == "json":
                documents.append(run_document(run, plans, deliveries))
            else:
                _echo_text(timeline, plans, deliveries)
    return undelivered


class _Missed(dict):
    """Target label -> what it still misses of a run: the live delivery's record in the
    journal, overlaid with what earlier `--only-undelivered` re-sends left (`resent`)."""

    def __init__(self, recorded: Mapping[str, Any], resent: Mapping[str, Any], record_file: str):
        super().__init__({**recorded, **resent})
        self.resent = set(resent)
        self.record_file = record_file


def _missed(run: Run) -> "_Missed":
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
        click.echo(f"chaos-replay: warning: what was re-sent could not be recorded ({problem}): "
                   "the next --only-undelivered sends it again", err=True)


def _prepare(run: Run, shift, tags, actions_only) -> Run:
    if actions_only:
        run = only_actions(run)
    run = add_tags(run, tags)
    if shift is not None:
        run = shift_to(run, shift)
    return run


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


def _plan(run: Run, target, missed: Optional[Mapping[str, Any]]) -> list:
    part = _part_for(run, target, missed)
    return [] if part is None else target.plan(part)


def _deliver(run: Run, target, missed: Optional[Mapping[str, Any]]) -> Delivery:
    part = _part_for(run, target, missed)
    if part is None:
        if target.label in getattr(missed, "resent", ()):
            note = f"everything is through (re-sent before, recorded in {missed.record_file}): not sent again"
        else:
            note = "the live delivery missed nothing: not sent again"
        return Delivery(target.label, notes=(note,), skipped=True)
    return target.send(part)


def _by_server(targets) -> List[list]:
    """The targets grouped by server URL (else label), in order: two targets of one server
    (two dashboards of one Grafana) are sent to one after the other, as before, since each
    one's look-up sees what the other created."""
    groups: Dict[str, list] = {}
    for target in targets:
        server = getattr(getattr(target, "config", None), "url", None) or target.label
        groups.setdefault(server, []).append(target)
    return list(groups.values())


def _deliver_in_turn(run: Run, targets, missed: Optional[Mapping[str, Any]]) -> List[Delivery]:
    return [_deliver(run, target, missed) for target in targets]


def _resolve_targets(runs, sink_options, env, config_file, config_vars, shared) -> Tuple[List[list], bool]:
    """Every target of every run, before anything is sent; config errors all reported.

    Precedence: flags, environment, --config, the journal's live controls, then
    its configuration (chaosdb keys) and secrets.
    """
    resolved, failed, reported = [], False, set()
    modules = sink_modules()
    for run in runs:
        # The journal's live controls name targets too, below --config.
        file_layer = {**sections_from_controls(run.controls), **config_file}
        settings = Settings(cli=sink_options, env=env, file=file_layer,
                            configuration=run.configuration, secrets=run.secrets,
                            variables=config_vars)
        targets = []
        for module in modules:
            try:
                for target in module.targets(settings):
                    target = shared.get(target)
                    # Named twice (a URL given twice): sent once, not twice at the same time.
                    if not any(known is target for known in targets):
                        targets.append(target)
            except ConfigError as error:
                failed = True
                message = f"{run.source}: {error}"
                if message not in reported:
                    reported.add(message)
                    _error(message)
        resolved.append(targets)
    return resolved, failed


class _SharedTargets:
    """Runs resolving to the same target share one instance: one HTTP session for
    hundreds of journals, and one OpenMetrics file that holds them all."""

    def __init__(self):
        self._targets: list = []

    @property
    def count(self) -> int:
        return len(self._targets)

    def get(self, target):
        for known in self._targets:
            if (type(known) is type(target) and known.label == target.label
                    and getattr(known, "config", None) == getattr(target, "config", None)):
                _close(target)  # the duplicate's own session is never used
                return known
        self._targets.append(target)
        return target

    def close_all(self) -> None:
        for target in self._targets:
            _close(target)


def _close(target) -> None:
    """Release a target's connections (targets that hold none have no `close`)."""
    close = getattr(target, "close", None)
    if close is not None:
        close()


class _NoProgress:
    def update(self, _steps):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(runs, targets_by_run, dry_run):
    """A progress bar on a terminal for long work; nothing when piped."""
    sending = not dry_run and any(targets_by_run)
    if sending and len(runs) > 1 and sys.stderr.isatty():
        return click.progressbar(length=len(runs), label="replaying", file=sys.stderr)
    return _NoProgress()


def _echo_text(timeline: str, plans, deliveries) -> None:
    click.echo(timeline)
    for label, requests in plans or []:
        click.echo(plans_text(label, requests))
    for delivery in deliveries:
        click.echo(delivery_text(delivery))


def _error(message: str) -> None:
    click.echo(f"chaos-replay: error: {message}", err=True)


def main():
    replay(prog_name="chaos-replay")
