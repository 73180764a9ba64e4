"""``loxone-trio-exporter simulate`` as a user runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import trio
from http_client import http_request

from loxone_trio_exporter.cli import main


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
