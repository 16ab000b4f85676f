"""Ship a run's events to Grafana (annotations) while it goes on: the successor of `chaosdb.grafana`.

Arguments are the keys of one server of the `grafana` section of `chaos-replay --config`
(`url`, `api_token`, `dashboard_uid`, ...) plus the live options of
`chaosreplay.controls.live` (`drain_timeout`, `strict`, ...). Without arguments the
experiment's `configuration.grafana` (chaosdb's list of servers) is used, so replacing
`chaosdb.grafana` by `chaosreplay.controls.grafana` in an experiment is enough.
"""
from typing import Any

from chaosreplay.controls.live import configure_control_for
from chaosreplay.controls.recorder import FALLBACK_HOOKS


def configure_control(event_registry: Any = None, configuration: Any = None, secrets: Any = None,
                      experiment: Any = None, **arguments) -> None:
    configure_control_for(__name__, event_registry, configuration, secrets, arguments, experiment)


# chaoslib < 1.26 has no run event registry: the recorder's hooks drive the run.
globals().update(FALLBACK_HOOKS)
