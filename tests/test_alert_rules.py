"""The Prometheus files docs/deploy.md gives (issue 20 point 3): the scrape configuration and
the sample alert rules parse as YAML in Prometheus's rule-file shape, every metric a rule
reads is one carebot exports (named in the page's metrics table and written by its code),
and a Telegram outage has its rule. promtool is not on a Debian server by default, so the
shape Prometheus loads is checked here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
# Prometheus's duration: 1y2w3d4h5m6s7ms, at least one part.
DURATION = re.compile(r"(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def yaml_after(marker: str) -> Any:
    """The first ```yaml block after ``marker`` in deploy.md, parsed."""
    start = DEPLOY.index(marker)
    block = re.search(r"```yaml\n(.*?)```", DEPLOY[start:], re.DOTALL)
    assert block is not None, marker
    return yaml.safe_load(block.group(1))


def rules() -> list[dict[str, Any]]:
    doc = yaml_after("Sample alerts — `/etc/prometheus/rules/carebot.yml`")
    assert isinstance(doc, dict) and set(doc) == {"groups"}, doc
    groups = doc["groups"]
    assert [g["name"] for g in groups] == sorted({g["name"] for g in groups})
    return [rule for group in groups for rule in group["rules"]]


def exported_metrics() -> set[str]:
    """The metrics the page's table documents and carebot's code writes."""
    table = set(re.findall(r"^\| `(carebot_\w+)", DEPLOY, re.MULTILINE))
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    return {name for name in table if f'"{name}"' in code}


def test_the_rules_file_has_prometheus_shape() -> None:
    found = rules()
    assert found
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)), names
    for rule in found:
        assert set(rule) <= RULE_KEYS, rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule
        if "for" in rule:
            assert DURATION.fullmatch(str(rule["for"])), rule
        for text in rule.get("annotations", {}).values():
            assert text.count("{{") == text.count("}}"), rule


def test_every_metric_a_rule_reads_is_exported() -> None:
    exported = exported_metrics()
    assert {"carebot_up", "carebot_telegram_up", "carebot_updates_lag_seconds"} <= exported
    for rule in rules():
        for name in re.findall(r"\bcarebot_\w+", rule["expr"]):
            assert name in exported, (rule["alert"], name)


def test_a_telegram_outage_has_its_rule() -> None:
    outage = [r for r in rules() if "carebot_telegram_up" in r["expr"]]
    assert outage, "no rule fires when Telegram cannot be reached"
    assert "== 0" in outage[0]["expr"]


def test_the_scrape_configuration_parses() -> None:
    doc = yaml_after("Scrape each instance directly — `/etc/prometheus/prometheus.yml`")
    job = doc["scrape_configs"][0]
    assert job["job_name"] == "carebot"
    assert DURATION.fullmatch(job["scrape_interval"])
    assert job["authorization"]["type"] == "Bearer"
    assert all(re.fullmatch(r"[\w.-]+:\d+", t) for t in job["static_configs"][0]["targets"])
