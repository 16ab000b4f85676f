"""Ready Grafana dashboards for what chaostoolkit-replay writes, shipped as package data.

`influx.json` reads the InfluxDB layout (measurement `chaostoolkit_events`,
InfluxQL), `prometheus.json` the `chaostoolkit_*` metrics (PromQL). Both have
the same panels: runs over time by status, deviated runs (a count and the list),
failed activities by name, the duration of each activity across runs, and the
timeline of one run (a state timeline); a run picker (experiment, then run id);
and annotation queries on the tags the Grafana sink writes (`chaostoolkit` with
`experiment`, `activity` + `status-failed`, `steady-state`, `interruption`,
`mark`, or `run-$run_id`).

As shipped, every query uses the data source variable `${datasource}`: the file
imports as it is through Grafana's UI, API or file provisioning, and the user
picks the data source. `dashboard(..., datasource=UID)` pins one instead.
"""
import copy
import json
from importlib import resources
from typing import Any, Dict, Optional

__all__ = ["LAYOUTS", "DATASOURCE_VARIABLE", "DEFAULT_MEASUREMENT", "dashboard", "dashboards_db_body"]

LAYOUTS = ("influx", "prometheus")
DATASOURCE_VARIABLE = "${datasource}"
# The InfluxDB sink's default measurement (chaosreplay.sinks.influx_line), as the shipped queries name it.
DEFAULT_MEASUREMENT = "chaostoolkit_events"
_QUOTED_MEASUREMENT = f'"{DEFAULT_MEASUREMENT}"'


def _shipped(layout: str) -> Dict[str, Any]:
    text = resources.files(__name__).joinpath(f"{layout}.json").read_text(encoding="utf-8")
    return json.loads(text)


def dashboard(layout: str, datasource: Optional[str] = None, measurement: Optional[str] = None,
              uid: Optional[str] = None, title: Optional[str] = None) -> Dict[str, Any]:
    """The `layout` dashboard ("influx" or "prometheus"), with the options applied.

    `datasource`: a data source uid used by every query instead of the picker;
    `measurement`: the InfluxDB measurement (influx only), quoted as InfluxQL wants.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown dashboard {layout!r} (known: {', '.join(LAYOUTS)})")
    if measurement is not None and layout != "influx":
        raise ValueError("a measurement applies to the influx dashboard only")
    board = _shipped(layout)
    if uid:
        board["uid"] = uid
    if title:
        board["title"] = title
    if measurement is not None and measurement != DEFAULT_MEASUREMENT:
        quoted = '"' + measurement.replace("\\", "\\\\").replace('"', '\\"') + '"'
        _replace_in_queries(board, _QUOTED_MEASUREMENT, quoted)
    if datasource:
        _pin_datasource(board, datasource)
    return board


def _replace_in_queries(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "query" and isinstance(value, str):
                node[key] = value.replace(old, new)
            else:
                _replace_in_queries(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _replace_in_queries(item, old, new)


def _pin_datasource(board: Dict[str, Any], uid: str) -> None:
    """Every reference to the picker becomes `uid`; the picker itself goes."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("uid") == DATASOURCE_VARIABLE:
                node["uid"] = uid
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(board)
    variables = board["templating"]["list"]
    board["templating"]["list"] = [variable for variable in variables if variable.get("type") != "datasource"]


def dashboards_db_body(board: Dict[str, Any], folder_uid: Optional[str] = None) -> Dict[str, Any]:
    """The body of `POST /api/dashboards/db` that creates the dashboard or replaces the one of the same uid."""
    # Grafana matches by uid; an id from another server must not travel (it would name another dashboard).
    shipped = {key: copy.deepcopy(value) for key, value in board.items() if key != "id"}
    body: Dict[str, Any] = {"dashboard": shipped, "overwrite": True, "message": "chaostoolkit-replay dashboard"}
    if folder_uid:
        body["folderUid"] = folder_uid
    return body
