"""The config file and ``LOXONE_*`` variables (design 3.2) and ``loxone-trio-exporter check``."""

from __future__ import annotations

import datetime
import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.cli import main
from loxone_trio_exporter.config import (
    REDACTED,
    Config,
    ExportConfig,
    LogConfig,
    MiniserverConfig,
    WebConfig,
    config_from_dict,
    default_state_dir,
    environment_warnings,
    load_config,
    permission_warnings,
    render_config_toml,
)
from loxone_trio_exporter.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "exporter.toml.example"
SECRET = "hunter2-Geheim-9x"
ENV: dict[str, str] = {"HOME": "/home/exporter"}
ALL_VARIABLES = (
    "LOXONE_NAME",
    "LOXONE_HOST",
    "LOXONE_PORT",
    "LOXONE_USERNAME",
    "LOXONE_PASSWORD",
    "LOXONE_PASSWORD_FILE",
    "LOXONE_LISTEN",
    "LOXONE_LOG_LEVEL",
    "LOXONE_LOG_FORMAT",
)


def miniserver(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "home",
        "host": "192.168.1.77",
        "username": "prometheus",
        "password": SECRET,
    }
    table.update(changes)
    return {key: value for key, value in table.items() if value is not None}


def errors_of(document: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(document, ENV if environ is None else environ)
    message = str(caught.value)
    assert SECRET not in message
    return message.splitlines()


def write(tmp_path: Path, text: str, name: str = "exporter.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- loading --------------------------------------------------------------------------------------


def test_the_example_file_loads_with_the_documented_defaults():
    config = load_config(EXAMPLE, ENV)
    assert config.web == WebConfig()
    assert config.log == LogConfig()
    assert config.export == ExportConfig()
    assert config.state_dir == "/home/exporter/.local/state/loxone-trio-exporter"
    assert config.miniservers == (
        MiniserverConfig(
            name="home", host="192.168.1.77", username="prometheus", password="change-me"
        ),
    )


def test_the_example_file_mentions_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    for cls in (Config, WebConfig, LogConfig, ExportConfig, MiniserverConfig):
        for field in attrs.fields(cls):
            key = field.metadata.get("loxone_toml_key", field.name)
            assert f"{key} = " in text or f"[{key}]" in text or f"[[{key}]]" in text, key


def test_a_minimal_file_gets_every_default():
    config = config_from_dict({"miniserver": [miniserver()]}, ENV)
    (home,) = config.miniservers
    assert home.port == 80
    assert home.tls == "auto"
    assert home.tls_verify is True
    assert home.tls_port == 443
    assert home.kill_token_on_exit is False
    assert home.password == SECRET
    assert home.password_file == ""
    assert config.web.listen == ("0.0.0.0:9504",)
    assert config.export.stale_after_seconds == 60.0


def test_every_key_is_read():
    document = {
        "state_dir": "/var/lib/lte",
        "web": {
            "listen": ["127.0.0.1:9504", "[::1]:0"],
            "telemetry_path": "/probe/metrics",
            "web_config_file": "/etc/web.yml",
        },
        "log": {"level": "debug", "format": "json"},
        "export": {
            "include_text": True,
            "stale_after_seconds": 5,
            "exclude_rooms": ["Garage"],
            "exclude_categories": ["Lighting"],
            "exclude_types": ["Pushbutton"],
            "exclude_names": ["Test*"],
            "exclude_states": ["jLocked", "Jalousie:position*"],
            "max_series": 500,
        },
        "miniserver": [
            miniserver(
                max_series=20,
                port=8080,
                tls="on",
                tls_verify=False,
                tls_ca_file="/etc/ca.pem",
                tls_server_name="x.dyndns.loxonecloud.com",
                tls_port=8443,
                kill_token_on_exit=True,
            ),
            miniserver(name="office", host="fe80::1"),
        ],
    }
    config = config_from_dict(document, ENV)
    assert config.state_dir == "/var/lib/lte"
    assert config.web == WebConfig(
        listen=("127.0.0.1:9504", "[::1]:0"),
        telemetry_path="/probe/metrics",
        web_config_file="/etc/web.yml",
    )
    assert config.log == LogConfig(level="debug", format="json")
    assert config.export == ExportConfig(
        include_text=True,
        stale_after_seconds=5.0,
        exclude_rooms=("Garage",),
        exclude_categories=("Lighting",),
        exclude_types=("Pushbutton",),
        exclude_names=("Test*",),
        exclude_states=("jLocked", "Jalousie:position*"),
        max_series=500,
    )
    home, office = config.miniservers
    assert (home.max_series, office.max_series) == (20, None)
    assert (home.series_limit(config.export), office.series_limit(config.export)) == (20, 500)
    assert (home.port, home.tls, home.tls_verify, home.tls_port) == (8080, "on", False, 8443)
    assert (home.tls_ca_file, home.kill_token_on_exit) == ("/etc/ca.pem", True)
    assert home.tls_server_name == "x.dyndns.loxonecloud.com"
    assert office.host == "fe80::1"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"XDG_STATE_HOME": "/xdg", "HOME": "/h"}, "/xdg/loxone-trio-exporter"),
        ({"XDG_STATE_HOME": "relative", "HOME": "/h"}, "/h/.local/state/loxone-trio-exporter"),
        ({"HOME": "/h"}, "/h/.local/state/loxone-trio-exporter"),
        ({}, str(Path.home() / ".local/state/loxone-trio-exporter")),
    ],
)
def test_default_state_dir(environ, expected):
    assert default_state_dir(environ) == expected
    assert config_from_dict({"miniserver": [miniserver()]}, environ).state_dir == expected


def test_relative_paths_in_a_file_are_relative_to_its_directory(tmp_path):
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    path = write(
        tmp_path,
        'state_dir = "state"\n[web]\nweb_config_file = "web.yml"\n'
        '[[miniserver]]\nname = "a"\nhost = "h"\nusername = "u"\n'
        'password_file = "secret.txt"\ntls_ca_file = "/abs/ca.pem"\n',
    )
    config = load_config(path, ENV)
    assert config.state_dir == str(tmp_path / "state")
    assert config.web.web_config_file == str(tmp_path / "web.yml")
    (ms,) = config.miniservers
    assert ms.password_file == str(tmp_path / "secret.txt")
    assert ms.password == SECRET
    assert ms.tls_ca_file == "/abs/ca.pem"


# --- file-level errors ----------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.toml: No such file"):
        load_config(missing, ENV)


def test_invalid_toml_says_line_and_column(tmp_path):
    path = write(tmp_path, '[web]\nlisten = ["a:1"]\n[[miniserver]\n')
    with pytest.raises(ConfigError, match=r"invalid TOML: .*\(at line 3, column \d+\)") as caught:
        load_config(path, ENV)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "exporter.toml"
    path.write_bytes(b'state_dir = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, ENV)


def test_toml_nested_too_deeply_is_an_error(tmp_path):
    path = write(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match=r"nested too deeply|invalid TOML"):
        load_config(path, ENV)


def test_a_document_that_is_not_a_table_is_an_error():
    with pytest.raises(ConfigError, match="top level: expected table, got an array"):
        config_from_dict([1], ENV)  # type: ignore[arg-type]


# --- errors with their paths ----------------------------------------------------------------------


def test_the_design_examples_of_errors():
    assert errors_of({"miniserver": [miniserver(), miniserver(name="b", port="80")]}) == [
        'miniserver[1].port: expected int, got "80"'
    ]
    assert errors_of({"miniserver": [miniserver(nmae="x")]}) == ["miniserver[0].nmae: unknown key"]
    assert errors_of({"web": {"listen": ["x"]}, "miniserver": [miniserver()]}) == [
        'web.listen[0]: expected HOST:PORT, got "x"'
    ]
    hint = " (or set LOXONE_HOST, LOXONE_USERNAME and LOXONE_PASSWORD)"
    assert errors_of({}) == [f"miniserver: at least one [[miniserver]] is required{hint}"]
    assert errors_of({"miniserver": []}) == [
        f"miniserver: at least one [[miniserver]] is required{hint}"
    ]
    tables = [miniserver(), miniserver(name="b"), miniserver(), miniserver()]
    assert errors_of({"miniserver": tables}) == [
        'miniserver[2].name: "home" is used twice',
        'miniserver[3].name: "home" is used twice',
    ]


def test_several_errors_are_all_reported_in_one_message():
    document = {
        "bogus": 1,
        "web": {"listen": ["0.0.0.0:9504", ":9504"], "telemetry_path": "/"},
        "log": {"level": "INFO", "colour": True},
        "export": {"stale_after_seconds": -1, "exclude_names": "Test*"},
        "miniserver": [
            miniserver(port=70000, tls="yes"),
            miniserver(host=None, password=None),
            miniserver(username=""),
        ],
    }
    assert errors_of(document) == [
        'web.listen[1]: expected HOST:PORT, got ":9504" '
        "(the host is missing: use 0.0.0.0 or [::] for all interfaces)",
        'web.telemetry_path: expected a path that starts with "/" and is not "/", got "/"',
        'log.level: expected one of "debug", "info", "warning", "error", got "INFO"',
        "log.colour: unknown key",
        "export.stale_after_seconds: expected a number >= 0, got -1.0",
        'export.exclude_names: expected array, got "Test*"',
        "miniserver[0].port: expected a port 1..65535, got 70000",
        'miniserver[0].tls: expected one of "auto", "on", "off", got "yes"',
        "miniserver[1].host: required, but not given",
        "miniserver[2].username: must not be empty",
        "bogus: unknown key",
        "miniserver[1]: password or password_file is required",
        'miniserver[1].name: "home" is used twice',
        'miniserver[2].name: "home" is used twice',
    ]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"nmae": 1}, "nmae"),
        ({"web": {"listn": []}}, "web.listn"),
        ({"log": {"lvl": "info"}}, "log.lvl"),
        ({"export": {"exclude_room": []}}, "export.exclude_room"),
        ({"miniserver_": 1}, "miniserver_"),
        ({"web": {"a b": 1}}, 'web."a b"'),
    ],
)
def test_unknown_keys_are_errors_at_every_level(document, path):
    document.setdefault("miniserver", [miniserver()])
    assert errors_of(document) == [f"{path}: unknown key"]


def test_unknown_keys_in_a_miniserver_table():
    assert errors_of({"miniserver": [miniserver(), miniserver(name="b", pasword="x")]}) == [
        "miniserver[1].pasword: unknown key"
    ]


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        ("80", 'expected int, got "80"'),
        (80.0, "expected int, got 80.0"),
        (True, "expected int, got true"),
        ([80], "expected int, got an array"),
        (0, "expected a port 1..65535, got 0"),
        (-1, "expected a port 1..65535, got -1"),
        (65536, "expected a port 1..65535, got 65536"),
    ],
)
def test_bad_miniserver_ports(port, problem):
    assert errors_of({"miniserver": [miniserver(port=port)]}) == [f"miniserver[0].port: {problem}"]
    assert errors_of({"miniserver": [miniserver(tls_port=port)]}) == [
        f"miniserver[0].tls_port: {problem}"
    ]


@pytest.mark.parametrize("port", [1, 443, 65535])
def test_good_miniserver_ports(port):
    (ms,) = config_from_dict({"miniserver": [miniserver(port=port)]}, ENV).miniservers
    assert ms.port == port


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:9504", "[::]:9504", "[::1]:0", "localhost:65535", "[fe80::1%eth0]:80", "a.b-c_d:1"],
)
def test_good_listen_addresses(address):
    config = config_from_dict({"web": {"listen": [address]}, "miniserver": [miniserver()]}, ENV)
    assert config.web.listen == (address,)


@pytest.mark.parametrize(
    ("address", "hint"),
    [
        ("x", ""),
        ("9504", ""),
        (":9504", " (the host is missing: use 0.0.0.0 or [::] for all interfaces)"),
        ("host:65536", " (the port must be 0..65535)"),
        ("host:", ""),
        ("host:-1", ""),
        ("host:+1", ""),
        ("[::1]", ""),
        ("::1:9504", ""),
        ("[zz]:1", ""),
        ("a b:1", ""),
        ("http://h:1", ""),
        ("", ""),
    ],
)
def test_bad_listen_addresses(address, hint):
    document = {"web": {"listen": ["0.0.0.0:1", address]}, "miniserver": [miniserver()]}
    shown = '""' if not address else f'"{address}"'
    assert errors_of(document) == [f"web.listen[1]: expected HOST:PORT, got {shown}{hint}"]


def test_listen_needs_an_array_of_at_least_one_string():
    ms = [miniserver()]
    assert errors_of({"web": {"listen": []}, "miniserver": ms}) == ["web.listen: must not be empty"]
    assert errors_of({"web": {"listen": "0.0.0.0:1"}, "miniserver": ms}) == [
        'web.listen: expected array, got "0.0.0.0:1"'
    ]
    assert errors_of({"web": {"listen": [9504, "x:1"]}, "miniserver": ms}) == [
        "web.listen[0]: expected string, got 9504"
    ]


@pytest.mark.parametrize("path", ["metrics", "/", "", "/a b", "/m?x=1", 5])
def test_bad_telemetry_paths(path):
    (line,) = errors_of({"web": {"telemetry_path": path}, "miniserver": [miniserver()]})
    assert line.startswith("web.telemetry_path: expected ")


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (60, 60.0), (2.5, 2.5), (math.inf, math.inf)]
)
def test_good_stale_after_seconds(value, expected):
    config = config_from_dict(
        {"export": {"stale_after_seconds": value}, "miniserver": [miniserver()]}, ENV
    )
    assert config.export.stale_after_seconds == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-0.5, "expected a number >= 0, got -0.5"),
        (math.nan, "expected a number >= 0, got nan"),
        ("60", 'expected number, got "60"'),
        (False, "expected number, got false"),
    ],
)
def test_bad_stale_after_seconds(value, problem):
    document = {"export": {"stale_after_seconds": value}, "miniserver": [miniserver()]}
    assert errors_of(document) == [f"export.stale_after_seconds: {problem}"]


@pytest.mark.parametrize(
    ("table", "errors"),
    [
        ({"web": 1}, ["web: expected table, got 1"]),
        ({"log": {"format": "xml"}}, ['log.format: expected one of "text", "json", got "xml"']),
        ({"log": {"level": 3}}, ["log.level: expected string, got 3"]),
        ({"export": {"include_text": "yes"}}, ['export.include_text: expected bool, got "yes"']),
        ({"export": {"exclude_rooms": [1]}}, ["export.exclude_rooms[0]: expected string, got 1"]),
        (
            {"export": {"exclude_types": [[]]}},
            ["export.exclude_types[0]: expected string, got an array"],
        ),
        ({"state_dir": ""}, ["state_dir: must not be empty"]),
        (
            {"state_dir": datetime.date(2024, 1, 2)},
            ["state_dir: expected string, got a date"],
        ),
    ],
)
def test_type_and_value_errors_outside_miniservers(table, errors):
    assert errors_of({**table, "miniserver": [miniserver()]}) == errors


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"host": "http://192.168.1.77"}, "miniserver[0].host: expected a host name or IP"),
        ({"host": "192.168.1.77:80"}, "miniserver[0].host: expected a host name or IP"),
        ({"host": "miniserver/path"}, "miniserver[0].host: expected a host name or IP"),
        ({"host": ""}, "miniserver[0].host: expected a host name or IP"),
        ({"name": ""}, "miniserver[0].name: must not be empty"),
        ({"name": 7}, "miniserver[0].name: expected string, got 7"),
        ({"username": None}, "miniserver[0].username: required, but not given"),
        ({"name": None}, "miniserver[0].name: required, but not given"),
        ({"tls_verify": "false"}, 'miniserver[0].tls_verify: expected bool, got "false"'),
        ({"tls": "ON"}, 'miniserver[0].tls: expected one of "auto", "on", "off", got "ON"'),
        ({"kill_token_on_exit": 1}, "miniserver[0].kill_token_on_exit: expected bool, got 1"),
        ({"tls_ca_file": False}, "miniserver[0].tls_ca_file: expected string, got false"),
    ],
)
def test_miniserver_value_errors(changes, error):
    (line,) = errors_of({"miniserver": [miniserver(**changes)]})
    assert line.startswith(error)


@pytest.mark.parametrize("host", ["fe80::1", "[fe80::1]", "loxone.local", "10.0.0.1", "ms_1"])
def test_good_hosts(host):
    (ms,) = config_from_dict({"miniserver": [miniserver(host=host)]}, ENV).miniservers
    assert ms.host == host


def test_miniserver_tables_of_the_wrong_type():
    assert errors_of({"miniserver": {"name": "x"}}) == ["miniserver: expected array, got a table"]
    assert errors_of({"miniserver": [miniserver(), "home"]}) == [
        'miniserver[1]: expected table, got "home"'
    ]


def test_a_long_value_is_shortened_in_messages():
    (line,) = errors_of({"miniserver": [miniserver(host="h" * 100 + "/")]})
    assert '"' + "h" * 57 + '..."' in line
    assert "h" * 60 not in line


# --- password and password_file -------------------------------------------------------------------


def test_password_and_password_file_both_or_neither_are_errors():
    both = miniserver(password_file="/run/secrets/x")
    neither = miniserver(password=None)
    assert errors_of({"miniserver": [both, miniserver(name="b", password=None)]}) == [
        "miniserver[0]: give either password or password_file, not both",
        "miniserver[1]: password or password_file is required",
    ]
    assert errors_of({"miniserver": [neither]}) == [
        "miniserver[0]: password or password_file is required"
    ]


def test_an_empty_password_is_an_error():
    assert errors_of({"miniserver": [miniserver(password="")]}) == [
        "miniserver[0].password: must not be empty"
    ]


def test_a_password_of_the_wrong_type_is_not_shown():
    lines = errors_of({"miniserver": [miniserver(password=987654321)]})
    assert lines == ["miniserver[0].password: expected string, got an int"]
    assert "987654321" not in "\n".join(lines)
    lines = errors_of({"miniserver": [miniserver(password=9.87654321)]})
    assert lines == ["miniserver[0].password: expected string, got a number"]


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"s3cret\n", "s3cret"),
        (b"s3cret\r\n", "s3cret"),
        (b"s3cret", "s3cret"),
        (b"s3cret\n\n", "s3cret\n"),
        (b" spaced \n", " spaced "),
        (b"s3cret\r", "s3cret\r"),
    ],
)
def test_password_file_is_read_without_one_trailing_newline(tmp_path, content, password):
    secret = tmp_path / "pw"
    secret.write_bytes(content)
    document = {"miniserver": [miniserver(password=None, password_file=str(secret))]}
    (ms,) = config_from_dict(document, ENV).miniservers
    assert ms.password == password
    assert ms.password_file == str(secret)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {path}: No such file or directory"),
        (b"", "{path} is empty"),
        (b"\n", "{path} is empty"),
        (b"\xff\xfe", "{path} is not UTF-8 text"),
        (b"x" * (64 * 1024 + 1), "{path} is larger than 65536 bytes; expected a file holding"),
    ],
)
def test_password_file_problems_name_the_key_and_path(tmp_path, content, problem):
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_bytes(content)
    document = {"miniserver": [miniserver(password=None, password_file=str(secret))]}
    (line,) = errors_of(document)
    expected = problem.format(path=f'"{secret}"')
    assert line.startswith(f"miniserver[0].password_file: {expected}")


def test_password_file_that_is_a_directory_or_a_bad_path(tmp_path):
    document = {"miniserver": [miniserver(password=None, password_file=str(tmp_path))]}
    (line,) = errors_of(document)
    assert line.startswith(f'miniserver[0].password_file: cannot read "{tmp_path}": ')
    document = {"miniserver": [miniserver(password=None, password_file="a\0b")]}
    assert errors_of(document) == [
        'miniserver[0].password_file: cannot read "a\\u0000b": not a valid path'
    ]
    document = {"miniserver": [miniserver(password=None, password_file="")]}
    assert errors_of(document) == ["miniserver[0].password_file: must not be empty"]


def test_password_file_errors_are_reported_with_the_others(tmp_path):
    document = {
        "miniserver": [
            miniserver(password=None, password_file=str(tmp_path / "missing")),
            miniserver(name="b", port="x"),
        ]
    }
    lines = errors_of(document)
    assert lines[0] == 'miniserver[1].port: expected int, got "x"'
    assert lines[1].startswith("miniserver[0].password_file: cannot read")


# --- environment ----------------------------------------------------------------------------------


def test_environment_alone_defines_one_miniserver():
    environ = {
        **ENV,
        "LOXONE_HOST": "10.0.0.5",
        "LOXONE_PORT": " 8080 ",
        "LOXONE_USERNAME": "prom",
        "LOXONE_PASSWORD": SECRET,
        "LOXONE_LISTEN": "127.0.0.1:9504, [::1]:9504",
        "LOXONE_LOG_LEVEL": "debug",
        "LOXONE_LOG_FORMAT": "json",
    }
    config = load_config(None, environ)
    assert config.miniservers == (
        MiniserverConfig(
            name="10.0.0.5", host="10.0.0.5", port=8080, username="prom", password=SECRET
        ),
    )
    assert config.web.listen == ("127.0.0.1:9504", "[::1]:9504")
    assert config.log == LogConfig(level="debug", format="json")
    assert config.state_dir == "/home/exporter/.local/state/loxone-trio-exporter"


def test_environment_alone_with_a_name_and_a_password_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    environ = {
        "LOXONE_NAME": "home",
        "LOXONE_HOST": "ms",
        "LOXONE_USERNAME": "u",
        "LOXONE_PASSWORD_FILE": str(secret),
        "LOXONE_PORT": "",  # empty counts as unset
    }
    (ms,) = load_config(None, environ).miniservers
    assert (ms.name, ms.host, ms.port, ms.password, ms.password_file) == (
        "home",
        "ms",
        80,
        SECRET,
        str(secret),
    )


def test_environment_alone_reports_missing_variables_by_name():
    with pytest.raises(ConfigError) as caught:
        load_config(None, {})
    assert str(caught.value).splitlines() == [
        "LOXONE_PASSWORD or LOXONE_PASSWORD_FILE: required, but not given",
        "LOXONE_HOST: required, but not given",
        "LOXONE_USERNAME: required, but not given",
    ]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"LOXONE_PORT": "eighty"}, ['LOXONE_PORT: expected int, got "eighty"']),
        ({"LOXONE_PORT": "70000"}, ["LOXONE_PORT: expected a port 1..65535, got 70000"]),
        ({"LOXONE_HOST": "http://ms"}, ["LOXONE_HOST: expected a host name or IP address"]),
        ({"LOXONE_LISTEN": "0.0.0.0:1,x"}, ['LOXONE_LISTEN: expected HOST:PORT, got "x"']),
        ({"LOXONE_LISTEN": "a:1,,b:2"}, ['LOXONE_LISTEN: expected HOST:PORT, got ""']),
        ({"LOXONE_LOG_LEVEL": "trace"}, ["LOXONE_LOG_LEVEL: expected one of"]),
        ({"LOXONE_LOG_FORMAT": "xml"}, ["LOXONE_LOG_FORMAT: expected one of"]),
        (
            {"LOXONE_PASSWORD_FILE": "/nonexistent/pw"},
            ["LOXONE_PASSWORD, LOXONE_PASSWORD_FILE: give only one of the two"],
        ),
        (
            {"LOXONE_PASSWORD": None, "LOXONE_PASSWORD_FILE": "/nonexistent/pw"},
            ['LOXONE_PASSWORD_FILE: cannot read "/nonexistent/pw": No such file or directory'],
        ),
    ],
)
def test_environment_errors_name_the_variable(variables, expected):
    environ = {"LOXONE_HOST": "ms", "LOXONE_USERNAME": "u", "LOXONE_PASSWORD": SECRET}
    environ.update(variables)
    environ = {key: value for key, value in environ.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start)
    assert SECRET not in str(caught.value)


def test_environment_overrides_the_single_miniserver_of_a_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file", encoding="utf-8")
    document = {
        "web": {"listen": ["0.0.0.0:1"]},
        "log": {"level": "error"},
        "miniserver": [miniserver(password=None, password_file=str(secret), tls="off")],
    }
    environ = {
        "LOXONE_HOST": "10.1.1.1",
        "LOXONE_PORT": "81",
        "LOXONE_PASSWORD": SECRET,
        "LOXONE_LISTEN": "127.0.0.1:2",
        "LOXONE_LOG_LEVEL": "warning",
    }
    config = config_from_dict(document, environ)
    (ms,) = config.miniservers
    assert (ms.name, ms.host, ms.port, ms.tls) == ("home", "10.1.1.1", 81, "off")
    assert (ms.password, ms.password_file) == (SECRET, "")
    assert config.web.listen == ("127.0.0.1:2",)
    assert config.log.level == "warning"


def test_environment_password_file_replaces_the_file_password(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-env-file\n", encoding="utf-8")
    config = config_from_dict({"miniserver": [miniserver()]}, {"LOXONE_PASSWORD_FILE": str(secret)})
    assert config.miniservers[0].password == "from-env-file"


def test_environment_errors_with_a_file_name_the_variable():
    lines = errors_of({"miniserver": [miniserver()]}, {"LOXONE_PORT": "0", "LOXONE_NAME": ""})
    assert lines == ["LOXONE_PORT: expected a port 1..65535, got 0"]


def test_environment_defines_the_miniserver_when_the_file_has_none():
    config = config_from_dict(
        {"log": {"level": "debug"}},
        {"LOXONE_HOST": "ms", "LOXONE_USERNAME": "u", "LOXONE_PASSWORD": SECRET},
    )
    assert [ms.name for ms in config.miniservers] == ["ms"]
    assert config.log.level == "debug"


def test_miniserver_variables_with_several_miniservers_are_an_error():
    document = {"miniserver": [miniserver(), miniserver(name="b")]}
    lines = errors_of(document, {"LOXONE_HOST": "x", "LOXONE_PASSWORD": SECRET})
    assert lines == [
        "LOXONE_HOST, LOXONE_PASSWORD: these variables apply only when the config file has "
        "exactly one [[miniserver]] (it has 2)"
    ]


def test_environment_does_not_touch_tables_of_the_wrong_type():
    lines = errors_of(
        {"web": "x", "miniserver": ["y"]}, {"LOXONE_LISTEN": "a:1", "LOXONE_HOST": "h"}
    )
    assert lines == ['web: expected table, got "x"', 'miniserver[0]: expected table, got "y"']


def test_config_from_dict_does_not_change_its_argument():
    document = {"miniserver": [miniserver()], "web": {"listen": ["a:1"]}}
    before = repr(document)
    config_from_dict(document, {"LOXONE_LISTEN": "b:2", "LOXONE_PORT": "81"})
    assert repr(document) == before


# --- the model built in code ----------------------------------------------------------------------


def test_the_classes_check_values_when_built_in_code():
    with pytest.raises(ValueError, match=r"port: expected a port 1\.\.65535, got 0"):
        MiniserverConfig(name="a", host="h", username="u", password="p", port=0)
    with pytest.raises(ValueError, match='listen: expected HOST:PORT, got "x"'):
        WebConfig(listen=("x",))
    with pytest.raises(ValueError, match="telemetry_path"):
        WebConfig(telemetry_path="/")
    assert Config().miniservers == ()
    assert Config().state_dir.endswith("loxone-trio-exporter")


# --- secrets --------------------------------------------------------------------------------------


def test_repr_never_shows_the_password():
    config = config_from_dict({"miniserver": [miniserver()]}, ENV)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in repr(config.miniservers[0])
    assert config.miniservers[0].password == SECRET


def test_errors_never_show_the_password(tmp_path):
    # A password in every place a message could pick it up from: the table with the error,
    # a misspelt key, a second source, a duplicate, the environment.
    document = {
        "miniserver": [
            miniserver(port="x", passwrd=SECRET),
            miniserver(password_file=str(tmp_path / "none")),
            miniserver(password=[SECRET]),
            miniserver(name=None, host=None, username=None),
        ]
    }
    lines = errors_of(document, {"LOXONE_LISTEN": "x"})  # errors_of checks for the secret
    assert "miniserver[2].password: expected string, got an array" in lines
    path = write(tmp_path, f'[[miniserver]]\nname = "a"\npassword = "{SECRET}"\nport = "80"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert SECRET not in str(caught.value)
    path = write(tmp_path, f'[[miniserver]]\npassword = "{SECRET}\n', name="broken.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert "invalid TOML" in str(caught.value)
    assert SECRET not in str(caught.value)


# --- rendering ------------------------------------------------------------------------------------


def test_render_redacts_the_password_and_round_trips():
    document = {
        "export": {"exclude_names": ["Test*"], "stale_after_seconds": 1.5},
        "miniserver": [miniserver(), miniserver(name="b", tls="on")],
    }
    config = config_from_dict(document, ENV)
    text = render_config_toml(config)
    assert SECRET not in text
    rendered = tomllib.loads(text)
    assert [table["password"] for table in rendered["miniserver"]] == [REDACTED, REDACTED]
    assert all("password_file" not in table for table in rendered["miniserver"])
    for table in rendered["miniserver"]:
        table["password"] = SECRET
    assert config_from_dict(rendered, {}) == config


def test_render_shows_the_password_file_path_not_its_content(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(SECRET, encoding="utf-8")
    document = {"miniserver": [miniserver(password=None, password_file=str(secret))]}
    config = config_from_dict(document, ENV)
    text = render_config_toml(config)
    assert SECRET not in text
    (table,) = tomllib.loads(text)["miniserver"]
    assert table["password_file"] == str(secret)
    assert "password" not in table
    assert config_from_dict(tomllib.loads(text), {}) == config


def test_render_writes_every_key():
    rendered = tomllib.loads(
        render_config_toml(config_from_dict({"miniserver": [miniserver()]}, ENV))
    )
    assert set(rendered) == {"state_dir", "web", "log", "export", "miniserver"}
    assert set(rendered["web"]) == {f.name for f in attrs.fields(WebConfig)}
    assert set(rendered["log"]) == {f.name for f in attrs.fields(LogConfig)}
    assert set(rendered["export"]) == {f.name for f in attrs.fields(ExportConfig)}
    # max_series only when the Miniserver sets its own (TOML has no null).
    fields = {f.name for f in attrs.fields(MiniserverConfig)} - {"password_file", "max_series"}
    assert set(rendered["miniserver"][0]) == fields


# --- loxone-trio-exporter check -------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch):
    for name in (*ALL_VARIABLES, "LOXONE_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/state")


@pytest.mark.usefixtures("clean_environment")
def test_check_prints_the_effective_config(tmp_path, capsys):
    path = write(
        tmp_path,
        f'[[miniserver]]\nname = "home"\nhost = "ms"\nusername = "u"\npassword = "{SECRET}"\n',
    )
    path.chmod(0o600)  # else check warns that others can read the password
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert SECRET not in captured.out
    rendered = tomllib.loads(captured.out)
    assert rendered["state_dir"] == "/state/loxone-trio-exporter"
    assert rendered["miniserver"][0]["password"] == REDACTED
    assert rendered["web"]["listen"] == ["0.0.0.0:9504"]


@pytest.mark.usefixtures("clean_environment")
def test_check_prints_every_error_and_exits_2(tmp_path, capsys):
    path = write(
        tmp_path,
        f'[web]\nlisten = ["x"]\n[[miniserver]]\nname = "home"\nhost = "ms"\nusername = "u"\n'
        f'password = "{SECRET}"\nport = "80"\nnmae = "x"\n',
    )
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert SECRET not in captured.err
    assert captured.err.splitlines() == [
        f"loxone-trio-exporter check: {path} is not a valid config:",
        'web.listen[0]: expected HOST:PORT, got "x"',
        'miniserver[0].port: expected int, got "80"',
        "miniserver[0].nmae: unknown key",
    ]


@pytest.mark.usefixtures("clean_environment")
def test_check_of_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: No such file or directory" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_environment")
def test_check_without_a_file_uses_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("LOXONE_HOST", "10.0.0.9")
    monkeypatch.setenv("LOXONE_USERNAME", "prom")
    monkeypatch.setenv("LOXONE_PASSWORD", SECRET)
    monkeypatch.setenv("LOXONE_LISTEN", "127.0.0.1:9999")
    assert main(["check"]) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    rendered = tomllib.loads(captured.out)
    assert rendered["miniserver"] == [
        {
            "name": "10.0.0.9",
            "host": "10.0.0.9",
            "port": 80,
            "username": "prom",
            "password": REDACTED,
            "tls": "auto",
            "tls_verify": True,
            "tls_ca_file": "",
            "tls_server_name": "",
            "tls_port": 443,
            "kill_token_on_exit": False,
        }
    ]
    assert rendered["web"]["listen"] == ["127.0.0.1:9999"]


@pytest.mark.usefixtures("clean_environment")
def test_check_without_a_file_checks_the_file_run_would_read(tmp_path, monkeypatch, capsys):
    # $LOXONE_CONFIG_FILE (as in the container): check and run must look at the same config.
    path = write(tmp_path, '[[miniserver]]\nname = "home"\nhost = "ms"\nusername = "u"\n')
    monkeypatch.setenv("LOXONE_CONFIG_FILE", str(path))
    assert main(["check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"loxone-trio-exporter check: {path} is not a valid config:",
        "miniserver[0]: password or password_file is required",
    ]


@pytest.mark.usefixtures("clean_environment")
def test_check_without_a_file_reports_the_variables(monkeypatch, capsys):
    monkeypatch.setenv("LOXONE_PORT", "eighty")
    monkeypatch.setenv("LOXONE_PASSWORD", SECRET)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err
    assert err.splitlines() == [
        "loxone-trio-exporter check: the LOXONE_* environment is not a valid config:",
        'LOXONE_PORT: expected int, got "eighty"',
        "LOXONE_HOST: required, but not given",
        "LOXONE_USERNAME: required, but not given",
    ]


def test_check_is_listed_in_the_help(capsys):
    assert main(["--help"]) == 0
    assert "check" in capsys.readouterr().out


# --- arbitrary input ------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    sorted(
        {
            f.name
            for cls in (Config, WebConfig, LogConfig, ExportConfig, MiniserverConfig)
            for f in attrs.fields(cls)
        }
        | {"miniserver", "web", "log", "export", "nmae"}
    )
) | st.text(max_size=6)
_SCALARS = (
    st.text(max_size=12)
    | st.sampled_from(["0.0.0.0:9504", "/metrics", "info", "json", "auto", "home", "1.2.3.4"])
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.datetimes()
    | st.dates()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=25,
)
_MINISERVER_TABLES = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["home", "office", ""]) | st.text(max_size=4),
        "host": st.sampled_from(["ms", "10.0.0.1", "fe80::1"]) | _SCALARS,
        "username": st.just("prometheus") | _SCALARS,
    },
    optional={
        "password": st.just(SECRET) | _SCALARS,
        "password_file": _SCALARS,
        "port": st.integers(-2, 70000) | _SCALARS,
        "tls": st.sampled_from(["auto", "on", "off", "maybe"]),
        "tls_verify": st.booleans() | _SCALARS,
        "nmae": _SCALARS,
    },
)
# Mostly valid tables, so that the loading path is exercised as well as the errors.
_PLAUSIBLE_TABLES = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["home", "office", "lab"]),
        "host": st.sampled_from(["ms", "10.0.0.1", "fe80::1"]),
        "username": st.just("prometheus"),
        "password": st.just(SECRET),
    },
    optional={
        "port": st.integers(0, 65536),
        "tls": st.sampled_from(["auto", "on", "off"]),
        "tls_verify": st.booleans(),
    },
)
_PLAUSIBLE_LISTS = st.lists(
    _PLAUSIBLE_TABLES, min_size=1, max_size=3, unique_by=lambda t: t["name"]
)
_DOCUMENTS = st.dictionaries(_KEYS, _VALUES, max_size=6) | st.fixed_dictionaries(
    {
        "miniserver": _PLAUSIBLE_LISTS
        | st.lists(_PLAUSIBLE_TABLES | _MINISERVER_TABLES, max_size=3)
        | _VALUES
    },
    optional={
        "web": st.fixed_dictionaries(
            {}, optional={"listen": st.lists(_SCALARS, max_size=2), "telemetry_path": _SCALARS}
        )
        | st.dictionaries(_KEYS, _VALUES, max_size=3),
        "log": st.fixed_dictionaries({}, optional={"level": _SCALARS, "format": _SCALARS}),
        "export": st.dictionaries(_KEYS, _VALUES, max_size=3),
        "state_dir": _SCALARS,
    },
)
_ENVIRONS = st.just({}) | st.dictionaries(
    st.sampled_from(ALL_VARIABLES), st.text(max_size=10) | st.just(SECRET), max_size=4
)
_BASE_DIR = Path(tempfile.mkdtemp(prefix="loxone-config-test-"))


@given(document=_DOCUMENTS, environ=_ENVIRONS)
def test_arbitrary_documents_load_or_raise_config_error(document, environ):
    # The secret may show only where it is not a password: hypothesis may put it elsewhere.
    elsewhere = SECRET in _non_password_values(document) or any(
        value == SECRET for name, value in environ.items() if name != "LOXONE_PASSWORD"
    )
    try:
        config = config_from_dict(document, environ, base_dir=_BASE_DIR)
    except ConfigError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert elsewhere or SECRET not in message
        return
    assert isinstance(config, Config)
    assert config.miniservers
    text = render_config_toml(config)
    assert elsewhere or SECRET not in text
    assert elsewhere or SECRET not in repr(config)
    tomllib.loads(text)


def _non_password_values(document: object) -> str:
    if isinstance(document, dict):
        return " ".join(
            _non_password_values(value) for key, value in document.items() if key != "password"
        )
    if isinstance(document, list):
        return " ".join(_non_password_values(value) for value in document)
    return str(document)


# --- secrets others can read ---------------------------------------------------------------------


def test_a_config_file_with_a_password_others_can_read_gets_a_warning(tmp_path):
    path = tmp_path / "exporter.toml"
    path.write_text(
        '[[miniserver]]\nname = "a"\nhost = "h"\nusername = "u"\npassword = "hunter2"\n',
        encoding="utf-8",
    )
    path.chmod(0o644)
    config = load_config(path, {})
    (warning,) = permission_warnings(path, config)
    assert str(path) in warning
    assert "chmod 600" in warning
    assert "hunter2" not in warning
    path.chmod(0o600)
    assert permission_warnings(path, config) == []


def test_a_password_file_others_can_read_gets_a_warning(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("hunter2\n", encoding="utf-8")
    secret.chmod(0o640)
    path = tmp_path / "exporter.toml"
    path.write_text(
        '[[miniserver]]\nname = "a"\nhost = "h"\nusername = "u"\npassword_file = "secret"\n',
        encoding="utf-8",
    )
    path.chmod(0o644)  # no password in it: no warning for the file itself
    config = load_config(path, {})
    (warning,) = permission_warnings(path, config)
    assert "password file" in warning
    assert str(secret) in warning


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        (None, ("0.0.0.0:9105",)),
        (["127.0.0.1:9504", "[::1]:9504"], ("127.0.0.1:9105", "[::1]:9105")),
    ],
)
def test_listen_port_keeps_the_addresses_and_sets_the_port(listen, expected):
    document: dict[str, Any] = {"miniserver": [miniserver()]}
    if listen is not None:
        document["web"] = {"listen": listen}
    config = config_from_dict(document, {**ENV, "LOXONE_LISTEN_PORT": "9105"})
    assert config.web.listen == expected


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"LOXONE_LISTEN_PORT": "http"},
            ['LOXONE_LISTEN_PORT: expected a port 1..65535, got "http"'],
        ),
        ({"LOXONE_LISTEN_PORT": "0"}, ['LOXONE_LISTEN_PORT: expected a port 1..65535, got "0"']),
        (
            {"LOXONE_LISTEN_PORT": "9105", "LOXONE_LISTEN": "127.0.0.1:9504"},
            ["LOXONE_LISTEN, LOXONE_LISTEN_PORT: give only one of the two"],
        ),
    ],
)
def test_a_bad_listen_port_names_the_variable(variables, expected):
    problems = errors_of({"miniserver": [miniserver()]}, {**ENV, **variables})
    assert [p for p in problems if p.startswith("LOXONE_LISTEN")] == [
        next(p for p in problems if p.startswith(e)) for e in expected
    ]


def test_an_unknown_loxone_variable_is_named_with_the_nearest_known_one():
    environ = {
        **ENV,
        "LOXONE_PASWORD": SECRET,  # a typo
        "LOXONE_COLOUR": "blue",  # nothing near
        "LOXONE_TEST_STRICT": "1",  # the test suite's own
        "LOXONE_HOST": "ms",
        "OTHER": "x",
    }
    assert environment_warnings(environ) == [
        "the environment variable LOXONE_COLOUR is not one the exporter reads",
        "the environment variable LOXONE_PASWORD is not one the exporter reads; "
        "did you mean LOXONE_PASSWORD?",
    ]
    assert not any(SECRET in warning for warning in environment_warnings(environ))


# --- [export] exclude_states and max_series ------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "errors"),
    [
        (
            ["", "  "],
            [
                'export.exclude_states[0]: expected "glob" or "ControlType:glob", got an empty '
                "string",
                'export.exclude_states[1]: expected "glob" or "ControlType:glob", got an empty '
                "string",
            ],
        ),
        (
            [":position"],
            [
                'export.exclude_states[0]: the control type before ":" is empty in ":position" '
                '(write "glob" alone to match states of every control type)'
            ],
        ),
        (
            ["ok", "Jalousie:"],
            ['export.exclude_states[1]: the glob after ":" is empty in "Jalousie:"'],
        ),
        ("jLocked", ['export.exclude_states: expected array, got "jLocked"']),
        ([3], ["export.exclude_states[0]: expected string, got 3"]),
    ],
)
def test_bad_exclude_states_name_their_path(entries, errors):
    document = {"export": {"exclude_states": entries}, "miniserver": [miniserver()]}
    assert errors_of(document) == errors


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            {"export": {"max_series": 0}},
            "export.max_series: expected a number of series >= 1, got 0",
        ),
        ({"export": {"max_series": 1.5}}, "export.max_series: expected int, got 1.5"),
        ({"export": {"max_series": True}}, "export.max_series: expected int, got true"),
        (
            {"miniserver": [miniserver(max_series=-1)]},
            "miniserver[0].max_series: expected a number of series >= 1, got -1",
        ),
    ],
)
def test_bad_max_series_name_their_path(document, error):
    document = {"miniserver": [miniserver()]} | document
    assert errors_of(document) == [error]


def test_a_miniserver_max_series_is_rendered_only_when_set_and_round_trips():
    config = config_from_dict(
        {"miniserver": [miniserver(max_series=7), miniserver(name="office", host="o")]}, ENV
    )
    rendered = tomllib.loads(render_config_toml(config))
    assert rendered["miniserver"][0]["max_series"] == 7
    assert "max_series" not in rendered["miniserver"][1]
    assert rendered["export"]["max_series"] == 100_000
    rendered["miniserver"][0]["password"] = rendered["miniserver"][1]["password"] = SECRET
    assert config_from_dict(rendered, ENV) == config
