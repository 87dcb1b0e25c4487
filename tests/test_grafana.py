"""The Grafana dashboard (monitoring/grafana/lake-dashboard.json) asks only for metrics the lake
exports. The names exported are read from the collector's code (lake_client/server.py: each
*MetricFamily it builds), not typed here; a test with the database checks that reading against
what the running collector yields."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lake_client import server
from lake_client.config import Settings
from tests.conftest import CHECKOUT

DASHBOARD = CHECKOUT / "monitoring" / "grafana" / "lake-dashboard.json"

# The series a family of each kind puts in the exposition (what PromQL can name).
SERIES_SUFFIXES = {
    "GaugeMetricFamily": ("",),
    "CounterMetricFamily": ("_total",),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "InfoMetricFamily": ("_info",),
}
FAMILY_TYPES = {
    "GaugeMetricFamily": "gauge",
    "CounterMetricFamily": "counter",
    "HistogramMetricFamily": "histogram",
    "InfoMetricFamily": "info",
}


def _strings(node: ast.expr, parents: dict[ast.AST, ast.AST]) -> list[str]:
    """The values of a family's name: a string, or an f-string over one loop variable whose
    loop (a for or a comprehension) runs over a tuple of strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if not isinstance(node, ast.JoinedStr):
        raise AssertionError(f"server.py line {node.lineno}: cannot read a metric name")
    variables = {
        v.value.id
        for v in node.values
        if isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name)
    }
    if len(variables) != 1 or any(
        isinstance(v, ast.FormattedValue) and not isinstance(v.value, ast.Name) for v in node.values
    ):
        raise AssertionError(f"server.py line {node.lineno}: cannot read an f-string metric name")
    (var,) = variables
    scope: ast.AST | None = node
    while scope is not None:
        loops: list[ast.comprehension | ast.For] = []
        if isinstance(scope, ast.DictComp | ast.ListComp | ast.SetComp | ast.GeneratorExp):
            loops = list(scope.generators)
        elif isinstance(scope, ast.For):
            loops = [scope]
        for loop in loops:
            if (
                isinstance(loop.target, ast.Name)
                and loop.target.id == var
                and isinstance(loop.iter, ast.Tuple | ast.List)
                and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in loop.iter.elts
                )
            ):
                values = [e.value for e in loop.iter.elts if isinstance(e, ast.Constant)]
                return [
                    "".join(
                        str(value) if isinstance(v, ast.FormattedValue) else str(v.value)
                        for v in node.values
                        if isinstance(v, ast.FormattedValue | ast.Constant)
                    )
                    for value in values
                ]
        scope = parents.get(scope)
    raise AssertionError(f"server.py line {node.lineno}: no loop over strings for {{{var}}}")


def exported_families(source: str | None = None) -> set[tuple[str, str]]:
    """(name, kind) of every metric family lake_client/server.py builds."""
    tree = ast.parse(source if source is not None else Path(server.__file__).read_text())
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in SERIES_SUFFIXES
        ):
            for name in _strings(node.args[0], parents):
                # prometheus_client drops a counter's _total from the family's name
                if node.func.id == "CounterMetricFamily":
                    name = name.removesuffix("_total")
                found.add((name, node.func.id))
    return found


def exported_series() -> set[str]:
    """Every series name the lake's /metrics can carry."""
    return {name + suffix for name, kind in exported_families() for suffix in SERIES_SUFFIXES[kind]}


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*+(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left after the strings, label
    matchers ({...}), ranges ([...]), label lists (by (...), on (...)), function calls and
    keywords are taken out."""
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _LABEL_LIST.sub(" ", text)
    return {m for m in _IDENTIFIER.findall(text) if m.lower() not in _KEYWORDS}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # the panels of a collapsed row
    return panels


def unknown_metrics(dashboard: dict[str, Any], known: set[str]) -> dict[str, set[str]]:
    """Per panel title: the names its queries select that the lake does not export (and a
    query with no metric at all, or a panel with no query)."""
    problems: dict[str, set[str]] = {}
    for panel in _panels(dashboard):
        if panel.get("type") == "row":
            continue
        exprs = [t.get("expr", "") for t in panel.get("targets", [])]
        if not exprs:
            problems[panel["title"]] = {"(no query)"}
        for expr in exprs:
            names = metric_names(expr)
            bad = (names - known) or ({"(no metric in: " + expr + ")"} if not names else set())
            if bad:
                problems.setdefault(panel["title"], set()).update(bad)
    return problems


@pytest.mark.fast
def test_every_panel_asks_for_metrics_the_lake_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported_series()
    assert unknown_metrics(dashboard, known) == {}
    # The figures the issue names each have a panel.
    asked = {n for p in _panels(dashboard) for t in p["targets"] for n in metric_names(t["expr"])}
    for metric in (
        "data_quality_score",
        "storage_usage_bytes",
        "data_processing_duration_seconds_bucket",
        "storage_latency_seconds",
        "lake_bridge_lag_changes",
        "lake_notification_queue_usage",
        "lake_job_failures_24h",
    ):
        assert metric in asked


@pytest.mark.fast
def test_a_misspelt_or_missing_metric_fails_the_check() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported_series()
    broken = copy.deepcopy(dashboard)
    target = broken["panels"][0]["targets"][0]
    target["expr"] = target["expr"].replace("data_quality_score", "data_quality_scores")
    assert unknown_metrics(broken, known) == {broken["panels"][0]["title"]: {"data_quality_scores"}}
    # A family's bare name is not a series for a counter or a histogram.
    broken["panels"][0]["targets"][0]["expr"] = (
        "rate(lake_records_received[5m]) + data_processing_duration_seconds"
    )
    assert unknown_metrics(broken, known)[broken["panels"][0]["title"]] == {
        "lake_records_received",
        "data_processing_duration_seconds",
    }


@pytest.mark.fast
def test_the_promql_reader_finds_the_names_and_only_them() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, operation) (rate(a_seconds_bucket{job="x",'
        ' le!="1e3"}[$__rate_interval] offset 5m))) / on (operation) group_left b_total'
        ' > 1e3 and ignoring(job) c unless d{name=~"e|f"} or sum without (g) (h[1h:5m])'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d", "h"}
    assert metric_names("${metric}") == set()
    assert metric_names('{__name__="x"}') == set()  # a name as a label: not checked


@pytest.mark.fast
def test_the_code_reader_expands_the_loop_of_a_named_family() -> None:
    source = (
        "def f():\n"
        "    a = GaugeMetricFamily('plain', 'h')\n"
        "    b = {n: CounterMetricFamily(f'x_{n}', 'h') for n in ('one', 'two')}\n"
        "    c = HistogramMetricFamily('dur_seconds', 'h')\n"
    )
    assert exported_families(source) == {
        ("plain", "GaugeMetricFamily"),
        ("x_one", "CounterMetricFamily"),
        ("x_two", "CounterMetricFamily"),
        ("dur_seconds", "HistogramMetricFamily"),
    }
    with pytest.raises(AssertionError, match="cannot read"):
        exported_families("GaugeMetricFamily(name_from_elsewhere, 'h')\n")


def test_the_code_reader_agrees_with_the_running_collector(db: str, settings: Settings) -> None:
    """What exported_families reads from the code is what the collector yields, against a real
    database and Redis (with this test's superuser, every family is there)."""
    collected = {(m.name, m.type) for m in server.LakeCollector(db, settings.redis_url()).collect()}
    read = {(name, FAMILY_TYPES[kind]) for name, kind in exported_families()}
    assert read == collected
