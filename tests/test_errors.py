from __future__ import annotations

import pytest

from loxone_trio_exporter.errors import (
    AuthenticationError,
    ConfigError,
    LocalProtocolError,
    LoxoneExporterError,
    ProtocolError,
    RemoteProtocolError,
    StructureError,
    UnavailableError,
)


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


def test_authentication_and_unavailable_carry_their_codes():
    auth = AuthenticationError("token refused", code=477)
    assert (str(auth), auth.code) == ("token refused", 477)
    closed = UnavailableError("blocked for 300 s", close_code=4003)
    assert (str(closed), closed.close_code) == ("blocked for 300 s", 4003)
    assert isinstance(auth, LoxoneExporterError)
    assert isinstance(closed, LoxoneExporterError)
