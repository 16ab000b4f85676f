"""`chaos-replay` (and `chaos replay`): a thin click shell over the engine."""
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

import click

from . import __version__
from .config import Settings, load_config_file
from .delivery import sections_from_controls, undelivered_run
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
from .picture import PICTURE_FORMATS
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
              help="Send each target only the events the run's live delivery recorded as missed.")
@click.option("--verbose", is_flag=True, help="Log details (each retry and its cause) to stderr.")
@_with_sink_options
@click.version_option(__version__, prog_name="chaos-replay")
def replay(journals, output_format, dry_run, shift_to, tags, only_actions, variables, var_files,
           config_path, only_undelivered, verbose, **sink_options):
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
    try:
        _check_tags_are_text(tags)
        config_file = load_config_file(config_path)
        config_vars, env_overrides = load_variables(variables, var_files)
    except ConfigError as error:
        _error(str(error))
        sys.exit(error.exit_code)
    env = {**os.environ, **env_overrides}

    runs, exit_code = _read_inputs(journals)
    runs = [_prepare(run, shift_to, tags, only_actions) for run in runs]

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
    elif output_format in PICTURE_FORMATS:
        click.echo(PICTURE_FORMATS[output_format](runs), nl=False)
    if undelivered and exit_code == EXIT_OK:
        exit_code = EXIT_UNDELIVERED
    sys.exit(exit_code)


def _send_and_show(runs, targets_by_run, senders, dry_run, only_undelivered, output_format, documents) -> bool:
    """Send (or plan) each run and print it, or add its document; True if some event was not delivered."""
    undelivered = False
    with _progress(runs, targets_by_run, dry_run) as progress:
        for run, targets in zip(runs, targets_by_run):
            deliveries, plans = [], None
            if dry_run:
                plans = [(target.label, _plan(run, target, only_undelivered)) for target in targets]
            sending = [] if dry_run else [senders.submit(_deliver_in_turn, run, same_server, only_undelivered)
                                          for same_server in _by_server(targets)]
            timeline = timeline_text(run) if output_format == "text" else None
            if not dry_run:
                deliveries = [delivery for future in sending for delivery in future.result()]
                undelivered = undelivered or any(not d.ok for d in deliveries)
                progress.update(1)
            if output_format == "json":
                documents.append(run_document(run, plans, deliveries))
            elif output_format in PICTURE_FORMATS:
                # stdout holds the picture alone: what was sent is said on stderr.
                _echo_text(None, plans, deliveries, err=True)
            else:
                _echo_text(timeline, plans, deliveries)
    return undelivered


def _check_tags_are_text(tags: Dict[str, str]) -> None:
    """A `--tag` of bytes that are not UTF-8 arrives with lone surrogates no sink can send."""
    for key, value in tags.items():
        try:
            f"{key}:{value}".encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("--tag", f"{key.encode('utf-8', 'backslashreplace').decode()}: not UTF-8 text") from None


def _read_inputs(journals) -> Tuple[List[Run], int]:
    """Every run of every input and the exit code so far: an input that cannot be read is
    reported in one line and the others are still read."""
    runs: List[Run] = []
    exit_code = EXIT_OK
    for item in find_inputs(journals):
        try:
            runs.extend(read_runs(item.path))
        except NotAJournal as error:
            if not item.named:
                # A directory `chaos run` left holds the experiment file next to the journal.
                logger.info(f"{item.path}: not a journal, passed over")
                continue
            _error(str(error))
            exit_code = error.exit_code
        except JournalError as error:
            _error(str(error))
            exit_code = error.exit_code
    return _without_side_file_twins(runs), exit_code


def _without_side_file_twins(runs: List[Run]) -> List[Run]:
    """A side file's run that a journal given too holds is replayed from the journal, the
    fuller record (and the same events: replaying both would only send them twice)."""
    from_journals = {run.run_id for run in runs if not run.from_side_file}
    kept = []
    for run in runs:
        if run.from_side_file and run.run_id in from_journals:
            logger.info(f"{run.source}: run {run.run_id} is replayed from its journal")
            continue
        kept.append(run)
    return kept


def _prepare(run: Run, shift, tags, actions_only) -> Run:
    if actions_only:
        run = only_actions(run)
    run = add_tags(run, tags)
    if shift is not None:
        run = shift_to(run, shift)
    return run


def _part_for(run: Run, target, only_undelivered: bool) -> Optional[Run]:
    """What `target` gets of `run`: all of it, what its live delivery missed, or None
    when it missed nothing."""
    if not only_undelivered:
        return run
    missed = undelivered_run(run, target.label)
    if not missed.events:
        return None
    # A target that replaces what it holds (a pushgateway group) must get the whole run.
    return run if getattr(target, "needs_whole_run", False) else missed


def _plan(run: Run, target, only_undelivered: bool) -> list:
    part = _part_for(run, target, only_undelivered)
    return [] if part is None else target.plan(part)


def _deliver(run: Run, target, only_undelivered: bool) -> Delivery:
    part = _part_for(run, target, only_undelivered)
    if part is None:
        return Delivery(target.label, notes=("the live delivery missed nothing: not sent again",))
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


def _deliver_in_turn(run: Run, targets, only_undelivered: bool) -> List[Delivery]:
    return [_deliver(run, target, only_undelivered) for target in targets]


def _resolve_targets(runs, sink_options, env, config_file, config_vars, shared) -> Tuple[List[list], bool]:
    """Every target of every run, before anything is sent; config errors all reported.

    Precedence: flags, environment, --config, the journal's live controls, then
    its configuration (chaosdb keys) and secrets.
    """
    resolved, failed, reported = [], False, set()
    modules = sink_modules()
    named = _sinks_the_command_names(modules, sink_options, env, config_file, config_vars)
    for run in runs:
        # The journal's live controls name targets too, below --config.
        file_layer = {**sections_from_controls(run.controls), **config_file}
        targets = []
        try:
            settings = Settings(cli=sink_options, env=env, file=file_layer,
                                configuration=run.configuration, secrets=run.secrets,
                                variables=config_vars)
        except ConfigError as error:  # a configuration too deeply nested to be read
            failed = True
            _error(f"{run.source}: {error}")
            resolved.append(targets)
            continue
        for module in modules:
            try:
                for target in module.targets(settings):
                    target = shared.get(target)
                    # Named twice (a URL given twice): sent once, not twice at the same time.
                    if not any(known is target for known in targets):
                        targets.append(target)
            except ConfigError as error:
                message = f"{run.source}: {error}"
                if named and module not in named and error.key.startswith("configuration"):
                    # The journal's own target, in a sink the command does not send to:
                    # e.g. the `configuration.grafana` chaosdb left in a journal replayed
                    # to InfluxDB only. The targets the command names still get the run.
                    message += "; not sent to (the command names its own targets)"
                    if message not in reported:
                        reported.add(message)
                        _warning(message)
                    continue
                failed = True
                if message not in reported:
                    reported.add(message)
                    _error(message)
        resolved.append(targets)
    return resolved, failed


def _sinks_the_command_names(modules, sink_options, env, config_file, config_vars) -> list:
    """The sink modules given a target by the command itself (flags, environment, --config),
    whatever the journals say. A module whose settings are wrong there counts as named:
    its error is reported when the runs' targets are resolved."""
    try:
        settings = Settings(cli=sink_options, env=env, file=config_file, variables=config_vars)
    except ConfigError:
        return list(modules)  # the error is reported with each run's targets
    named = []
    for module in modules:
        try:
            if module.targets(settings):
                named.append(module)
        except ConfigError:
            named.append(module)
    return named


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


def _echo_text(timeline: Optional[str], plans, deliveries, err: bool = False) -> None:
    if timeline is not None:
        click.echo(timeline, err=err)
    for label, requests in plans or []:
        click.echo(plans_text(label, requests), err=err)
    for delivery in deliveries:
        click.echo(delivery_text(delivery), err=err)


def _error(message: str) -> None:
    click.echo(f"chaos-replay: error: {message}", err=True)


def _warning(message: str) -> None:
    click.echo(f"chaos-replay: warning: {message}", err=True)


def main():
    replay(prog_name="chaos-replay")
