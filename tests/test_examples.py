"""The examples: decode_messages.py runs; the Prometheus, Grafana and alert files of
examples/ are checked with promtool and against each other and the exporter's real output.

tests/test_prometheus_integration.py runs a real Prometheus with them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml
from exporter_harness import miniserver, start_exporter, start_simulator
from tools import require_tool

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_decode_messages_example_prints_the_decoded_events():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "decode_messages.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("TextReply: ")
    assert lines[1].strip() == "ValueStatesReceived: 0f869a64-0200-0a9b-ffffd4c75dbaf53c = 21.5"
    assert "'hsv(42,76,77)'" in lines[2]
    assert lines[3] == "KeepaliveReceived: KeepaliveReceived()"


# --- Prometheus, Grafana and alerts (examples/compose.yml and what it mounts) -------------------

ROOT = EXAMPLES.parent
METRIC_NAME = re.compile(r"\b(?:loxone|up|ALERTS)\w*\b")


def load_yaml(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (EXAMPLES / "grafana" / "loxone-overview.json").read_text(encoding="utf-8")
    )
    return document


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml("alerts.yml")["groups"] for rule in group["rules"]]


def promtool(*arguments: str) -> str:
    result = subprocess.run(
        [require_tool("promtool"), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=EXAMPLES,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_promtool_accepts_the_alerting_rules():
    output = promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in output


def test_the_alert_unit_tests_pass_and_show_every_alert_firing_and_quiet():
    promtool("test", "rules", "alerts_test.yml")
    tests = load_yaml("alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert firing == names, "an alert is never shown firing"
    # Quiet: either a test time with no alert, or series that a firing test leaves out.
    assert quiet | {"LoxoneReconnectStorm"} == names
    storm = next(case for case in tests["tests"] if "reconnects" in case["name"])
    fired_for = {
        alert["exp_labels"]["miniserver"]
        for check in storm["alert_rule_test"]
        for alert in check["exp_alerts"]
    }
    given = {re.search(r'miniserver="(\w+)"', s["series"])[1] for s in storm["input_series"]}
    assert given - fired_for == {"office"}  # 7.5 reconnects in 15 minutes: below the threshold


def test_every_alert_has_a_severity_a_summary_and_a_description():
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        if not rule["alert"].startswith("LoxoneExporter"):
            assert "{{ $labels.miniserver }}" in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-compose.yml"])
def test_promtool_accepts_the_prometheus_configs_with_the_alerts(config: str):
    output = promtool("check", "config", config)
    assert "SUCCESS: 1 rule files found" in output
    assert f"SUCCESS: {len(alert_rules())} rules found" in output
    [job] = load_yaml(config)["scrape_configs"]
    assert job["job_name"] == "loxone"  # the job LoxoneExporterDown watches
    assert 'up{job="loxone"}' in {rule["expr"].split(" ==")[0] for rule in alert_rules()}


def test_the_dashboard_is_a_grafana_dashboard_on_a_datasource_variable():
    board = dashboard()
    assert board["schemaVersion"] == 39
    assert board["uid"] == "loxone-overview"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["miniserver"]["type"] == "query"
    assert variables["miniserver"]["query"]["query"] == "label_values(loxone_up, miniserver)"
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    assert variables["miniserver"]["datasource"] == datasource
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert set(range(grid["x"], grid["x"] + grid["w"])) <= set(range(24)), panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource, panel["title"]
            assert '=~"$miniserver"' in target["expr"], panel["title"]


def test_the_dashboard_has_the_panels_the_issue_asks_for():
    exprs = "\n".join(
        target["expr"]
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    )
    for needle in (
        "loxone_up{",
        "loxone_miniserver_info{",
        # Temperatures, power and energy in their typed families: no join with the info.
        "loxone_control_temperature_celsius{",
        "tempActual|value",
        "loxone_control_power_watts{",
        'control_type="Meter", state="actual"',
        "loxone_control_meter_energy_joules_total{",
        'control_type="Meter", state="total"',
        "rate(loxone_exporter_events_total{",
        "increase(loxone_exporter_reconnects_total{",
        "loxone_exporter_render_duration_seconds",
        "loxone_exporter_token_expiry_timestamp_seconds",
        "loxone_exporter_last_event_timestamp_seconds",
    ):
        assert needle in exprs, needle
    assert "loxone_control_info{" not in exprs
    # Legends of controls tell same-named controls of a room apart.
    legends = [
        target["legendFormat"]
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
        if "{{control}}" in target.get("legendFormat", "")
    ]
    assert legends
    assert all("{{duplicate}}" in legend for legend in legends)


async def test_every_metric_the_alerts_and_the_dashboard_use_is_exported(tmp_path: Path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            # The dashboard reads the typed families (the default).
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)], typed=True)
            await exporter.wait_until_streaming("home")
            text = await exporter.scrape()
            nursery.cancel_scope.cancel()
    # Every family the exporter declares (some have no series yet: no reconnect happened).
    names = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    exprs = [rule["expr"] for rule in alert_rules()] + [
        target["expr"]
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    used = {
        name
        for expr in exprs
        for name in METRIC_NAME.findall(re.sub(r'"[^"]*"', '""', expr))  # not in label values
    }
    used -= {"up"}  # Prometheus's own series of each scrape
    assert used <= names, used - names
    assert "loxone_exporter_config_last_reload_successful" in used


# --- compose.yml --------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml("compose.yml")
    return document


def container_ports(service: dict[str, Any]) -> dict[int, str]:
    """container port -> "host address:host port" of ``ports: ["127.0.0.1:9504:9504"]``."""
    published = {}
    for entry in service["ports"]:
        address, host_port, container_port = entry.split(":")
        published[int(container_port)] = f"{address}:{host_port}"
    return published


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """target in the container -> file or directory here, for the ``./...`` volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_options = entry.split(":")
        if source.startswith("."):
            mounts[target] = (EXAMPLES / source).resolve()
    return mounts


def test_compose_has_the_three_services_on_loopback_ports():
    document = compose()
    services = document["services"]
    assert set(services) == {"exporter", "prometheus", "grafana"}
    assert container_ports(services["exporter"]) == {9504: "127.0.0.1:9504"}
    assert container_ports(services["prometheus"]) == {9090: "127.0.0.1:9090"}
    assert container_ports(services["grafana"]) == {3000: "127.0.0.1:3000"}
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"docker\.io/[\w/]+:v?\d+\.\d+\.\d+", image), image  # pinned


def test_every_file_compose_mounts_exists_and_every_volume_is_declared():
    document = compose()
    declared = set(document["volumes"])
    named = set()
    for name, service in document["services"].items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (for {target}) does not exist"
            assert source.is_dir() == (not Path(target).suffix), (name, target)
        for entry in service.get("volumes", []):
            source = entry.split(":")[0]
            if not source.startswith("."):
                named.add(source)
    assert named == declared
    for secret in document["secrets"].values():
        assert (EXAMPLES / secret["file"]).is_file()


def test_the_exporter_service_builds_the_containerfile_and_runs_the_demo():
    exporter = compose()["services"]["exporter"]
    context = (EXAMPLES / exporter["build"]["context"]).resolve()
    assert context == ROOT
    containerfile = (context / exporter["build"]["dockerfile"]).read_text(encoding="utf-8")
    # The command below is the argument list of the image's entry point.
    assert 'ENTRYPOINT ["loxone-trio-exporter"]' in containerfile
    assert "EXPOSE 9504" in containerfile
    assert exporter["command"] == ["demo", "--listen", "0.0.0.0:9504"]
    assert bind_mounts(exporter) == {}
    assert "exporter-state:/var/lib/loxone-trio-exporter" in exporter["volumes"]
    [secret] = exporter["secrets"]
    assert exporter["environment"]["LOXONE_PASSWORD_FILE"] == f"/run/secrets/{secret}"


def test_the_exporter_service_without_the_demo_line_is_a_valid_config(tmp_path: Path):
    """What README and compose.yml say to do for a real Miniserver: delete ``command:``, and
    the image's ``run`` reads the LOXONE_* variables and the secret."""
    document = compose()
    exporter = document["services"]["exporter"]
    environment = {key: str(value) for key, value in exporter["environment"].items()}
    [secret] = exporter["secrets"]
    secret_file = EXAMPLES / document["secrets"][secret]["file"]
    environment["LOXONE_PASSWORD_FILE"] = str(secret_file)
    result = subprocess.run(
        [sys.executable, "-m", "loxone_trio_exporter", "check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **environment},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'host = "{environment["LOXONE_HOST"]}"' in result.stdout
    assert f'name = "{environment["LOXONE_NAME"]}"' in result.stdout
    password = secret_file.read_text(encoding="utf-8").strip()
    assert password not in result.stdout + result.stderr


def test_prometheus_in_compose_scrapes_the_exporter_service_and_loads_the_alerts():
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = bind_mounts(prometheus)
    [config_flag] = [flag for flag in prometheus["command"] if flag.startswith("--config.file=")]
    config_path = config_flag.split("=", 1)[1]
    config = yaml.safe_load(mounts[config_path].read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    [static] = job["static_configs"]
    listen_port = services["exporter"]["command"][-1].rsplit(":", 1)[1]
    assert static["targets"] == [f"exporter:{listen_port}"]
    for rule_file in config["rule_files"]:
        mounted = mounts[str(Path(config_path).parent / rule_file)]
        assert mounted == EXAMPLES / "alerts.yml"


def test_grafana_in_compose_gets_the_prometheus_datasource_and_the_dashboard():
    services = compose()["services"]
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = "/etc/grafana/provisioning"
    [datasource_file] = (mounts[f"{provisioning}/datasources"]).glob("*.yml")
    [source] = yaml.safe_load(datasource_file.read_text(encoding="utf-8"))["datasources"]
    assert source["type"] == "prometheus"
    assert (
        source["url"] == f"http://prometheus:{next(iter(container_ports(services['prometheus'])))}"
    )
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == source["uid"]
    [provider_file] = (mounts[f"{provisioning}/dashboards"]).glob("*.yml")
    [provider] = yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    dashboards_in = provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(dashboards_in)
    assert mounts[home] == EXAMPLES / "grafana" / "loxone-overview.json"
