"""`--grafana-dashboard influx|prometheus`: save the ready dashboard on every configured Grafana.

One `POST /api/dashboards/db` per Grafana server and organization, through the
Grafana target's own transport (credentials, TLS, timeout, retries), with
`overwrite: true`: Grafana replaces the dashboard of the same uid, so running
it again updates the dashboard instead of adding one.
"""
from typing import List, Optional, Sequence, Tuple

from ..render import plans_text
from ..sinks.http import Unreachable
from . import dashboard, dashboards_db_body

__all__ = ["provision_dashboards"]


def provision_dashboards(targets_by_run: Sequence[Sequence[object]], layout: str,
                         dry_run: bool) -> Tuple[List[str], bool]:
    """Lines to show, and whether every Grafana saved the dashboard (or, dry, what would be sent).

    The influx dashboard reads the measurement the run's InfluxDB target writes, if it has one."""
    board = dashboard(layout, measurement=_influx_measurement(targets_by_run) if layout == "influx" else None)
    body = dashboards_db_body(board)
    lines: List[str] = []
    saved_everywhere = True
    seen = set()
    for targets in targets_by_run:
        for target in targets:
            config = getattr(target, "config", None)
            if not hasattr(target, "save_dashboard") or (config.url, config.org_id) in seen:
                continue
            seen.add((config.url, config.org_id))
            if dry_run:
                lines.append(plans_text(target.label, [target.plan_dashboard(body)]))
                continue
            try:
                answer = target.save_dashboard(body)
            except Unreachable as error:
                saved_everywhere = False
                lines.append(f"  -> {target.label}: dashboard {board['uid']} NOT saved: {error}")
            else:
                lines.append(f"  -> {target.label}: dashboard {board['uid']} saved "
                             f"(version {answer.get('version')}, {answer.get('url')})")
    return lines, saved_everywhere


def _influx_measurement(targets_by_run: Sequence[Sequence[object]]) -> Optional[str]:
    for targets in targets_by_run:
        for target in targets:
            measurement = getattr(getattr(target, "config", None), "measurement", None)
            if isinstance(measurement, str):
                return measurement
    return None
