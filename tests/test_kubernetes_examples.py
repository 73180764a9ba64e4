"""examples/kubernetes/ (issue 19, item 2): the manifests parse, hang together, and what they
say about the exporter is true: the embedded config passes ``check`` in every pod, the Secret
holds exactly the password files the config names, and the probes ask endpoints that answer.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml
from exporter_harness import miniserver as simulated_miniserver
from exporter_harness import start_exporter, start_simulator
from http_client import http_request
from tools import require_tool

from loxone_trio_exporter.cli import main
from loxone_trio_exporter.config import load_config

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "examples" / "kubernetes"
NAME = "loxone-trio-exporter"
MANIFESTS = ("configmap.yaml", "secret.yaml", "service.yaml", "statefulset.yaml")


def manifest(file_name: str) -> dict[str, Any]:
    (document,) = yaml.safe_load_all((KUBERNETES / file_name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def statefulset() -> dict[str, Any]:
    return manifest("statefulset.yaml")


def container() -> dict[str, Any]:
    (only,) = statefulset()["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def mount_path(volume_name: str) -> str:
    (path,) = [m["mountPath"] for m in container()["volumeMounts"] if m["name"] == volume_name]
    assert isinstance(path, str)
    return path


def volume(name: str) -> dict[str, Any]:
    (found,) = [
        v for v in statefulset()["spec"]["template"]["spec"]["volumes"] if v["name"] == name
    ]
    assert isinstance(found, dict)
    return found


def embedded_config() -> str:
    text = manifest("configmap.yaml")["data"]["exporter.toml"]
    assert isinstance(text, str)
    return text


def materialize(tmp_path: Path) -> Path:
    """The pod's files under ``tmp_path``: the config with the Secret's files beside it."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in manifest("secret.yaml")["stringData"].items():
        (secrets / key).write_text(value, encoding="utf-8")
        (secrets / key).chmod(0o400)
    text = embedded_config().replace(mount_path("passwords"), str(secrets))
    text = text.replace(mount_path("state"), str(tmp_path / "state"))
    config_file = tmp_path / "exporter.toml"
    config_file.write_text(text, encoding="utf-8")
    return config_file


def test_every_manifest_parses_and_the_kustomization_lists_them():
    kinds = {name: manifest(name)["kind"] for name in MANIFESTS}
    assert kinds == {
        "configmap.yaml": "ConfigMap",
        "secret.yaml": "Secret",
        "service.yaml": "Service",
        "statefulset.yaml": "StatefulSet",
    }
    assert manifest("podmonitor.yaml")["kind"] == "PodMonitor"
    assert manifest("kustomization.yaml")["resources"] == list(MANIFESTS)


def test_the_pieces_find_each_other():
    labels = {"app.kubernetes.io/name": NAME}
    spec = statefulset()["spec"]
    assert spec["selector"]["matchLabels"] == labels
    assert labels.items() <= spec["template"]["metadata"]["labels"].items()
    service = manifest("service.yaml")
    assert spec["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"  # headless
    assert service["spec"]["selector"] == labels
    port_names = {port["name"] for port in container()["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    pod_monitor = manifest("podmonitor.yaml")["spec"]
    assert pod_monitor["selector"]["matchLabels"] == labels
    assert {endpoint["port"] for endpoint in pod_monitor["podMetricsEndpoints"]} <= port_names
    assert volume("config")["configMap"]["name"] == manifest("configmap.yaml")["metadata"]["name"]
    secret_name = manifest("secret.yaml")["metadata"]["name"]
    assert volume("passwords")["secret"]["secretName"] == secret_name
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"


def test_the_container_runs_the_mounted_config_as_the_image_user_on_a_read_only_root():
    config_dir = mount_path("config")
    assert container()["args"] == ["run", f"{config_dir}/exporter.toml"]
    containerfile = (ROOT / "Containerfile").read_text(encoding="utf-8")
    (user,) = re.findall(r"^USER (\d+):(\d+)$", containerfile, flags=re.MULTILINE)
    pod_security = statefulset()["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert (str(pod_security["runAsUser"]), str(pod_security["runAsGroup"])) == user
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    (exposed,) = re.findall(r"^EXPOSE (\d+)$", containerfile, flags=re.MULTILINE)
    assert [port["containerPort"] for port in container()["ports"]] == [int(exposed)]


def test_resources_are_requested_and_limited():
    resources = container()["resources"]
    mebibytes = {"Mi": 1, "Gi": 1024}

    def memory(text: str) -> int:
        number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()  # type: ignore[union-attr]
        return int(number) * mebibytes[unit]

    assert set(resources) == {"requests", "limits"}
    assert memory(resources["requests"]["memory"]) <= memory(resources["limits"]["memory"])
    # What docs/benchmarks.md measured for the size the comment names: 216 MB at the peak for
    # 35 Miniservers of 1k controls; the limit must hold it.
    assert memory(resources["limits"]["memory"]) * 1.048576 > 216
    assert {"cpu", "memory"} <= resources["requests"].keys()


def test_the_embedded_config_shards_as_many_pods_as_there_are_replicas(tmp_path, monkeypatch):
    config_file = materialize(tmp_path)
    replicas = statefulset()["spec"]["replicas"]
    monkeypatch.delenv("LOXONE_SHARD", raising=False)
    monkeypatch.delenv("LOXONE_CONFIG_FILE", raising=False)
    owned: list[str] = []
    for ordinal in range(replicas):
        monkeypatch.setenv("HOSTNAME", f"{NAME}-{ordinal}")
        assert main(["check", str(config_file)]) == 0
        config = load_config(config_file, {"HOSTNAME": f"{NAME}-{ordinal}"})
        assert (config.shard.index, config.shard.count) == (ordinal, replicas)
        owned += [miniserver.name for miniserver in config.miniservers]
    whole = load_config(config_file, {"HOSTNAME": f"{NAME}-0"}, whole=True)
    assert sorted(owned) == sorted(miniserver.name for miniserver in whole.miniservers)
    assert whole.state_dir == str(tmp_path / "state")
    # One pod more than the count: check says so.
    monkeypatch.setenv("HOSTNAME", f"{NAME}-{replicas}")
    assert main(["check", str(config_file)]) == 2


def test_the_secret_holds_exactly_the_password_files_of_the_config(tmp_path):
    config = load_config(materialize(tmp_path), {"HOSTNAME": f"{NAME}-0"}, whole=True)
    secrets = tmp_path / "secrets"
    files = {Path(miniserver.password_file) for miniserver in config.miniservers}
    assert {file.parent for file in files} == {secrets}
    assert {file.name for file in files} == set(manifest("secret.yaml")["stringData"])
    # And in the pod: the config names files under the Secret's mount path.
    named = re.findall(r'password_file = "([^"]+)"', embedded_config())
    assert {str(Path(path).parent) for path in named} == {mount_path("passwords")}
    assert "password =" not in embedded_config()  # no password in the ConfigMap


def test_the_config_listens_on_the_container_port():
    (listen,) = re.findall(r"listen = \[\"([^\"]+)\"\]", embedded_config())
    assert int(listen.rsplit(":", 1)[1]) == container()["ports"][0]["containerPort"]


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_the_probes_name_the_metrics_port(probe):
    assert container()[probe]["httpGet"]["port"] == container()["ports"][0]["name"]


async def test_the_probes_ask_endpoints_that_answer(tmp_path):
    liveness = container()["livenessProbe"]["httpGet"]["path"]
    readiness = container()["readinessProbe"]["httpGet"]["path"]
    assert (liveness, readiness) == ("/-/healthy", "/-/ready")
    async with trio.open_nursery() as nursery:
        server = await start_simulator(nursery)
        exporter = await start_exporter(nursery, tmp_path, [simulated_miniserver(server)])
        assert (await http_request(exporter.port, liveness)).status == 200
        await exporter.wait_until_streaming("home")
        assert (await http_request(exporter.port, readiness)).status == 200
        exporter.shutdown.set()
        nursery.cancel_scope.cancel()


def promtool_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_promtool_accepts_the_scrape_job(tmp_path):
    original = KUBERNETES / "prometheus-scrape.yml"
    result = promtool_check_config(original)
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian's promtool is built without Kubernetes discovery. Check everything else: the
        # same job with a static target instead.
        document = yaml.safe_load(original.read_text("utf-8"))
        for job in document["scrape_configs"]:
            job.pop("kubernetes_sd_configs")
            job["static_configs"] = [{"targets": ["localhost:9504"]}]
        copy = tmp_path / "prometheus-scrape.yml"
        copy.write_text(yaml.safe_dump(document), encoding="utf-8")
        result = promtool_check_config(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    (job,) = yaml.safe_load((KUBERNETES / "prometheus-scrape.yml").read_text("utf-8"))[
        "scrape_configs"
    ]
    keep = {
        tuple(rule["source_labels"]): rule["regex"]
        for rule in job["relabel_configs"]
        if rule.get("action") == "keep"
    }
    assert keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == NAME
    assert keep[("__meta_kubernetes_pod_container_port_name",)] == container()["ports"][0]["name"]
    # The alerts of examples/alerts.yml watch the job "loxone".
    assert job["job_name"] == "loxone"
