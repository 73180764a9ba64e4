from __future__ import annotations

import pytest

from loxone_trio_exporter.errors import (
    ConfigError,
    LocalProtocolError,
    LoxoneExporterError,
    ProtocolError,
    RemoteProtocolError,
    StructureError,
    UnavailableError,
)
from loxone_trio_exporter.runtime._endings import closed
from loxone_trio_exporter.runtime._messages import ReconnectReason


@pytest.mark.parametrize(
    "error_type",
    [ConfigError, LocalProtocolError, RemoteProtocolError, StructureError],
)
def test_every_error_has_one_root(error_type):
    assert issubclass(error_type, LoxoneExporterError)


def test_protocol_errors_split_by_whose_fault():
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)


def test_remote_protocol_error_says_the_offset():
    assert str(RemoteProtocolError("bad", offset=12)) == "bad (at byte offset 12)"
    assert RemoteProtocolError("bad").offset is None
    assert str(RemoteProtocolError("bad")) == "bad"


def test_every_way_a_session_ends_is_under_the_root_with_its_reason():
    ended = closed(4003, "blocked (42)", update_retry=5.0)
    assert isinstance(ended, LoxoneExporterError)
    assert (ended.reason, ended.retry_after) == (ReconnectReason.BLOCKED, 42.0)
    assert isinstance(UnavailableError("refused"), LoxoneExporterError)
