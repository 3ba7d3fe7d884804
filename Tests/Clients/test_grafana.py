"""The chart's Grafana dashboard: opt-in, labelled for Grafana's sidecar, valid Kubernetes, and
every PromQL expression parses (promql-parser) and names only metrics and labels a running node
exports on /metrics."""
import json
import re
import urllib.request

import kubernetes_validate
import promql_parser

from conftest import call
from test_helm_chart import KUBE_VERSION, render


def dashboard_configmaps(values):
    return [doc for (kind, _), doc in render(values).items() if kind == "ConfigMap" and doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]


def test_the_dashboard_is_opt_in_labelled_and_valid():
    assert dashboard_configmaps({}) == [], "off unless asked for"
    [configmap] = dashboard_configmaps({"grafana": {"dashboard": {"enabled": True}}})
    kubernetes_validate.validate(configmap, KUBE_VERSION, strict=True)
    [(name, text)] = configmap["data"].items()
    assert name.endswith(".json")
    dashboard = json.loads(text)
    assert len(dashboard["panels"]) >= 4
    assert all(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])


def expressions():
    [configmap] = dashboard_configmaps({"grafana": {"dashboard": {"enabled": True}}})
    dashboard = json.loads(next(iter(configmap["data"].values())))
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = []
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable.get("query", "") if isinstance(variable.get("query"), str) else "")
        if match:
            variables.append((match.group(1), match.group(2)))
    return found, variables


def selectors(node, grouping=None):
    """(metric, matcher labels) of every vector selector, and every `by (...)` label list with
    the metrics under it."""
    grouping = [] if grouping is None else grouping
    found = []
    kind = type(node).__name__
    if kind == "VectorSelector":
        found.append((node.name, [m.name for m in node.matchers.matchers]))
        return found
    inner = []
    for attribute in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (int, float, str)):
            inner += selectors(child, grouping)
    for child in getattr(node, "args", None) or []:
        inner += selectors(child, grouping)
    if kind == "AggregateExpr" and node.modifier is not None:
        grouping.append((list(node.modifier.labels), [name for name, _ in inner]))
    return found + inner


def exported(base):
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    labels = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*)\})?\s", line)
        if match:
            labels.setdefault(match.group(1), set()).update(re.findall(r'(\w+)="', match.group(3) or ""))
    return labels


def test_every_expression_names_only_what_the_node_exports(node, tenant):
    # Traffic first, so the per-request series exist.
    for _ in range(3):
        urllib.request.urlopen(urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/labels", headers={"apikey": tenant["serviceKey"]})).read()
    metrics = exported(node.base)
    found, variables = expressions()
    assert found and variables
    for expression in found:
        grouping = []
        for name, matcher_labels in selectors(promql_parser.parse(expression), grouping):
            assert name in metrics, f"{name} (in {expression}) is not on /metrics"
            assert set(matcher_labels) <= metrics[name], f"{name} has no label {set(matcher_labels) - metrics[name]}"
        for labels, names in grouping:
            available = set().union(*(metrics[name] for name in names))
            assert set(labels) <= available, f"by ({', '.join(labels)}) over {names} in {expression}"
    for metric, label in variables:
        assert metric in metrics and label in metrics[metric], (metric, label)
    assert "minibaas_http_requests_total" in metrics and "minibaas_http_request_duration_seconds_bucket" in metrics
