"""The shipped deployment files (deploy/) and engine/systemd.py.

The Grafana dashboard and the Prometheus alert rules may only name series the engine exports
(engine/observe/metrics.py) or Prometheus' own ``up``; the compose file, Dockerfile and systemd unit must point
at files that exist and keep the graceful-stop and readiness contract; the sd_notify client must send
exactly the datagrams systemd expects and never raise.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import posixpath
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

from engine import systemd
from engine.observe.metrics import CATALOG, exported_names

DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "engine.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "engine.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKER_CONFIG = DEPLOY / "config.docker.yaml"
FEED_CONFIG = DEPLOY / "feed.docker.yaml"
UNIT = DEPLOY / "systemd" / "engine.service"

#: Series Prometheus makes itself for every target; the only non-engine names a query may use.
PROMETHEUS_BUILTINS = {"up"}
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}

# ------------------------------------------------------------------------------------------------
# A small PromQL name extractor

PROMQL_WORDS = {
    # aggregations and their modifiers
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    # binary operators and modifiers
    "and", "or", "unless", "offset", "atan2",
    # functions
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "changes", "resets",
    "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction", "abs", "ceil", "floor",
    "round", "sqrt", "exp", "ln", "log2", "log10", "sgn", "clamp", "clamp_min", "clamp_max", "time",
    "timestamp", "vector", "scalar", "sort", "sort_desc", "absent", "absent_over_time", "label_replace",
    "label_join", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
    "inf", "nan",
    # Grafana's variable query functions
    "label_values", "query_result",
    # the histogram bucket label, wherever a grouping clause did not already remove it
    "le",
}
GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
RANGE = re.compile(r"\[[^\[\]]*\]")
IDENTIFIER = re.compile(r"(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*)\s*,\s*)?([a-zA-Z_]\w*)\s*\)\s*$", re.S)
QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)
SELECTOR = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}")


def unwrap_variable_query(query: str) -> str:
    """The PromQL inside a Grafana variable query: ``label_values(sel, label)`` -> ``sel``."""
    match = LABEL_VALUES.match(query)
    if match:
        return match.group(1) or ""
    match = QUERY_RESULT.match(query)
    return match.group(1) if match else query


def promql_names(expr: str) -> set[str]:
    """Every series name ``expr`` selects (or an unknown function it calls): identifiers left after
    removing Grafana variables, strings, label matchers, grouping label lists, ranges, and PromQL's
    own words. Fail-closed: anything unrecognised comes back as a name."""
    text = unwrap_variable_query(expr)
    text = GRAFANA_VARIABLE.sub(" ", text)
    text = STRING.sub('""', text)
    text = MATCHERS.sub(" ", text)
    text = GROUPING.sub(r"\1 ", text)
    text = RANGE.sub(" ", text)
    return {word for word in IDENTIFIER.findall(text) if word.lower() not in PROMQL_WORDS}


def base_metric(name: str) -> str | None:
    """The catalogue entry an exported name belongs to (``engine_fills_total`` -> ``engine_fills``)."""
    if name in CATALOG:
        return name
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in CATALOG:
            return name[: -len(suffix)]
    return None


def labels_of(name: str) -> set[str]:
    """Labels a series ``name`` carries when scraped (the catalogue's, ``le`` on buckets, the target's)."""
    if name in PROMETHEUS_BUILTINS:
        return set(TARGET_LABELS)
    base = base_metric(name)
    if base is None:
        return set()
    labels = set(CATALOG[base].labels) | TARGET_LABELS
    if name.endswith("_bucket") and CATALOG[base].kind == "histogram":
        labels.add("le")
    return labels


def unknown_names(exprs: list[str]) -> dict[str, set[str]]:
    """expr -> the names in it that are neither exported by the engine nor Prometheus built-ins."""
    allowed = exported_names() | PROMETHEUS_BUILTINS
    found = {expr: promql_names(expr) - allowed for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


def label_problems(expr: str, legend: str = "") -> list[str]:
    """Labels a query matches, groups by or shows in its legend that its series do not have."""
    problems = []
    text = GRAFANA_VARIABLE.sub("x", unwrap_variable_query(expr))
    text = STRING.sub('""', text)
    names = promql_names(expr)
    available = set().union(*(labels_of(name) for name in names)) if names else set()
    for name, body in SELECTOR.findall(text):
        if name.lower() in PROMQL_WORDS:
            continue
        for label in MATCHER_LABEL.findall(body):
            if label != "__name__" and label not in labels_of(name):
                problems.append(f"{name} has no label {label!r}")
    for _keyword, body in GROUPING.findall(text):
        for label in (part.strip() for part in body.split(",")):
            if label and label not in available:
                problems.append(f"grouping by {label!r}, which none of {sorted(names)} has")
    for label in LEGEND_LABEL.findall(legend):
        if label not in available:
            problems.append(f"legend shows {{{{{label}}}}}, which none of {sorted(names)} has")
    return problems


# ------------------------------------------------------------------------------------------------
# Dashboard helpers


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def provisioned_datasource() -> dict[str, Any]:
    data = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    (datasource,) = data["datasources"]
    return datasource


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


def rows_with_panels(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels in it: a collapsed row holds its panels, an expanded row owns the
    top-level panels that follow it up to the next row."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            current = rows.setdefault(panel["title"], [])
            current.extend(panel.get("panels") or [])
        elif current is not None:
            current.append(panel)
    return rows


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(expr, legend) of every panel target and every query template variable."""
    queries = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets") or []:
            queries.append((target.get("expr", ""), target.get("legendFormat", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            queries.append((query.get("query", "") if isinstance(query, dict) else query or "", ""))
    return queries


# ------------------------------------------------------------------------------------------------
# The extractor can fail


def test_extractor_finds_names_and_ignores_promql_words() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, strategy, hook) '
        '(rate(engine_hook_duration_seconds_bucket{strategy=~"$strategy"}[$__rate_interval])))'
    )
    assert promql_names(expr) == {"engine_hook_duration_seconds_bucket"}
    assert promql_names('up{job="engine"} == bool 0 offset 5m') == {"up"}
    assert promql_names("sum(rate(engine_events_total[1m])) by (venue) / 1e-9") == {"engine_events_total"}
    assert promql_names("label_values(engine_strategy_state, strategy)") == {"engine_strategy_state"}
    assert promql_names('a_metric{code="engine_not_a_name"} and on (strategy) b_metric') == {"a_metric", "b_metric"}


def test_extractor_catches_a_made_up_name_and_a_misspelled_function() -> None:
    made_up = 'sum by (venue) (rate(engine_made_up_total{venue=~"$venue"}[$__rate_interval]))'
    assert unknown_names([made_up]) == {made_up: {"engine_made_up_total"}}
    # a real base name without the counter's _total suffix is not what a scrape contains
    assert unknown_names(["rate(engine_fills[5m])"]) == {"rate(engine_fills[5m])": {"engine_fills"}}
    assert unknown_names(["rat(engine_events_total[5m])"]) == {"rat(engine_events_total[5m])": {"rat"}}
    assert unknown_names(["node_cpu_seconds_total"]) == {"node_cpu_seconds_total": {"node_cpu_seconds_total"}}
    assert unknown_names(['up{job="engine"}', "engine_venue_up == 0"]) == {}


def test_label_checker_catches_wrong_labels() -> None:
    assert label_problems('engine_venue_up{venue=~"$venue"}', "{{venue}}") == []
    assert label_problems('engine_venue_up{strategy="mm"}') == ["engine_venue_up has no label 'strategy'"]
    assert label_problems("sum by (code) (rate(engine_fills_total[5m]))") != []
    assert label_problems("engine_realized_pnl", "{{stratgy}}") != []
    assert label_problems("histogram_quantile(0.5, sum by (le) (rate(engine_tick_to_order_seconds_bucket[1m])))") == []


def test_nested_row_panels_are_collected() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "title": "Hidden", "collapsed": True,
             "panels": [{"type": "timeseries", "targets": [{"expr": "engine_bogus_series"}]}]},
        ],
        "templating": {"list": [{"type": "query", "query": {"query": "label_values(engine_other_bogus, x)"}}]},
    }
    exprs = [expr for expr, _ in dashboard_queries(dashboard)]
    assert set(unknown_names(exprs)) == {"engine_bogus_series", "label_values(engine_other_bogus, x)"}
    assert [p["targets"][0]["expr"] for p in rows_with_panels(dashboard)["Hidden"]] == ["engine_bogus_series"]


# ------------------------------------------------------------------------------------------------
# Grafana


def test_dashboard_queries_name_only_catalogue_series() -> None:
    queries = dashboard_queries(load_dashboard())
    exprs = [expr for expr, _ in queries]
    assert len(exprs) >= 30 and all(expr.strip() for expr in exprs)
    assert unknown_names(exprs) == {}
    used = set().union(*(promql_names(expr) for expr in exprs))
    assert used - exported_names() <= PROMETHEUS_BUILTINS


def test_dashboard_labels_exist_on_their_series() -> None:
    problems = {expr: p for expr, legend in dashboard_queries(load_dashboard()) if (p := label_problems(expr, legend))}
    assert problems == {}


def test_dashboard_has_every_row_of_the_issue_and_none_is_empty() -> None:
    rows = rows_with_panels(load_dashboard())
    titles = {title.lower(): title for title in rows}
    wanted = {
        "market data": ("market data",),
        "orders and rejects": ("orders", "rejects"),
        "latency": ("latency",),
        "risk": ("risk",),
        "venues": ("venue",),
        "pnl": ("pnl",),
    }
    for row, words in wanted.items():
        matching = [title for lower, title in titles.items() if all(word in lower for word in words)]
        assert matching, f"no dashboard row for {row!r}; rows: {sorted(rows)}"
        assert any(panel.get("targets") for panel in rows[matching[0]]), f"row {matching[0]!r} has no queries"


def test_dashboard_shows_every_series_the_issue_asks_for() -> None:
    dashboard = load_dashboard()
    exprs = [expr for expr, _ in dashboard_queries(dashboard)]
    used = {base_metric(name) for expr in exprs for name in promql_names(expr)}
    wanted = {
        "engine_events", "engine_orders_submitted", "engine_orders_final", "engine_rejects", "engine_open_orders",
        "engine_fills", "engine_hook_duration_seconds", "engine_tick_to_order_seconds",
        "engine_event_loop_lag_seconds", "engine_mmp_triggers", "engine_rate_limit_headroom",
        "engine_rate_limit_refusals", "engine_kill_switch_state", "engine_strategy_state", "engine_hook_errors",
        "engine_hook_overruns", "engine_account_cash", "engine_venue_up", "engine_venue_state",
        "engine_venue_disconnects", "engine_realized_pnl", "engine_unrealized_pnl", "engine_position_shares",
    }
    assert wanted - used == set()
    for histogram in ("engine_hook_duration_seconds_bucket", "engine_tick_to_order_seconds_bucket"):
        quantiles = {
            match for expr in exprs if histogram in expr
            for match in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)
        }
        assert {"0.5", "0.99"} <= quantiles, histogram
    hook_p = [expr for expr in exprs if "engine_hook_duration_seconds_bucket" in expr and "histogram_quantile" in expr]
    assert all(re.search(r"by \(le, strategy, hook\)", expr) for expr in hook_p)


def test_dashboard_uses_the_provisioned_datasource_everywhere() -> None:
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    uid = datasource["uid"]
    assert uid
    raw = DASHBOARD.read_text(encoding="utf-8")
    assert "${DS_" not in raw and "__inputs" not in raw  # import would ask for a datasource
    dashboard = load_dashboard()
    panels = [p for p in iter_panels(dashboard["panels"]) if p.get("type") != "row"]
    assert panels
    for panel in panels:
        assert panel.get("datasource", {}).get("uid") == uid, panel.get("title")
        assert panel.get("targets"), panel.get("title")
        for target in panel["targets"]:
            assert target.get("datasource", {"uid": uid}).get("uid") == uid, panel.get("title")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid


def test_dashboard_template_variables_filter_the_queries() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"strategy", "venue"} <= set(variables)
    exprs = [expr for expr, _ in dashboard_queries(dashboard)]
    for name in ("strategy", "venue"):
        variable = variables[name]
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = LABEL_VALUES.match(query)
        assert match and match.group(2) == name, query
        (series,) = promql_names(query)
        assert name in labels_of(series)
        assert variable.get("includeAll") and variable.get("allValue") == ".*"  # "All" must match everything
        assert any(f'{name}=~"${name}"' in expr for expr in exprs), f"${name} filters nothing"


def test_dashboard_layout_is_importable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None  # a fixed id clashes on import
    panels = list(iter_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]


def test_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text(encoding="utf-8"))
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    mounts = compose_mounts("grafana")
    assert mounts[entry["options"]["path"]] == DASHBOARD.parent.resolve()
    assert mounts["/etc/grafana/provisioning/datasources"] == DATASOURCES.parent.resolve()
    assert mounts["/etc/grafana/provisioning/dashboards"] == DASHBOARD_PROVIDER.parent.resolve()


# ------------------------------------------------------------------------------------------------
# Prometheus

REQUIRED_ALERTS = {
    "EngineVenueDisconnected": "engine_venue_up",
    "EngineMMPTriggered": "engine_mmp_triggers_total",
    "EngineVenueMarginCall": "engine_venue_account_events_total",
    "EngineRejectRateHigh": "engine_rejects_total",
    "EngineStrategyFailed": "engine_strategy_state",
    "EngineKillSwitchNotActive": "engine_kill_switch_state",
    "EngineEventLoopLagHigh": "engine_event_loop_lag_seconds",
    "EngineDown": "up",
    "EngineMetricsStale": "engine_metrics_age_seconds",
}


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_alerts_name_only_catalogue_series() -> None:
    rules = alert_rules()
    exprs = [rule["expr"] for rule in rules]
    assert exprs and unknown_names(exprs) == {}
    problems = {expr: p for expr in exprs if (p := label_problems(expr))}
    assert problems == {}


def test_every_alert_has_severity_summary_and_description() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_alerts_cover_the_required_conditions() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name, series in REQUIRED_ALERTS.items():
        assert name in rules, f"missing alert {name}"
        assert series in promql_names(rules[name]["expr"]), name
    expr = lambda name: " ".join(rules[name]["expr"].split())  # noqa: E731
    assert expr("EngineVenueDisconnected") == "engine_venue_up == 0"
    assert rules["EngineVenueDisconnected"]["for"] == "30s"
    assert expr("EngineStrategyFailed") == 'engine_strategy_state{state="failed"} == 1'
    assert expr("EngineKillSwitchNotActive") == 'engine_kill_switch_state{state="active"} == 0'
    assert expr("EngineDown") == 'up{job="engine"} == 0'
    assert "increase(engine_mmp_triggers_total" in expr("EngineMMPTriggered")


def test_prometheus_scrapes_the_engine_every_5s_and_loads_the_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "engine"]
    assert job.get("scrape_interval", config["global"].get("scrape_interval")) == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert targets == ["engine:9310"]  # the compose service and the engine's fixed port
    assert "engine" in compose()["services"]
    assert config["rule_files"]
    mounts = compose_mounts("prometheus")
    config_in_container = next(arg.split("=", 1)[1] for arg in compose()["services"]["prometheus"]["command"]
                               if arg.startswith("--config.file="))
    assert mounts[config_in_container] == PROMETHEUS.resolve()
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).resolve() == ALERTS.resolve()
        in_container = posixpath.join(posixpath.dirname(config_in_container), rule_file)
        assert mounts[in_container] == ALERTS.resolve()


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian package prometheus: apt-get install -y prometheus)")
    return found


def test_promtool_accepts_config_and_rules() -> None:
    tool = promtool()
    for args in (["check", "config", str(PROMETHEUS)], ["check", "rules", str(ALERTS)]):
        result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


# Behaviour of each rule on synthetic series (promtool test rules). Annotations are stripped from a copy
# of the rules, since promtool compares them verbatim; `promtool check rules` validated their templates.
TARGET = 'job="engine", instance="engine:9310"'
RULE_CASES: list[dict[str, Any]] = [
    {"input": [(f"up{{{TARGET}}}", "1 0x12")],
     "alerts": {("EngineDown", "25s"): [], ("EngineDown", "45s"): [{"severity": "critical", "job": "engine",
                                                   "instance": "engine:9310"}]}},
    {"input": [(f"engine_metrics_age_seconds{{{TARGET}}}", "1 60x12")],
     "alerts": {("EngineMetricsStale", "45s"): [{"severity": "critical", "job": "engine",
                                                  "instance": "engine:9310"}]}},
    {"input": [(f"engine_metrics_age_seconds{{{TARGET}}}", "1x12")],
     "alerts": {("EngineMetricsStale", "55s"): []}},
    {"input": [(f'engine_venue_up{{{TARGET}, venue="paper"}}', "1 0x12"),
               (f'engine_venue_up{{{TARGET}, venue="other"}}', "1x12")],
     "alerts": {("EngineVenueDisconnected", "30s"): [],
                ("EngineVenueDisconnected", "40s"): [{"severity": "critical", "job": "engine",
                                                       "instance": "engine:9310", "venue": "paper"}]}},
    {"input": [(f'engine_mmp_triggers_total{{{TARGET}, strategy="mm"}}', "0 0 0 1 1x30")],
     "alerts": {("EngineMMPTriggered", "10s"): [],
                ("EngineMMPTriggered", "20s"): [{"severity": "warning", "strategy": "mm"}],
                ("EngineMMPTriggered", "150s"): []}},
    {"input": [(f'engine_venue_account_events_total{{{TARGET}, venue="psx", kind="margin_call"}}', "0 0 0 1 1x40"),
               (f'engine_venue_account_events_total{{{TARGET}, venue="psx", kind="account_alert"}}', "0 1 2 3x40")],
     "alerts": {("EngineVenueMarginCall", "10s"): [],
                ("EngineVenueMarginCall", "20s"): [{"severity": "critical", "venue": "psx"}],
                ("EngineVenueMarginCall", "400s"): []}},
    # half of the requests refused: fires; also with no submissions at all (the `or` branch)
    {"input": [(f'engine_rejects_total{{{TARGET}, strategy="mm", code="2003"}}', "0+1x60"),
               (f'engine_orders_submitted_total{{{TARGET}, strategy="mm", venue="paper"}}', "0+1x60"),
               (f'engine_rejects_total{{{TARGET}, strategy="momentum", code="4001"}}', "0+1x60")],
     "alerts": {("EngineRejectRateHigh", "240s"): [{"severity": "warning", "strategy": "mm"},
                                                    {"severity": "warning", "strategy": "momentum"}]}},
    # 1 % refused, or too few rejects to matter: quiet
    {"input": [(f'engine_rejects_total{{{TARGET}, strategy="mm", code="2003"}}', "0+1x60"),
               (f'engine_orders_submitted_total{{{TARGET}, strategy="mm", venue="paper"}}', "0+100x60"),
               (f'engine_rejects_total{{{TARGET}, strategy="momentum", code="4001"}}', "0 1 2x58")],
     "alerts": {("EngineRejectRateHigh", "240s"): []}},
    {"input": [(f'engine_strategy_state{{{TARGET}, strategy="mm", state="failed"}}', "0 0 1 1"),
               (f'engine_strategy_state{{{TARGET}, strategy="mm", state="running"}}', "1 1 0 0"),
               (f'engine_strategy_state{{{TARGET}, strategy="momentum", state="failed"}}', "0 0 0 0")],
     "alerts": {("EngineStrategyFailed", "5s"): [],
                ("EngineStrategyFailed", "10s"): [{"severity": "critical", "job": "engine",
                                                    "instance": "engine:9310", "strategy": "mm", "state": "failed"}]}},
    {"input": [(f'engine_kill_switch_state{{{TARGET}, state="active"}}', "1 1 0 0"),
               (f'engine_kill_switch_state{{{TARGET}, state="halted"}}', "0 0 1 1")],
     "alerts": {("EngineKillSwitchNotActive", "5s"): [],
                ("EngineKillSwitchNotActive", "10s"): [{"severity": "critical", "job": "engine",
                                                         "instance": "engine:9310", "state": "active"}]}},
    {"input": [(f"engine_event_loop_lag_seconds{{{TARGET}}}", "0.5x40")],
     "alerts": {("EngineEventLoopLagHigh", "150s"): [{"severity": "warning", "job": "engine",
                                                       "instance": "engine:9310"}]}},
    {"input": [(f"engine_event_loop_lag_seconds{{{TARGET}}}", "0.01x40")],
     "alerts": {("EngineEventLoopLagHigh", "150s"): []}},
]


def test_alert_rules_fire_on_the_conditions_they_name(tmp_path: Path) -> None:
    tool = promtool()
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_file = tmp_path / "alerts.yml"
    rules_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    tests = []
    for case in RULE_CASES:
        tests.append({
            "interval": "5s",
            "input_series": [{"series": series, "values": values} for series, values in case["input"]],
            "alert_rule_test": [
                {"eval_time": at, "alertname": name, "exp_alerts": [{"exp_labels": labels} for labels in alerts]}
                for (name, at), alerts in case["alerts"].items()
            ],
        })
    covered = {name for case in RULE_CASES for name, _ in case["alerts"]}
    assert covered == set(REQUIRED_ALERTS)
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "5s",
                                         "tests": tests}), encoding="utf-8")
    result = subprocess.run([tool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# Compose and Docker


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (named volumes left out)."""
    mounts = {}
    for volume in compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def test_compose_runs_engine_prometheus_grafana_from_files_in_the_repo() -> None:
    services = compose()["services"]
    assert {"engine", "prometheus", "grafana"} <= set(services)
    for name in services:
        for target, source in compose_mounts(name).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is not in the repository"
    build = services["engine"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO and (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert any(str(port).endswith("9310:9310") for port in services["engine"]["ports"])
    assert services["engine"]["stop_signal"] == "SIGTERM"


def test_compose_engine_runs_the_docker_config_with_its_strategies() -> None:
    engine = compose()["services"]["engine"]
    mounts = compose_mounts("engine")
    command = engine.get("command") or dockerfile_json("CMD")
    config_in_container = command[command.index("run") + 1]
    assert mounts[config_in_container] == DOCKER_CONFIG.resolve()
    config = yaml.safe_load(DOCKER_CONFIG.read_text(encoding="utf-8"))
    for strategy in config["strategies"]:
        in_container = posixpath.normpath(posixpath.join(posixpath.dirname(config_in_container), strategy["file"]))
        mounted = [(target, source) for target, source in mounts.items() if in_container.startswith(target + "/")]
        assert mounted, f"{in_container} is not mounted"
        target, source = mounted[0]
        assert (source / posixpath.relpath(in_container, target)).is_file()


def test_docker_config_is_config_yaml_in_real_time_listening_on_all_interfaces() -> None:
    original = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    docker = yaml.safe_load(DOCKER_CONFIG.read_text(encoding="utf-8"))
    assert docker.pop("metrics") == {"listen": "0.0.0.0:9310"}
    assert docker["run"].pop("clock") == "wall"
    original["run"].pop("clock")
    for ours, theirs in zip(docker["strategies"], original["strategies"], strict=True):
        assert (DOCKER_CONFIG.parent / ours.pop("file")).resolve() == (REPO / theirs.pop("file")).resolve()
    assert docker == original  # nothing else changed


def test_docker_config_validates() -> None:
    from engine.config import EngineConfig, load_config

    if "metrics" not in EngineConfig.model_fields:
        pytest.skip("engine.config has no metrics section yet")
    loaded = load_config(DOCKER_CONFIG)
    assert loaded.config.run.clock == "wall"
    assert str(loaded.config.metrics.listen) == "0.0.0.0:9310"
    for strategy in loaded.config.strategies:
        assert loaded.resolve(strategy.file).is_file()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def dockerfile_json(keyword: str) -> list[str]:
    (args,) = [args for kw, args in dockerfile_instructions() if kw == keyword]
    return json.loads(args)


def test_dockerfile_non_root_healthcheck_stopsignal_entrypoint() -> None:
    instructions = dockerfile_instructions()
    keywords = [kw for kw, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [args for kw, args in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    (healthcheck,) = [args for kw, args in instructions if kw == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "9310" in healthcheck and "curl" not in healthcheck
    assert healthcheck.split("CMD", 1)[1].strip().startswith('["python"')
    assert [args for kw, args in instructions if kw == "STOPSIGNAL"] == ["SIGTERM"]
    assert dockerfile_json("ENTRYPOINT") == ["engine"]
    cmd = dockerfile_json("CMD")
    assert cmd[0] == "run"
    assert pip_installs_of_the_repository(), "the image does not pip install this repository"
    # the config the CMD runs is the one the image copies in
    copies = {shlex.split(args)[-1]: shlex.split(args)[0] for kw, args in instructions if kw == "COPY"}
    (workdir,) = [args for kw, args in instructions if kw == "WORKDIR"]
    in_image = {posixpath.normpath(posixpath.join(workdir, dest)): src for dest, src in copies.items()}
    assert in_image[cmd[1]] == "deploy/config.docker.yaml"


def pip_installs_of_the_repository() -> list[set[str]]:
    """The extras of every ``pip install .`` / ``pip install ".[a,b]"`` of the build context in a RUN."""
    installs = []
    for keyword, args in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            for word in words[2:]:
                match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
                if match:
                    installs.append(set(filter(None, (match.group(1) or "").split(","))))
    return installs


def test_dockerfile_installs_the_nats_extra_for_the_bus() -> None:
    """The image runs ``engine feed`` and engines on ``market_data: bus``: both import nats-py,
    which only the ``nats`` extra installs (without it the feed exits at start naming the extra)."""
    import tomllib

    assert any("nats" in extras for extras in pip_installs_of_the_repository())
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(dep.startswith("nats-py") for dep in project["optional-dependencies"]["nats"])


def test_dockerfile_copies_exist_and_are_not_docker_ignored() -> None:
    ignored = [
        line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".venv", ".git", "**/__pycache__", "reports"):
        assert required in ignored
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY":
            continue
        for source in shlex.split(args)[:-1]:
            assert (REPO / source).exists(), source
            assert not any(source == pattern or source.startswith(pattern + "/") for pattern in ignored), source


# ------------------------------------------------------------------------------------------------
# systemd unit


def load_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_systemd_unit_is_notify_with_watchdog_and_graceful_stop() -> None:
    unit = load_unit()
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) == 30
    assert service["Restart"] == "on-failure"
    assert int(service["RestartSec"]) == 5
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) == 60
    assert service["User"] and service["User"] not in {"root", "0"}
    assert "AF_UNIX" in service.get("RestrictAddressFamilies", "AF_UNIX")  # the notify socket
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].startswith("/") and exec_start[0].endswith("/engine") and exec_start[1] == "run"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_is_hardened_but_can_write_its_working_directory() -> None:
    service = load_unit()["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["ProtectHome"] in {"yes", "read-only", "tmpfs"}
    workdir = service["WorkingDirectory"]
    assert workdir.startswith("/") and workdir in service["ReadWritePaths"].split()
    # the config (and the pid file written next to it) is inside the writable directory
    config = shlex.split(service["ExecStart"])[2]
    assert config.startswith(workdir + "/")


# ------------------------------------------------------------------------------------------------
# engine/systemd.py: the sd_notify client


def short_dir(tmp_path: Path) -> Path:
    """AF_UNIX paths are limited to ~107 bytes; fall back to a short folder when tmp_path is deep."""
    if len(str(tmp_path / "notify.sock")) < 100:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="sd", dir="/tmp"))


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, named by NOTIFY_SOCKET."""
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no AF_UNIX sockets on this platform")
    path = short_dir(tmp_path) / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_module_functions_send_the_exact_datagrams(receiver: socket.socket) -> None:
    assert systemd.ready() is True
    assert receiver.recv(4096) == b"READY=1"
    assert systemd.ready("trading: 2 strategies") is True
    assert receiver.recv(4096) == b"READY=1\nSTATUS=trading: 2 strategies"
    assert systemd.status("session open\nREADY=1") is True  # a newline must not smuggle in a field
    assert receiver.recv(4096) == b"STATUS=session open READY=1"
    assert systemd.watchdog() is True
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert systemd.stopping() is True
    assert receiver.recv(4096) == b"STOPPING=1"
    assert systemd.stopping("cancelling open orders") is True
    assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=cancelling open orders"
    assert systemd.notify("EXTEND_TIMEOUT_USEC=5000000") is True
    assert receiver.recv(4096) == b"EXTEND_TIMEOUT_USEC=5000000"


def test_notifier_instance_from_env(receiver: socket.socket) -> None:
    notifier = systemd.Notifier.from_env()
    assert notifier.enabled
    assert notifier.watchdog() and notifier.watchdog()
    assert [receiver.recv(4096), receiver.recv(4096)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
    notifier.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"engine-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.ready("up") is True
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_no_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)

    def no_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was created without NOTIFY_SOCKET")

    monkeypatch.setattr(systemd.socket, "socket", no_socket)
    for call in (systemd.ready, systemd.watchdog, systemd.stopping, lambda: systemd.status("x")):
        assert call() is False
    assert systemd.Notifier(None).enabled is False
    assert systemd.Notifier("").notify("READY=1") is False


def test_missing_socket_never_raises_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = short_dir(tmp_path) / "absent.sock"
    notifier = systemd.Notifier(str(path))
    assert notifier.enabled
    with caplog.at_level(logging.DEBUG, logger="engine.systemd"):
        assert notifier.ready() is False
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
    warnings = [r for r in caplog.records if r.name == "engine.systemd" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    # once the socket exists, the same notifier gets through
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        assert notifier.watchdog() is True
        assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_unsupported_address_is_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.systemd"):
        notifier = systemd.Notifier("vsock:2:1234")
    assert notifier.enabled is False and notifier.ready() is False
    assert any("vsock" in record.getMessage() for record in caplog.records)


def test_watchdog_interval() -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    assert systemd.watchdog_interval(env, pid=123) == 15.0
    assert systemd.watchdog_interval({**env, "WATCHDOG_PID": "123"}, pid=123) == 15.0
    assert systemd.watchdog_interval({**env, "WATCHDOG_PID": "456"}, pid=123) is None
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "1000"}, pid=1) == 0.0005
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "0"}, pid=1) is None
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "soon"}, pid=1) is None
    assert systemd.watchdog_interval({"NOTIFY_SOCKET": "/x"}, pid=1) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid=1) is None  # nothing to ping


def test_watchdog_interval_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval() is None


def test_compose_runs_nats_with_jetstream_on_loopback() -> None:
    nats = compose()["services"]["nats"]
    assert "-js" in nats["command"] and any(str(port) == "127.0.0.1:4222:4222" for port in nats["ports"])


def test_systemd_feed_unit_runs_engine_feed_after_nats() -> None:
    import configparser

    for name, needle in (("engine-feed.service", "engine feed "), ("nats.service", "nats-server ")):
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(DEPLOY / "systemd" / name)
        assert needle in unit["Service"]["ExecStart"].replace("/opt/engine/.venv/bin/", "")
        assert unit["Service"]["User"] == "engine"
    feed = configparser.ConfigParser(interpolation=None, strict=False)
    feed.read(DEPLOY / "systemd" / "engine-feed.service")
    assert "nats.service" in feed["Unit"]["Requires"]
    # the feed says READY=1 once publishing and pings the watchdog (tests/e2e/test_bus_nats.py)
    assert feed["Service"]["Type"] == "notify" and int(feed["Service"]["WatchdogSec"]) > 0


def test_compose_default_services_are_unchanged_and_the_feed_is_behind_the_bus_profile() -> None:
    """``docker compose up`` starts what it always did; ``--profile bus`` adds the feed alone."""
    services = compose()["services"]
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"engine", "nats", "prometheus", "grafana"}
    assert {name: services[name]["profiles"] for name in set(services) - default} == {"feed": ["bus"]}
    assert not any(dep == "feed" for service in services.values() for dep in service.get("depends_on") or [])


def test_compose_feed_runs_engine_feed_on_the_nats_service() -> None:
    services = compose()["services"]
    feed, engine, nats = services["feed"], services["engine"], services["nats"]
    assert feed["image"] == engine["image"] and feed["build"] == engine["build"]  # the one image
    command = feed["command"]
    assert command[0] == "feed"
    url = command[command.index("--nats") + 1]
    assert re.fullmatch(r"nats://nats:(\d+)", url), url  # the service's name on the compose network
    assert url.endswith(":4222") and "-p" not in nats["command"]  # nats-server's default port
    assert "nats" in (feed.get("depends_on") or [])
    assert "ports" not in feed  # the feed only talks to NATS and its venue
    # the image's HEALTHCHECK asks the engine's metrics port, which the feed does not serve
    assert feed["healthcheck"] == {"disable": True}
    assert feed["stop_signal"] == "SIGTERM"
    mounts = compose_mounts("feed")
    assert mounts[command[1]] == FEED_CONFIG.resolve()


def test_compose_feed_config_is_a_feed_whose_secret_comes_from_the_environment() -> None:
    """The sample feed config loads, builds its venue's market-data adapter the way ``engine feed``
    does (no connection), and names its token only as a variable compose passes in."""
    from engine.bus.feed import FeedSettings, build_feeds
    from engine.config import load_config

    loaded = load_config(FEED_CONFIG)
    ((adapter, publisher, symbols),) = build_feeds(loaded, FeedSettings(), epoch=1)
    assert adapter.name == "psx_feed" and publisher.venue == "psx" and len(symbols) == 6
    options = loaded.config.venues["psx"].market_data.options
    assert options["max_connections"] == 1 and "token" not in options
    assert options.get("preset") in {"staging", "production"}  # wss:// only: no clear-text token
    environment = compose()["services"]["feed"]["environment"]
    assert options["token_env"] in environment
    assert environment[options["token_env"]].startswith("${")  # the host's value, not one written here
    account = loaded.config.venues["psx"]
    assert account.account is not None and account.rate_limits  # what --engines checks shares against
    # the image holds the same file at the path compose mounts it on
    copies = {shlex.split(args)[-1]: shlex.split(args)[0] for kw, args in dockerfile_instructions() if kw == "COPY"}
    assert copies["./deploy/feed.docker.yaml"] == "deploy/feed.docker.yaml"
