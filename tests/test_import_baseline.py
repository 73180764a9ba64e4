"""What ``loxone-trio-exporter run`` imports, up to serving: only what it uses.

The simulator is for ``demo`` and ``simulate``; PyYAML and bcrypt (``web/_web_config.py``,
``web/_auth.py``) are for a web config file. Each test runs the real command line in a fresh
interpreter (``cli.main(["run", FILE])``) against a Miniserver that refuses connections; when
the exporter logs that it serves, the process reports what it has imported and stops itself
with SIGTERM, as a service manager would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import bcrypt

SIMULATOR = "loxone_trio_exporter.simulator"
WEB_CONFIG_MODULES = ("loxone_trio_exporter.web._web_config", "loxone_trio_exporter.web._auth")
#: Modules whose first importer the child process records.
WATCHED = ("bcrypt", "yaml", SIMULATOR)

CHILD = """
import importlib.abc, json, logging, os, signal, sys

WATCHED = set(sys.argv[2:])
IMPORT_MACHINERY = {"importlib._bootstrap", "importlib._bootstrap_external"}


class FirstImporter(importlib.abc.MetaPathFinder):
    '''Notes which module first imported each watched name; finds nothing itself.'''

    importers = {}

    def find_spec(self, name, path=None, target=None):
        if name in WATCHED and name not in self.importers:
            frame = sys._getframe(1)
            while frame.f_globals.get("__name__") in IMPORT_MACHINERY:
                frame = frame.f_back
            self.importers[name] = frame.f_globals.get("__name__")
        return None


class ReportWhenServing(logging.Filter):
    def filter(self, record):
        if " serving " in record.getMessage():
            report = {"modules": sorted(sys.modules), "importers": FirstImporter.importers}
            print(json.dumps(report), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
        return True


sys.meta_path.insert(0, FirstImporter())
logging.getLogger("loxone_trio_exporter").addFilter(ReportWhenServing())
from loxone_trio_exporter.cli import main

sys.exit(main(["run", sys.argv[1]]))
"""


def write_config(tmp_path: Path, port: int, web_config: str = "") -> Path:
    config = tmp_path / "exporter.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        "[web]\n"
        'listen = ["127.0.0.1:0"]\n'
        f'web_config_file = "{web_config}"\n'
        "[log]\n"
        'level = "info"\n'
        "[[miniserver]]\n"
        'name = "home"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'username = "demo"\n'
        'password = "demo"\n'
        'tls = "off"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)  # it holds a password
    return config


def report_of_run(child: str, config: Path, *arguments: str) -> dict[str, Any]:
    """What ``child`` (a script that runs ``run`` with ``config``, prints a JSON report and
    stops the process) printed, run in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", child, str(config), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def imports_of_run(config: Path) -> tuple[set[str], dict[str, str]]:
    """The modules a ``run`` process has loaded once it serves, and who imported the watched."""
    report = report_of_run(CHILD, config, *WATCHED)
    return set(report["modules"]), report["importers"]


def simulator_modules(modules: set[str]) -> set[str]:
    return {name for name in modules if name == SIMULATOR or name.startswith(f"{SIMULATOR}.")}


def test_run_imports_neither_the_simulator_nor_the_web_config_libraries(
    tmp_path: Path, refusing_port: int
) -> None:
    modules, importers = imports_of_run(write_config(tmp_path, refusing_port))
    assert "loxone_trio_exporter.supervisor" in modules  # it did get as far as serving
    assert not simulator_modules(modules), importers
    assert "yaml" not in modules, importers
    assert not modules & set(WEB_CONFIG_MODULES)
    # cryptography imports bcrypt itself when it is installed (for SSH keys in its
    # serialization package, which protocol/_crypto.py reads the Miniserver's public key with);
    # none of the exporter's modules may.
    bcrypt_importer = importers.get("bcrypt")
    assert bcrypt_importer is None or bcrypt_importer.startswith("cryptography."), importers


def test_run_with_a_web_config_file_loads_what_it_needs(tmp_path: Path, refusing_port: int) -> None:
    password_hash = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode("ascii")
    web_config = tmp_path / "web.yml"
    web_config.write_text(f"basic_auth_users:\n  prometheus: '{password_hash}'\n", encoding="utf-8")
    modules, _ = imports_of_run(write_config(tmp_path, refusing_port, str(web_config)))
    assert {"yaml", "bcrypt", *WEB_CONFIG_MODULES} <= modules
    assert not simulator_modules(modules)
