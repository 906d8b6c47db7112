#!/usr/bin/env python3
"""Fails when a CloudWatch dashboard in template.yaml names a metric the functions do not write.

CloudWatch matches a metric by namespace, name and the exact set of its dimensions, so a
misspelt name, a wrong namespace or a dimension the EMF line does not carry draws an empty
graph, silently. Every metric of an `AWS::CloudWatch::Dashboard` body (the `metrics` rows and
the `SEARCH` expressions) must therefore be:
- in an `IssuerKit/...` namespace: a (namespace, metric) of `shared/src/metrics.rs` `CATALOG`,
  the list every EMF line is checked against when it is written (in every test build), with
  dimensions that are `Function` alone or `Function` and the other dimension of that line
  (the rollups the emitters publish);
- in an `AWS/...` namespace: one of AWS_METRICS below, with its dimension.
Also: a `Function` dimension value is one of the template's `Mappings.Functions` (the names the
functions write), each widget names at least one metric, the body is JSON once `!Sub` has substituted it,
and every `${...}` it substitutes is a parameter, a resource or a pseudo parameter.

Usage: check_dashboard_metrics.py [template.yaml] [shared/src/metrics.rs]
"""
import json
import re

from check_report import report, run
from expand_template import expanded, load

# The AWS service metrics a dashboard may use (namespace, metric) -> dimension names.
AWS_METRICS = {
    ("AWS/Lambda", "Errors"): {"FunctionName"},
    ("AWS/Lambda", "Invocations"): {"FunctionName"},
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): {"QueueName"},
}

CATALOG_BLOCK = re.compile(r"pub const CATALOG: &\[MetricSet\] = &\[(?P<body>.*?)\n\];", re.S)
METRIC_SET = re.compile(
    r"MetricSet\s*\{\s*namespace:\s*\"(?P<ns>[^\"]+)\",\s*"
    r"dimensions:\s*&\[(?P<dims>[^\]]*)\],\s*metrics:\s*&\[(?P<metrics>[^\]]*)\],?\s*\}",
    re.S,
)
STRING = re.compile(r"\"([^\"]*)\"")
SEARCH = re.compile(r"SEARCH\(\s*'(?P<query>(?:[^'\\]|\\.)*)'")
SCHEMA = re.compile(r"^\{(?P<schema>[^}]*)\}\s*(?P<rest>.*)$")
SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")


def catalog(path):
    """(namespace, metric) -> the set of dimension names of its EMF line, from CATALOG."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    block = CATALOG_BLOCK.search(text)
    if not block:
        raise ValueError(f"{path}: no `pub const CATALOG: &[MetricSet] = &[ ... ];`")
    body = re.sub(r"//[^\n]*", "", block.group("body"))
    sets = list(METRIC_SET.finditer(body))
    if not sets or len(sets) != body.count("MetricSet"):
        raise ValueError(f"{path}: CATALOG entries must be MetricSet {{ ... }} of string literals")
    known = {}
    for m in sets:
        dims = frozenset(STRING.findall(m.group("dims")))
        for metric in STRING.findall(m.group("metrics")):
            known.setdefault((m.group("ns"), metric), set()).add(dims)
    return known


def dashboard_bodies(template):
    """(logical id, Fn::Sub string) of every dashboard."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Dashboard":
            continue
        body = resource.get("Properties", {}).get("DashboardBody")
        if isinstance(body, dict) and "Fn::Sub" in body:
            sub = body["Fn::Sub"]
            yield logical_id, (sub if isinstance(sub, str) else sub[0])
        elif isinstance(body, str):
            yield logical_id, body
        else:
            raise ValueError(f"{logical_id}: DashboardBody must be a string or a !Sub string")


def metrics_of(widget):
    """(namespace, metric, dimension names, Function values, where) of one metric widget."""
    rows = widget.get("properties", {}).get("metrics", [])
    previous = None
    for row in rows:
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        plain = [v for v in row if not isinstance(v, dict)]
        if "expression" in options:
            for search in SEARCH.finditer(options["expression"]):
                query = search.group("query").replace("\\'", "'")
                schema = SCHEMA.match(query)
                if not schema:
                    raise ValueError(f"SEARCH without a {{namespace,dimensions}} schema: {query}")
                parts = [p.strip().strip('"') for p in schema.group("schema").split(",")]
                names = re.findall(r"MetricName\s*=\s*\"([^\"]+)\"", schema.group("rest"))
                if len(names) != 1:
                    raise ValueError(f"SEARCH must name exactly one MetricName=\"...\": {query}")
                functions = re.findall(r"\bFunction\s*=\s*\"([^\"]+)\"", schema.group("rest"))
                yield parts[0], names[0], frozenset(parts[1:]), functions, f"SEARCH {query}"
            continue
        if not plain:
            continue
        # The console's shorthand: "." repeats the previous row's value at that place.
        if previous:
            plain = [previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(plain)]
        previous = plain
        if len(plain) < 2 or len(plain) % 2:
            raise ValueError(f"metric row {row}: [namespace, name, (dimension, value)...]")
        dims = frozenset(plain[2::2])
        values = dict(zip(plain[2::2], plain[3::2]))
        functions = [values["Function"]] if "Function" in values else []
        yield plain[0], plain[1], dims, functions, f"row {row}"


def problems(template, known, parameters_and_resources, functions):
    found = []
    count = 0
    for logical_id, sub in dashboard_bodies(template):
        for var in SUB_VARIABLE.findall(sub):
            name = var.split(".")[0]
            if not (name.startswith("AWS::") or name in parameters_and_resources):
                found.append(f"{logical_id}: ${{{var}}} is no parameter, resource or pseudo parameter")
        try:
            body = json.loads(SUB_VARIABLE.sub("0", sub))
        except json.JSONDecodeError as e:
            found.append(f"{logical_id}: the dashboard body is not JSON: {e}")
            continue
        for i, widget in enumerate(body.get("widgets", [])):
            if widget.get("type") != "metric":
                continue
            title = widget.get("properties", {}).get("title", f"widget {i}")
            names = list(metrics_of(widget))
            if not names:
                found.append(f"{logical_id}: widget {title!r} names no metric")
            for namespace, metric, dims, function_values, where in names:
                count += 1
                for value in function_values:
                    if value not in functions:
                        found.append(
                            f"{logical_id}: {title!r}: Function={value!r} is not a function's "
                            f"EMF name (Mappings.Functions: {sorted(functions)}) ({where})"
                        )
                if namespace.startswith("AWS/"):
                    want = AWS_METRICS.get((namespace, metric))
                    if want is None:
                        found.append(
                            f"{logical_id}: {title!r}: {namespace} {metric} is not in AWS_METRICS ({where})"
                        )
                    elif dims != want:
                        found.append(
                            f"{logical_id}: {title!r}: {namespace} {metric} has dimensions "
                            f"{sorted(want)}, not {sorted(dims)}"
                        )
                    continue
                lines = known.get((namespace, metric))
                if lines is None:
                    found.append(
                        f"{logical_id}: {title!r}: metric {metric} in namespace {namespace} is not one "
                        f"the functions write (metrics::CATALOG) ({where})"
                    )
                    continue
                # The emitters publish the rollups [Function] and [Function, <other>].
                rollups = {frozenset({"Function"})} | set(lines)
                if dims not in rollups:
                    found.append(
                        f"{logical_id}: {title!r}: {namespace} {metric} is published by "
                        f"{sorted(sorted(r) for r in rollups)}, not by dimensions {sorted(dims)}"
                    )
    return found, count


def main(argv):
    template_path = argv[0] if argv else "template.yaml"
    catalog_path = argv[1] if len(argv) > 1 else "shared/src/metrics.rs"
    known = catalog(catalog_path)
    template = expanded(load(template_path))
    names = set(template.get("Parameters", {})) | set(template.get("Resources", {}))
    # The `Function` dimension values, as the alarms use them (webhook::Webhook::NAME and the
    # pipeline's and aritma's function names).
    functions = {v["Function"] for v in template.get("Mappings", {}).get("Functions", {}).values()}
    found, count = problems(template, known, names, functions)
    if not count and not found:
        found.append(f"{template_path}: no dashboard metric found")
    return report(
        found, f"{template_path}: the dashboard's {count} metrics are all written by the functions or AWS"
    )


if __name__ == "__main__":
    run(main)
