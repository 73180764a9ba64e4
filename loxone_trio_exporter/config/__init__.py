"""The exporter's configuration (design 3.2): TOML file and ``LOXONE_*`` variables -> ``Config``.

``load_config`` reads and checks everything and raises one ``ConfigError`` listing every problem
with its TOML path (or the environment variable it came from); ``render_config_toml`` prints the
effective config with passwords redacted.
"""

from __future__ import annotations

from ._cli import add_check_parser, run_check, web_config_is_valid
from ._env import environment_warnings
from ._export_filter import export_filter
from ._load import (
    CONTAINER_CONFIG_FILE,
    config_from_dict,
    default_config_file,
    describe_source,
    load_config,
    read_password_file,
)
from ._model import (
    Config,
    ExportConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    MiniserverConfig,
    OtlpCompression,
    OtlpConfig,
    ShardConfig,
    TlsMode,
    WebConfig,
    default_state_dir,
    split_state_glob,
)
from ._permissions import permission_warnings
from ._render import REDACTED, render_config_toml
from ._shard import own_shard

__all__ = [
    "CONTAINER_CONFIG_FILE",
    "REDACTED",
    "Config",
    "ExportConfig",
    "LogConfig",
    "LogFormat",
    "LogLevel",
    "MiniserverConfig",
    "OtlpCompression",
    "OtlpConfig",
    "ShardConfig",
    "TlsMode",
    "WebConfig",
    "add_check_parser",
    "config_from_dict",
    "default_config_file",
    "default_state_dir",
    "describe_source",
    "environment_warnings",
    "export_filter",
    "load_config",
    "own_shard",
    "permission_warnings",
    "read_password_file",
    "render_config_toml",
    "run_check",
    "split_state_glob",
    "web_config_is_valid",
]
