"""Ship a run's events to InfluxDB while it goes on: the successor of `chaosdb.influx`.

Arguments are the keys of the `influx` section of `chaos-replay --config`
(`url`, `database`, `username`, `password`, ...) plus the live options of
`chaosreplay.controls.live` (`drain_timeout`, `strict`, ...). Without arguments the
experiment's `configuration.influxdb` (chaosdb's keys) is used, and without one
chaosdb's defaults (`http://localhost:8086`, database `gatlingdb`), so replacing
`chaosdb.influx` by `chaosreplay.controls.influx` in an experiment is enough;
`"layout": "chaosdb"` writes the points chaosdb wrote instead of ours.
"""
from typing import Any

from chaosreplay.controls.live import configure_control_for
from chaosreplay.controls.recorder import FALLBACK_HOOKS


def configure_control(event_registry: Any = None, configuration: Any = None, secrets: Any = None,
                      experiment: Any = None, **arguments) -> None:
    configure_control_for(__name__, event_registry, configuration, secrets, arguments, experiment)


# chaoslib < 1.26 has no run event registry: the recorder's hooks drive the run.
globals().update(FALLBACK_HOOKS)
