"""The exporter's HTTP endpoints: Quart-Trio on Hypercorn."""

from ..views import MetricsBody, MiniserverView, WebSource
from ._app import create_app, landing_page
from ._server import serve_web, shield_sends

__all__ = [
    "MetricsBody",
    "MiniserverView",
    "WebSource",
    "create_app",
    "landing_page",
    "serve_web",
    "shield_sends",
]
