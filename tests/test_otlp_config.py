"""``[otlp]``: the table, its ``LOXONE_OTLP_*`` variables, ``check`` output, and the rule that
a header value (a backend's credentials) appears in no message and no output."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.cli import main
from loxone_trio_exporter.config import (
    REDACTED,
    OtlpConfig,
    config_from_dict,
    render_config_toml,
)
from loxone_trio_exporter.errors import ConfigError

SECRET = "Basic c2VjcmV0LXRva2Vu-Geheim"
MINISERVER = {"name": "home", "host": "ms", "username": "u", "password": "p"}
ENV = {"HOME": "/home/exporter"}


def load(otlp: object, environ: dict[str, str] | None = None) -> Any:
    document: dict[str, Any] = {"miniserver": [MINISERVER]}
    if otlp is not None:
        document["otlp"] = otlp
    return config_from_dict(document, ENV | (environ or {}))


def problems(otlp: object, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(otlp, environ)
    return str(caught.value).splitlines()


def test_no_table_no_push() -> None:
    assert load(None).otlp is None


def test_defaults() -> None:
    otlp = load({"endpoint": "http://collector:4318"}).otlp
    assert otlp == OtlpConfig(
        endpoint="http://collector:4318",
        interval_seconds=60.0,
        timeout_seconds=10.0,
        compression="gzip",
        headers={},
        service_name="loxone-trio-exporter",
        service_instance_id=otlp.service_instance_id,
    )
    assert otlp.service_instance_id  # the host name


def test_every_key() -> None:
    otlp = load(
        {
            "endpoint": "https://otlp.example.com/otlp/v1/metrics?tenant=a",
            "interval_seconds": 15,
            "timeout_seconds": 2.5,
            "compression": "none",
            "headers": {"Authorization": SECRET, "X-Scope-OrgID": "home"},
            "service_name": "loxone",
            "service_instance_id": "rack-1",
        }
    ).otlp
    assert otlp.interval_seconds == 15.0
    assert otlp.compression == "none"
    assert otlp.headers == {"Authorization": SECRET, "X-Scope-OrgID": "home"}
    assert SECRET not in repr(otlp)


def test_errors_name_their_path_and_never_show_a_header_value() -> None:
    found = problems(
        {
            "endpoint": "collector:4318",
            "interval_seconds": 0,
            "timeout_seconds": "10",
            "compression": "zstd",
            "headers": {"Authorization": 12},
            "colour": "blue",
        }
    )
    assert found == [
        'otlp.endpoint: expected an http(s) URL such as "http://otel-collector:4318/v1/metrics", '
        'got "collector:4318"',
        "otlp.interval_seconds: expected a number > 0, got 0.0",
        'otlp.timeout_seconds: expected number, got "10"',
        'otlp.compression: expected one of "gzip", "none", got "zstd"',
        "otlp.headers: Authorization: expected string, got an int",
        "otlp.colour: unknown key",
    ]


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Bad Name": SECRET}, 'otlp.headers: "Bad Name" is not a valid HTTP header name'),
        (
            {"Content-Length": SECRET},
            'otlp.headers: "Content-Length" is set by the exporter itself',
        ),
        (
            {"X-Key": SECRET + "\r\nX-Evil: 1"},
            'otlp.headers: the value of "X-Key" holds a line break or NUL',
        ),
        ([SECRET], "otlp.headers: expected table, got an array"),
        (SECRET, "otlp.headers: expected table, got a string"),
    ],
)
def test_bad_headers(headers: object, problem: str) -> None:
    assert problems({"endpoint": "http://c:4318", "headers": headers}) == [problem]


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        (f"https://user:{SECRET}@otlp.example.com", "credentials in the URL are not supported"),
        (f"otlp.example.com/v1/metrics?key={SECRET}", "got a URL"),
        ("http://c:4318/v1/metrics#frag", "a URL fragment"),
        ("ftp://c/v1/metrics", 'got "ftp://c/v1/metrics"'),
        ("http://c:70000/", "expected an http(s) URL"),
        ("", "expected an http(s) URL"),
    ],
)
def test_bad_endpoints(endpoint: str, problem: str) -> None:
    (found,) = problems({"endpoint": endpoint})
    assert found.startswith("otlp.endpoint: ")
    assert problem in found
    assert SECRET not in found


def test_a_table_without_endpoint() -> None:
    assert problems({"interval_seconds": 5}) == ["otlp.endpoint: required, but not given"]


def test_variables_turn_the_push_on_and_override_the_file() -> None:
    environ = {
        "LOXONE_OTLP_ENDPOINT": "http://env-collector:4318",
        "LOXONE_OTLP_INTERVAL_SECONDS": "30",
        "LOXONE_OTLP_TIMEOUT_SECONDS": "1.5",
        "LOXONE_OTLP_COMPRESSION": "none",
        "LOXONE_OTLP_HEADERS": "Authorization=Basic%20abc%3D%3D, X-Tenant = home",
        "LOXONE_OTLP_SERVICE_NAME": "lox",
        "LOXONE_OTLP_SERVICE_INSTANCE_ID": "pod-7",
    }
    otlp = load(None, environ).otlp
    assert otlp == OtlpConfig(
        endpoint="http://env-collector:4318",
        interval_seconds=30.0,
        timeout_seconds=1.5,
        compression="none",
        headers={"Authorization": "Basic abc==", "X-Tenant": "home"},
        service_name="lox",
        service_instance_id="pod-7",
    )
    from_file = load(
        {"endpoint": "http://file:4318", "headers": {"A": "1"}},
        {"LOXONE_OTLP_ENDPOINT": "http://env:4318"},
    ).otlp
    assert from_file.endpoint == "http://env:4318"
    assert from_file.headers == {"A": "1"}


def test_the_environment_alone_with_otlp() -> None:
    config = config_from_dict(
        {},
        ENV
        | {
            "LOXONE_HOST": "ms",
            "LOXONE_USERNAME": "u",
            "LOXONE_PASSWORD": "p",
            "LOXONE_OTLP_ENDPOINT": "http://c:4318",
        },
        from_file=False,
    )
    assert config.otlp is not None
    assert config.otlp.endpoint == "http://c:4318"


def test_bad_variables_are_reported_under_their_names_without_a_secret() -> None:
    found = problems(
        None,
        {
            "LOXONE_OTLP_ENDPOINT": "http://c:4318",
            "LOXONE_OTLP_HEADERS": f"Authorization {SECRET}",
            "LOXONE_OTLP_INTERVAL_SECONDS": "soon",
            "LOXONE_OTLP_COMPRESSION": "brotli",
        },
    )
    assert found == [
        'LOXONE_OTLP_INTERVAL_SECONDS: expected number, got "soon"',
        "LOXONE_OTLP_HEADERS: expected NAME=VALUE pairs separated by commas",
        'LOXONE_OTLP_COMPRESSION: expected one of "gzip", "none", got "brotli"',
    ]
    found = problems(None, {"LOXONE_OTLP_HEADERS": f"Bad Name={SECRET}"})
    assert found == [
        "otlp.endpoint: required, but not given",
        'LOXONE_OTLP_HEADERS: "Bad Name" is not a valid HTTP header name',
    ]


def test_check_output_redacts_header_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOXONE_OTLP_HEADERS", "LOXONE_OTLP_ENDPOINT", "LOXONE_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "exporter.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [[miniserver]]
            name = "home"
            host = "ms"
            username = "u"
            password = "p"

            [otlp]
            endpoint = "http://collector:4318/v1/metrics"
            headers = {{ Authorization = "{SECRET}" }}
            """
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    rendered = tomllib.loads(captured.out)
    assert rendered["otlp"]["headers"] == {"Authorization": REDACTED}
    assert rendered["otlp"]["endpoint"] == "http://collector:4318/v1/metrics"


def test_otlp_without_the_extra_is_a_config_error(tmp_path: Path) -> None:
    """A fresh interpreter in which the extra's packages cannot be imported, as on a plain
    install: ``check`` exits 2 and says what to install, with no traceback."""
    path = tmp_path / "exporter.toml"
    path.write_text(
        '[[miniserver]]\nname = "h"\nhost = "ms"\nusername = "u"\npassword = "p"\n'
        '[otlp]\nendpoint = "http://c:4318"\n',
        encoding="utf-8",
    )
    child = textwrap.dedent(
        """\
        import sys
        from importlib.abc import MetaPathFinder

        class NotInstalled(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("opentelemetry", "google"):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, NotInstalled())
        from loxone_trio_exporter.cli import main
        sys.exit(main(["check", sys.argv[1]]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[1:] == [
        "otlp: the OTLP push needs the otlp extra (opentelemetry-proto, protobuf not "
        "installed): pip install 'loxone-trio-exporter[otlp]'"
    ]


_HEADER_NAMES = st.text(min_size=0, max_size=8) | st.sampled_from(["Authorization", "Host"])
_HEADER_VALUES = st.just(SECRET) | st.text(max_size=8).map(lambda t: SECRET + t)


@given(
    headers=st.dictionaries(
        _HEADER_NAMES, _HEADER_VALUES | st.integers() | st.lists(st.just(SECRET)), max_size=3
    ),
    variable=st.none() | st.text(max_size=20).map(lambda t: f"{t}={SECRET}{t}"),
)
def test_a_header_value_never_shows(headers: dict[str, object], variable: str | None) -> None:
    environ = {} if variable is None else {"LOXONE_OTLP_HEADERS": variable}
    try:
        config = load({"endpoint": "http://c:4318", "headers": headers}, environ)
    except ConfigError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert SECRET not in message
        return
    assert SECRET not in render_config_toml(config)
    assert SECRET not in repr(config)
