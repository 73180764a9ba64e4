"""``loxone-trio-exporter simulate`` as a user runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys

import pytest
import trio
from http_client import http_request

from loxone_trio_exporter.cli import build_parser, main


async def test_simulate_serves_until_sigterm(tmp_path):
    command = [
        sys.executable, "-m", "loxone_trio_exporter", "simulate",
        "--listen", "127.0.0.1:0", "--controls", "15",
        "--user", "alice:s3cret-password:SHA1", "--user", "bob:another-one",
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with trio.fail_after(30):
            banner = b""
            while b"Users:" not in banner:
                banner += await process.stdout.receive_some(4096)
        text = banner.decode()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", text).group(1))
        assert "alice (SHA1), bob (SHA256)" in text
        assert "s3cret" not in text
        assert "another-one" not in text
        assert (await http_request(port, "/jdev/cfg/apiKey")).status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            code = await process.wait()
    assert code == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen", "nowhere"], "--listen must be HOST:PORT"),
        (["--user", "nopassword"], "NAME:PASSWORD"),
        (["--user", "a:b:MD5"], "MD5"),
        (["--user", "a:b", "--user", "a:c"], "each user name may be given once"),
        (["--count", "0"], "at least 1"),
        (["--structure", "/no/such/LoxAPP3.json"], "cannot read /no/such/LoxAPP3.json"),
    ],
)
def test_bad_simulate_arguments_exit_2_with_a_clear_message(capsys, arguments, message):
    assert main(["simulate", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_a_structure_file_that_is_not_json(tmp_path, capsys):
    path = tmp_path / "LoxAPP3.json"
    path.write_text("{not json")
    assert main(["simulate", "--structure", str(path)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_a_taken_port_is_one_line_and_exit_1(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["simulate", "--listen", f"127.0.0.1:{port}", "--controls", "3"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"loxone-trio-exporter simulate: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize("command", ["run", "check", "demo", "simulate"])
def test_every_option_has_help_text(command):
    parser = build_parser(command)
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = subcommands.choices[command]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{command} {name}: no help"
        assert action.help != argparse.SUPPRESS, f"{command} {name}: hidden"
        if action.default not in (None, False) and action.option_strings:
            assert "default" in action.help, f"{command} {name}: its default is not named"
