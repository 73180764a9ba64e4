"""The effective config as TOML, for ``check`` and for logs: every value, no secret."""

from __future__ import annotations

from typing import Any

import attrs
import tomli_w

from ._model import Config, MiniserverConfig, OtlpConfig

REDACTED = "<redacted>"


def render_config_toml(config: Config) -> str:
    """Every effective value as TOML; a password or an ``[otlp.headers]`` value shows as
    ``"<redacted>"``, a password file by its path.

    TOML has no null: every key is written but a Miniserver's ``max_series`` when it is not
    set (it then has ``[export] max_series``); ``[shard]`` only when there are several (with
    its ``index`` resolved).
    """
    document: dict[str, Any] = {
        "state_dir": config.state_dir,
        "web": attrs.asdict(config.web),
        "log": attrs.asdict(config.log),
        "export": attrs.asdict(config.export),
        "miniserver": [_miniserver_table(miniserver) for miniserver in config.miniservers],
    }
    if config.shard.count > 1:  # one shard, the default: the output is what it always was
        document["shard"] = attrs.asdict(config.shard)
    if config.otlp is not None:
        document["otlp"] = _otlp_table(config.otlp)
    return tomli_w.dumps(document)


def _otlp_table(otlp: OtlpConfig) -> dict[str, Any]:
    """``[otlp]`` with every header value redacted (a header carries a backend's credentials;
    which headers are set is worth seeing, their values are not)."""
    table = attrs.asdict(otlp)
    table["headers"] = dict.fromkeys(otlp.headers, REDACTED)
    return table


def _miniserver_table(miniserver: MiniserverConfig) -> dict[str, Any]:
    table = attrs.asdict(miniserver)
    if miniserver.max_series is None:
        del table["max_series"]  # TOML has no null: [export] max_series applies
    if miniserver.password_file:
        del table["password"]  # the file's content is the secret; its path is not
    else:
        table["password"] = REDACTED
        del table["password_file"]
    return table
