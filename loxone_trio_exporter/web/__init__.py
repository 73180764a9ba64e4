"""The exporter's HTTP endpoints: Quart-Trio on Hypercorn.

The web config file (``[web] web_config_file``: TLS and basic auth, as Prometheus exporters
read it) needs PyYAML and bcrypt; ``WebConfigSource`` and ``load_web_config`` are loaded on first
use, so an exporter without such a file never imports them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..views import MetricsBody, MiniserverView, WebSource
from ._app import create_app, landing_page
from ._server import serve_web, shield_sends

if TYPE_CHECKING:
    from ._web_config import load_web_config
    from ._web_config_source import WebConfigSource

#: Names served by ``__getattr__`` on first use, and the private module that holds each.
_LOADED_ON_USE = {
    "WebConfigSource": "._web_config_source",
    "load_web_config": "._web_config",
}


def __getattr__(name: str) -> object:
    module = _LOADED_ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "MetricsBody",
    "MiniserverView",
    "WebConfigSource",
    "WebSource",
    "create_app",
    "landing_page",
    "load_web_config",
    "serve_web",
    "shield_sends",
]
