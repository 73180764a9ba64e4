"""Which login a firmware version gets (protocol doc §4.1, §4.2; issue 17, item 1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import LoginEra, UnsupportedFirmware, login_era
from loxone_trio_exporter.simulator._firmware import Firmware


@pytest.mark.parametrize(
    ("version", "era"),
    [
        ("8.0", LoginEra.HASH),
        ("9.1.10.30", LoginEra.HASH),  # apiInfo.json of loxone-java
        ("9.2.99.99", LoginEra.HASH),
        ("9.3.0.0", LoginEra.TOKEN),
        ("10.0.9.13", LoginEra.TOKEN),
        ("10.1.12.4", LoginEra.TOKEN),
        ("10.1.12.5", LoginEra.JWT),
        ("10.3.11.25", LoginEra.JWT),  # apiInfo103.json
        ("14.5.12.7", LoginEra.JWT),
        ("99", LoginEra.JWT),  # a newer firmware than any we know keeps today's login
    ],
)
def test_each_version_gets_the_login_of_its_era(version: str, era: LoginEra) -> None:
    assert login_era(version) is era
    assert era.has_tokens is (era is not LoginEra.HASH)


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("7.4.4.1", "7.4.4.1, older than 8.0"),
        ("", "no version"),
        ("10.x", "'10.x'"),
        ("1" * 11, "not a version"),
    ],
)
def test_a_version_we_know_nothing_about_is_refused_naming_it(version: str, said: str) -> None:
    with pytest.raises(UnsupportedFirmware, match="firmware") as caught:
        login_era(version)
    assert said in str(caught.value)


@given(st.text(max_size=60))
def test_any_announced_text_gives_an_era_or_the_error(text: str) -> None:
    message = None
    try:
        era = login_era(text)
    except UnsupportedFirmware as exc:
        message = str(exc)
    else:
        assert isinstance(era, LoginEra)
    assert message is None or message.startswith("the Miniserver announces firmware")


def test_the_simulator_plays_what_each_firmware_knows() -> None:
    old, middle, current = Firmware.of("9.1.10.30"), Firmware.of("10.0.9.3"), Firmware.of("15.3")
    assert (old.hash_login, old.tokens, old.jwt, old.hash_alg) == (True, True, False, False)
    assert (middle.hash_login, middle.tokens, middle.jwt) == (False, True, False)
    assert (current.hash_login, current.jwt, current.hash_alg, current.local_flag) == (
        False,
        True,
        True,
        True,
    )
