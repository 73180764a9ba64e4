"""The OTLP examples stay honest: the README's ``[otlp]`` table and the commented one in
exporter.toml.example load as they are, and examples/otel-collector.yaml receives what the
exporter sends (OTLP/HTTP on the port the examples push to, into a metrics pipeline)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from loxone_trio_exporter.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
MINISERVER = {"name": "home", "host": "ms", "username": "u", "password": "p"}


def otlp_table(toml_text: str) -> dict[str, object]:
    table: dict[str, object] = tomllib.loads(toml_text)["otlp"]
    return table


def readme_otlp_table() -> dict[str, object]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Pushing to OpenTelemetry (OTLP)", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    return otlp_table(block)


def example_otlp_table() -> dict[str, object]:
    text = (ROOT / "exporter.toml.example").read_text("utf-8")
    commented = text[text.index("# [otlp]") :].splitlines()
    # The table and its keys, uncommented; the comment lines in between are prose.
    lines = [line[2:] for line in commented if re.match(r"# (\[otlp\]|[a-z_]+ = )", line)]
    return otlp_table("\n".join(lines))


def test_the_documented_tables_load() -> None:
    for table in (readme_otlp_table(), example_otlp_table()):
        config = config_from_dict({"miniserver": [MINISERVER], "otlp": table}, {"HOME": "/h"})
        assert config.otlp is not None
        assert set(table) == {
            "endpoint",
            "interval_seconds",
            "timeout_seconds",
            "compression",
            "service_name",
            "service_instance_id",
            "headers",
        }


def test_the_collector_example_receives_otlp_http_into_a_metrics_pipeline() -> None:
    document = yaml.safe_load((ROOT / "examples" / "otel-collector.yaml").read_text("utf-8"))
    http = document["receivers"]["otlp"]["protocols"]["http"]
    host, _, port = http["endpoint"].rpartition(":")
    assert port == "4318"  # the OTLP/HTTP port the examples push to
    pipeline = document["service"]["pipelines"]["metrics"]
    assert "otlp" in pipeline["receivers"]
    for name in pipeline["exporters"]:
        assert name in document["exporters"]
    for name in pipeline.get("processors", []):
        assert name in document["processors"]
    for table in (readme_otlp_table(), example_otlp_table()):
        assert urlsplit(str(table["endpoint"])).port == int(port)
    assert host == "127.0.0.1"
