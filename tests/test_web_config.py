"""The exporter-toolkit web config file: parsing, every error with its key path, the example
against promtool, and re-reading a changed file (virtual time: an injected clock)."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
import textwrap
from pathlib import Path

import bcrypt
import pytest
from conftest import strict_mode
from tls_material import Issued, issue, make_ca

from loxone_trio_exporter.errors import ConfigError
from loxone_trio_exporter.web._tls_context import ClientAuthType
from loxone_trio_exporter.web._web_config import load_web_config
from loxone_trio_exporter.web._web_config_source import WebConfigSource

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "web-config.yml"
EXAMPLE_PASSWORD = b"example-password"  # documented in the example file
PASSWORD = "correct horse battery staple"
# Cost 4: the cheapest bcrypt allows; these tests are about parsing, not about time.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def write(directory: Path, text: str, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Issued]:
    """A CA with a server and a client certificate, in ``tmp_path/certs``."""
    directory = tmp_path / "certs"
    directory.mkdir()
    ca = make_ca(directory)
    return {
        "ca": ca,
        "server": issue(directory, "server", ca, ip_addresses=("127.0.0.1",)),
        "client": issue(directory, "client", ca, dns_names=("scraper.test",), client=True),
    }


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    return str(caught.value).splitlines()


# --- what a valid file gives -------------------------------------------------------------------


def test_every_key_the_toolkit_knows_is_read(tmp_path, pki):
    path = write(
        tmp_path,
        f"""\
        tls_server_config:
          cert_file: certs/server.crt
          key_file: certs/server.key
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: certs/ca.crt
          client_allowed_sans: [scraper.test]
          min_version: TLS13
          max_version: TLS13
          cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
          prefer_server_cipher_suites: false
          curve_preferences: [X25519]
        http_server_config:
          http2: false
          headers:
            X-Frame-Options: sameorigin
            X-XSS-Protection: 0
            Content-Security-Policy: ""
        basic_auth_users:
          alice: {HASH}
        rate_limit:
          interval: 0s
          burst: 5
        """,
    )
    config = load_web_config(path)
    tls = config.tls
    assert tls is not None
    # Relative paths are relative to the file's directory, as in the toolkit.
    assert tls.cert_file == tmp_path / "certs" / "server.crt"
    assert tls.client_ca_file == tmp_path / "certs" / "ca.crt"
    assert tls.client_auth_type is ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert tls.client_allowed_sans == ("scraper.test",)
    assert (tls.min_version, tls.max_version) == (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    assert tls.prefer_server_cipher_suites is False
    assert tls.curve_preferences == ("X25519",)
    context = config.ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12_ciphers = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12_ciphers == ["ECDHE-ECDSA-AES128-GCM-SHA256"]
    assert config.http2 is False
    # A blank header is unset; YAML's int 0 is the text "0", as Go's yaml reads it.
    assert config.headers == (("X-Frame-Options", "sameorigin"), ("X-XSS-Protection", "0"))
    assert [user.name for user in config.basic_auth_users] == ["alice"]
    assert config.bcrypt_hash_of("alice") == HASH.encode()
    assert config.bcrypt_hash_of("bob") is None
    assert config.watched_files == (
        path,
        tmp_path / "certs" / "server.crt",
        tmp_path / "certs" / "server.key",
        tmp_path / "certs" / "ca.crt",
    )


def test_defaults_follow_the_toolkit(tmp_path, pki):
    config = load_web_config(
        write(
            tmp_path, "tls_server_config: {cert_file: certs/server.crt, key_file: certs/server.key}"
        )
    )
    assert config.tls is not None
    assert config.tls.client_auth_type is ClientAuthType.NO_CLIENT_CERT
    assert (config.tls.min_version, config.tls.max_version) == (
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    )
    assert config.tls.prefer_server_cipher_suites is True
    assert config.http2 is True
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode == ssl.CERT_NONE
    assert config.ssl_context.options & ssl.OP_CIPHER_SERVER_PREFERENCE


def test_an_empty_file_means_no_tls_and_no_users(tmp_path):
    config = load_web_config(write(tmp_path, ""))
    assert (config.tls, config.ssl_context, config.basic_auth_users) == (None, None, ())


def test_tls_is_off_until_a_certificate_key_ca_or_auth_type_is_given(tmp_path):
    config = load_web_config(write(tmp_path, "tls_server_config: {min_version: TLS13}"))
    assert config.tls is None


def test_inline_client_ca_and_the_legacy_require_client_cert_name(tmp_path, pki):
    ca_text = pki["ca"].cert_file.read_text()
    path = write(
        tmp_path,
        "tls_server_config:\n"
        "  cert_file: certs/server.crt\n"
        "  key_file: certs/server.key\n"
        "  client_auth_type: VerifyClientCertIfGiven\n"
        "  client_ca: |\n" + textwrap.indent(ca_text, "    "),
    )
    config = load_web_config(path)
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode == ssl.CERT_OPTIONAL
    assert config.ssl_context.cert_store_stats()["x509_ca"] == 1


def test_the_example_file_loads_and_its_documented_password_matches(tmp_path):
    config = load_web_config(EXAMPLE)
    assert config.tls is None
    [user] = config.basic_auth_users
    assert bcrypt.checkpw(EXAMPLE_PASSWORD, user.bcrypt_hash)
    assert dict(config.headers)["X-Frame-Options"] == "deny"


def test_the_example_file_passes_promtool_check_web_config():
    promtool = shutil.which("promtool")
    if promtool is None:
        if strict_mode():
            pytest.fail("promtool not found (LOXONE_TEST_STRICT=1)")
        pytest.skip("promtool not found")
    result = subprocess.run(
        [promtool, "check", "web-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- every error, with its key path ------------------------------------------------------------

TLS = "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list", "top level: expected a mapping, got a list"),
        ("tls_config: {}", 'top level: unknown key "tls_config"'),
        ("tls_server_config: [a]", "tls_server_config: expected a mapping, got a list"),
        (TLS + "  certfile: x", 'tls_server_config: unknown key "certfile"'),
        (
            "tls_server_config: {key_file: certs/server.key}",
            "tls_server_config.cert_file: required",
        ),
        (
            "tls_server_config: {cert_file: certs/server.crt}",
            "tls_server_config.key_file: required",
        ),
        ("tls_server_config: {cert_file: 5}", "tls_server_config.cert_file: expected a string"),
        (
            "tls_server_config: {cert: '-----BEGIN', key_file: certs/server.key}",
            "tls_server_config.cert: an inline certificate or key is not supported",
        ),
        (
            "tls_server_config: {cert_file: certs/server.crt, key: secret-key-text}",
            "tls_server_config.key: an inline certificate or key is not supported",
        ),
        (
            "tls_server_config: {cert_file: certs/missing.crt, key_file: certs/server.key}",
            "tls_server_config.cert_file: cannot read",
        ),
        (
            "tls_server_config: {cert_file: certs/server.key, key_file: certs/server.key}",
            "tls_server_config.cert_file: ",
        ),
        (
            "tls_server_config: {cert_file: certs/server.crt, key_file: certs/server.crt}",
            "tls_server_config.key_file: ",
        ),
        (
            "tls_server_config: {cert_file: certs/server.crt, key_file: certs/client.key}",
            "tls_server_config.key_file: does not belong to the certificate in cert_file",
        ),
        (
            "tls_server_config: {cert_file: certs/server.crt, key_file: certs/locked.key}",
            "tls_server_config.key_file: ",
        ),
        (TLS + "  client_auth_type: Sometimes", "tls_server_config.client_auth_type: unknown type"),
        (
            TLS + "  client_auth_type: RequireAnyClientCert\n  client_ca_file: certs/ca.crt",
            "tls_server_config.client_auth_type: RequireAnyClientCert (a certificate required",
        ),
        (
            TLS + "  client_ca_file: certs/ca.crt",
            "tls_server_config.client_auth_type: a client CA is configured but NoClientCert",
        ),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert",
            "tls_server_config.client_ca_file: required with client_auth_type",
        ),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
            "  client_ca_file: certs/ca.crt\n  client_ca: x",
            "tls_server_config: give client_ca or client_ca_file, not both",
        ),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
            "  client_ca_file: certs/server.key",
            "tls_server_config.client_ca_file: ",
        ),
        (
            TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: certs/ca.crt\n"
            "  client_allowed_sans: [a]",
            "tls_server_config.client_allowed_sans: needs client_auth_type",
        ),
        (
            TLS + "  client_allowed_sans: a",
            "tls_server_config.client_allowed_sans: expected a list",
        ),
        (TLS + "  min_version: TLS10", "tls_server_config.min_version: TLS10 is not served"),
        (TLS + "  max_version: TLS11", "tls_server_config.max_version: TLS11 is not served"),
        (
            TLS + "  min_version: TLS14",
            'tls_server_config.min_version: unknown TLS version "TLS14"',
        ),
        (
            TLS + "  min_version: TLS13\n  max_version: TLS12",
            "tls_server_config.min_version: newer than max_version",
        ),
        (
            TLS + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]",
            'tls_server_config.cipher_suites[0]: unknown cipher suite "TLS_RSA_WITH_RC4_128_SHA"',
        ),
        (
            TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]",
            "tls_server_config.cipher_suites: lists only TLS 1.3 suites",
        ),
        (
            TLS + "  curve_preferences: [CurveP256, X25519]",
            "tls_server_config.curve_preferences: Python's ssl module can limit",
        ),
        (TLS + "  curve_preferences: [P-256]", "tls_server_config.curve_preferences[0]: unknown"),
        (TLS + "  prefer_server_cipher_suites: 1", "tls_server_config.prefer_server_cipher_suites"),
        ("http_server_config: {http2: yes please}", "http_server_config.http2: expected true or"),
        ("http_server_config: {h2: true}", 'http_server_config: unknown key "h2"'),
        (
            "http_server_config: {headers: {Server: x}}",
            'http_server_config.headers: header "Server" can not be configured',
        ),
        (
            "http_server_config: {headers: {x-frame-options: deny}}",
            'http_server_config.headers: header "x-frame-options" can not be configured',
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: allow}}",
            'http_server_config.headers.X-Frame-Options: expected "deny" or "sameorigin"',
        ),
        (
            "http_server_config: {headers: {Content-Security-Policy: [a]}}",
            "http_server_config.headers.Content-Security-Policy: expected a string",
        ),
        (
            'http_server_config: {headers: {X-XSS-Protection: "1\\nSet-Cookie: a"}}',
            "http_server_config.headers.X-XSS-Protection: must be printable ASCII",
        ),
        ("basic_auth_users: [alice]", "basic_auth_users: expected a mapping of user names"),
        ("basic_auth_users: {alice: hunter2}", "basic_auth_users.alice: expected a bcrypt hash"),
        ("basic_auth_users: {alice: 42}", "basic_auth_users.alice: expected a bcrypt hash"),
        (f"basic_auth_users: {{'a:b': {HASH}}}", 'basic_auth_users["a:b"]: a user name with'),
        (f"basic_auth_users: {{7: {HASH}}}", "basic_auth_users: user names must be strings"),
        (
            f"basic_auth_users: {{{HASH}: alice}}",
            "basic_auth_users: a user name is a bcrypt hash; are name and hash swapped?",
        ),
        (
            f"basic_auth_users: {{alice: '$2b$03${HASH[7:]}'}}",
            "basic_auth_users.alice: bcrypt cost 03 is outside 04..31",
        ),
        ("rate_limit: {interval: 1s, burst: 2}", "rate_limit.interval: rate limiting is not"),
        ("rate_limit: {burst: x}", "rate_limit.burst: expected an int"),
        ("rate_limit: {every: 1s}", 'rate_limit: unknown key "every"'),
        ("a: [", "invalid YAML at line 1, column 5"),
        ("a: 1\na: 2", 'invalid YAML at line 2, column 1: repeated key "a"'),
    ],
)
def test_each_problem_is_one_line_starting_with_its_key_path(tmp_path, pki, text, expected):
    locked = issue(tmp_path / "certs", "locked", pki["ca"], key_password=b"pass phrase")
    assert locked.key_file.name == "locked.key"
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert any(expected in problem for problem in problems), problems
    for problem in problems:
        assert HASH not in problem
        assert HASH[7:] not in problem  # not even the salt and digest
        assert "hunter2" not in problem
        assert "secret-key-text" not in problem


def test_several_problems_come_together_one_per_line(tmp_path):
    path = write(
        tmp_path,
        """\
        tls_server_config: {client_auth_type: Never}
        http_server_config: {headers: {Server: x}}
        basic_auth_users: {alice: not-a-hash}
        extra: 1
        """,
    )
    problems = problems_of(path)
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "top level",
        "http_server_config.headers",
        "basic_auth_users.alice",
        "tls_server_config.cert_file",
        "tls_server_config.key_file",
        "tls_server_config.client_auth_type",
    ]


def test_messages_about_files_name_the_file_and_the_reason(tmp_path, pki):
    path = write(tmp_path, TLS.replace("server.crt", "missing.crt"))
    [problem] = problems_of(path)
    missing = tmp_path / "certs" / "missing.crt"
    assert (
        problem
        == f'tls_server_config.cert_file: cannot read "{missing}": No such file or directory'
    )
    locked = issue(tmp_path / "certs", "locked", pki["ca"], key_password=b"pass phrase")
    [problem] = problems_of(write(tmp_path, TLS.replace("server.key", locked.key_file.name)))
    assert problem.startswith(f'tls_server_config.key_file: "{locked.key_file}" is encrypted')


def test_a_yaml_syntax_error_does_not_quote_the_line_that_may_hold_a_hash(tmp_path):
    path = write(tmp_path, f"basic_auth_users:\n  alice: {HASH}\n  bob: '{HASH}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: invalid YAML at line")
    assert HASH not in problem


def test_an_unreadable_file_is_a_config_error(tmp_path):
    [problem] = problems_of(tmp_path / "absent.yml")
    assert problem.startswith("cannot read web config file")
    (tmp_path / "binary.yml").write_bytes(b"a: \xff\xfe\n")
    [problem] = problems_of(tmp_path / "binary.yml")
    assert "not UTF-8 text" in problem


# --- re-reading a changed file -----------------------------------------------------------------


class ManualClock:
    """The source's clock, moved by hand: the interval logic is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rewrite(path: Path, text: str) -> None:
    """Change ``path``'s content and make sure its stamp changes (mtime may have coarse ticks)."""
    before = path.stat().st_mtime_ns
    path.write_text(textwrap.dedent(text), "utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def users_of(source: WebConfigSource) -> list[str]:
    return [user.name for user in source.current().basic_auth_users]


def test_a_changed_file_is_read_again_at_most_once_per_interval(tmp_path):
    path = write(tmp_path, f"basic_auth_users: {{alice: {HASH}}}")
    clock = ManualClock()
    source = WebConfigSource(path, check_interval_seconds=1.0, clock=clock)
    assert users_of(source) == ["alice"]
    rewrite(path, f"basic_auth_users: {{bob: {HASH}}}")
    clock.now += 0.5
    assert users_of(source) == ["alice"]  # not looked at again yet
    clock.now += 0.5
    assert users_of(source) == ["bob"]


def test_an_invalid_change_keeps_the_old_config_and_is_logged_once(tmp_path, caplog):
    path = write(tmp_path, f"basic_auth_users: {{alice: {HASH}}}")
    clock = ManualClock()
    source = WebConfigSource(path, clock=clock)
    first = source.current()
    rewrite(path, "basic_auth_users: {alice: not-a-hash}\n")
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            clock.now += 1.0
            assert source.current() is first
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "basic_auth_users.alice: expected a bcrypt hash" in errors[0].getMessage()
    assert "keeping the previous one" in errors[0].getMessage()
    caplog.clear()
    rewrite(path, f"basic_auth_users: {{carol: {HASH}}}")
    with caplog.at_level(logging.INFO):
        clock.now += 1.0
        assert users_of(source) == ["carol"]
    assert any("now in force" in record.getMessage() for record in caplog.records)


def test_switching_tls_on_needs_a_restart(tmp_path, pki):
    path = write(tmp_path, "")
    clock = ManualClock()
    source = WebConfigSource(path, clock=clock)
    rewrite(path, TLS)
    clock.now += 1.0
    assert source.current().tls is None


def test_a_replaced_certificate_is_picked_up_without_touching_the_yaml(tmp_path, pki):
    path = write(tmp_path, TLS)
    clock = ManualClock()
    source = WebConfigSource(path, clock=clock)
    first = source.current()
    assert first.tls is not None
    (tmp_path / "renewal").mkdir()
    renewed = issue(tmp_path / "renewal", "server", pki["ca"], ip_addresses=("127.0.0.1",))
    # Renewal as certbot and friends do it: new files renamed over the old ones.
    for new, old in (
        (renewed.cert_file, first.tls.cert_file),
        (renewed.key_file, first.tls.key_file),
    ):
        os.replace(new, old)
    clock.now += 1.0
    second = source.current()
    assert second is not first
    assert second.ssl_context is not first.ssl_context
    clock.now += 1.0
    assert source.current() is second  # unchanged files: not read again


def test_a_source_for_an_invalid_file_cannot_be_made(tmp_path):
    with pytest.raises(ConfigError, match=r"basic_auth_users\.alice"):
        WebConfigSource(write(tmp_path, "basic_auth_users: {alice: x}"))
