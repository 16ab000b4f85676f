"""What Grafana does to a dashboard's queries before sending them, for the dashboard tests.

Grafana replaces its macros (`$timeFilter`, `$__interval`, `$__range`) and the
template variables: a multi-value variable used in a regex is each value with
the regex characters escaped, joined by `|` in parentheses; "All" is the
variable's `allValue`. These helpers do the same, so the tests run exactly the
text Grafana would send.
"""
import re
from typing import Dict, Iterable, List

# Grafana's escape for regex-formatted variables in InfluxQL (`/.../` literals; its `regex` format).
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# Its Prometheus data source's (prometheusRegularEscape): the value sits in a PromQL string,
# so each regex escape is itself escaped (`?` -> `\\?`), and a backslash becomes four.
_PROMQL_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")


def _alternatives(escaped: List[str]) -> str:
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def regex_value(values: Iterable[str]) -> str:
    return _alternatives([_REGEX_SPECIAL.sub(lambda match: "\\" + match.group(), value) for value in values])


def promql_regex_value(values: Iterable[str]) -> str:
    return _alternatives([_PROMQL_REGEX_SPECIAL.sub(lambda match: "\\\\" + match.group(),
                                                    value.replace("\\", "\\\\\\\\"))
                          for value in values])


def substituted(query: str, replacements: Dict[str, str]) -> str:
    """`query` with each `$name` / `${name}` replaced, longest names first."""
    for name in sorted(replacements, key=len, reverse=True):
        query = query.replace("${" + name + "}", replacements[name]).replace("$" + name, replacements[name])
    return query


def panel_queries(board: dict, key: str) -> Dict[str, List[str]]:
    """Each panel's title -> its targets' query texts (`query` for InfluxQL, `expr` for PromQL)."""
    return {panel["title"]: [target[key] for target in panel["targets"]] for panel in board["panels"]}


def variable_queries(board: dict) -> Dict[str, str]:
    return {variable["name"]: variable["query"] for variable in board["templating"]["list"]
            if variable["type"] == "query"}
