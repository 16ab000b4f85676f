"""Ship a run's events to a Prometheus pushgateway while it goes on: the successor of
chaostoolkit-prometheus's pushgateway control.

Arguments are the keys of the `pushgateway` section of `chaos-replay --config`
(`url`, `job`, `grouping_key`, `delete_at_end`, ...), which accepts the
chaostoolkit-prometheus control's own (`pushgateway_url`, `job`,
`grouping_key`, `trace_id`, `experiment_ref`, and its default
`http://localhost:9091` when no URL is given), plus the live options of
`chaosreplay.controls.live` (`drain_timeout`, `strict`, ...). Declared with the
peer's arguments it pushes the peer's metrics; `"layout": "chaostoolkit-replay"`
pushes ours.
"""
from typing import Any

from chaosreplay.controls.live import configure_control_for
from chaosreplay.controls.recorder import FALLBACK_HOOKS


def configure_control(event_registry: Any = None, configuration: Any = None, secrets: Any = None,
                      experiment: Any = None, **arguments) -> None:
    configure_control_for(__name__, event_registry, configuration, secrets, arguments, experiment)


# chaoslib < 1.26 has no run event registry: the recorder's hooks drive the run.
globals().update(FALLBACK_HOOKS)
