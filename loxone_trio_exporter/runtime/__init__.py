"""The exporter's runtime on trio: connection tasks, the state owner and config reloads (no web
framework: ``supervisor`` joins this with the web server).

What other layers use is exported here; the modules behind it are private.
"""

from ._connections import ConnectionRegistry, PreparedConnection
from ._endings import SessionEnded
from ._facts import BuildInfo
from ._families import otlp_exports_family
from ._identity import installation_uuid
from ._memory import freeze_startup_objects, limit_malloc_arenas, return_large_blocks_at_once
from ._messages import Message
from ._owner import StateOwner
from ._reload import (
    ConfigSource,
    LoggingSetup,
    Reloader,
    ReloadPlan,
    ReloadResult,
    plan_reload,
    series_limits,
    summary,
)
from ._session import Timeouts
from ._token_store import TokenStore
from ._web_source import ExporterWebSource

__all__ = [
    "BuildInfo",
    "ConfigSource",
    "ConnectionRegistry",
    "ExporterWebSource",
    "LoggingSetup",
    "Message",
    "PreparedConnection",
    "ReloadPlan",
    "ReloadResult",
    "Reloader",
    "SessionEnded",
    "StateOwner",
    "Timeouts",
    "TokenStore",
    "freeze_startup_objects",
    "installation_uuid",
    "limit_malloc_arenas",
    "otlp_exports_family",
    "plan_reload",
    "return_large_blocks_at_once",
    "series_limits",
    "summary",
]
