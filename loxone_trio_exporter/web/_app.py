"""The HTTP side: a Quart-Trio app with ``/metrics``, a landing page and health endpoints.

The app reads state through ``WebSource`` only (immutable snapshots from the state owner), so it
holds no state of its own and never touches protocol internals. With a reload callback it also
serves ``POST /-/reload`` as Prometheus does: 200 when the config was reloaded, 500 with the
errors when it was not; any other method is 405. The reload starts only once the request has
been read whole; a malformed one gets 400 and reloads nothing.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from quart import Response, request
from quart_trio import QuartTrio

from .. import __version__
from ..views import MiniserverView, WebSource


class ReloadOutcome(Protocol):
    """What the reload callback reports; ``message`` never holds a secret."""

    @property
    def successful(self) -> bool: ...

    @property
    def message(self) -> str: ...


def create_app(
    source: WebSource,
    *,
    telemetry_path: str = "/metrics",
    reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
    shard: Callable[[], tuple[int, int]] | None = None,
    reconnect: Callable[[str | None], tuple[str, ...] | None] | None = None,
) -> QuartTrio:
    """The app; without ``reload`` there is no ``/-/reload`` (404), without ``reconnect`` no
    ``/-/reconnect``. ``shard`` gives the running ``[shard]`` (index, count) for the landing
    page. ``reconnect(name)`` ends the wait for the next try of ``name`` (``None``: of all)
    and says who was waiting, or ``None`` for a name that runs no connection."""
    app = QuartTrio("loxone_trio_exporter")
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False

    async def metrics() -> Response:
        rendered = await source.render_metrics(
            request.headers.get("Accept"), request.headers.get("Accept-Encoding")
        )
        headers = {"Content-Type": rendered.content_type, "Vary": "Accept, Accept-Encoding"}
        if rendered.gzipped:
            headers["Content-Encoding"] = "gzip"
        body = rendered.body
        if isinstance(body, tuple):
            return Response(_streamed(body), status=200, headers=headers)
        return Response(body, status=200, headers=headers)

    app.add_url_rule(telemetry_path, "metrics", metrics, methods=["GET"])

    @app.get("/")
    async def landing() -> Response:
        return Response(
            landing_page(source.miniservers(), telemetry_path, None if shard is None else shard()),
            content_type="text/html; charset=utf-8",
        )

    @app.get("/-/healthy")
    async def healthy() -> Response:
        return Response("OK\n", content_type="text/plain; charset=utf-8")

    @app.get("/-/ready")
    async def ready() -> Response:
        waiting = [view.name for view in source.miniservers() if not view.streaming]
        if not waiting:
            return Response("Ready\n", content_type="text/plain; charset=utf-8")
        body = json.dumps({"status": "not ready", "not_streaming": waiting})
        return Response(body, status=503, content_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        views = list(source.miniservers())
        up = sum(view.streaming for view in views)
        status = "healthy" if up == len(views) else ("degraded" if up else "unhealthy")
        body = {
            "status": status,
            "miniservers": {
                view.name: {"streaming": view.streaming, "state": view.state} for view in views
            },
        }
        # A shard that runs no Miniserver at all is healthy: it has nothing to wait for.
        return Response(
            json.dumps(body),
            status=200 if up or not views else 503,
            content_type="application/json",
        )

    if reload is not None:

        async def reload_config() -> Response:
            # Quart runs a handler as soon as the headers are in. A request whose body turns out
            # malformed or cut short is answered 400 by Hypercorn, and must not have reloaded:
            # so the whole body is read first (its content is ignored, as by Prometheus). On a
            # bad body the connection ends and Quart-Trio cancels this handler right here.
            await request.get_data(cache=False)
            outcome = await reload()
            return Response(
                outcome.message + "\n",
                status=200 if outcome.successful else 500,
                content_type="text/plain; charset=utf-8",
            )

        # POST only (a GET must not change anything); Quart answers 405 to other methods.
        app.add_url_rule("/-/reload", "reload", reload_config, methods=["POST"])

    if reconnect is not None:

        async def reconnect_now() -> Response:
            await request.get_data(cache=False)  # as for /-/reload: the whole request first
            name = request.args.get("miniserver")
            woken = reconnect(name)
            if woken is None:
                return Response(
                    f"no Miniserver named {name!r} runs here\n",
                    status=404,
                    content_type="text/plain; charset=utf-8",
                )
            text = (
                f"trying again now: {', '.join(woken)}"
                if woken
                else "no Miniserver was waiting for its next try"
            )
            return Response(text + "\n", content_type="text/plain; charset=utf-8")

        app.add_url_rule("/-/reconnect", "reconnect", reconnect_now, methods=["POST"])

    return app


async def _streamed(segments: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    """A body sent segment by segment (chunked), each write a point where other tasks run."""
    for segment in segments:
        yield segment


def landing_page(
    views: Sequence[MiniserverView], telemetry_path: str, shard: tuple[int, int] | None = None
) -> str:
    """A plain page: what runs, and where the metrics are. Every value is HTML-escaped."""
    rows = "\n".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(view.name),
            html.escape(view.state),
            html.escape(view.firmware or "-"),
            view.series,
            _format_time(view.last_event_unix),
        )
        for view in views
    )
    path = html.escape(telemetry_path, quote=True)
    shard_line = ""
    if shard is not None:  # [shard]: which instance of those sharing the config this is
        (index, count), held = shard, "Miniserver" if len(views) == 1 else "Miniservers"
        shard_line = (
            f"<p>Shard {index} of {count} (indexes 0 to {count - 1}): "
            f"this instance runs {len(views)} {held}.</p>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loxone-trio-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style>
</head><body>
<h1>loxone-trio-exporter {html.escape(__version__)}</h1>
<p><a href="{path}">Metrics</a> · <a href="/healthz">Health</a> · <a href="/-/ready">Ready</a></p>
{shard_line}
<table><tr><th>Miniserver</th><th>State</th><th>Firmware</th><th>Series</th><th>Last event</th></tr>
{rows}
</table></body></html>
"""


def _format_time(unix: float | None) -> str:
    if unix is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(unix, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
