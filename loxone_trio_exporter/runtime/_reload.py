"""Config reload (SIGHUP, ``POST /-/reload``): read the config again and apply what changed.

What a reload does, Prometheus-style:

- the config is read from where it came from at start (the same file, the same environment);
- an invalid config changes nothing: every error is logged, the answer says what is wrong and
  ``loxone_exporter_config_last_reload_successful`` goes to 0 until a reload succeeds;
- a Miniserver is known by its ``name``. One whose settings are all equal keeps its session; a
  new one starts; a removed one stops and its series go; one whose settings changed (host,
  password, port, ...) is stopped and started again, with fresh series and counters;
- ``[export]`` applies to the series at once, without touching a session, and so does a
  Miniserver's own ``max_series`` (the one setting of a ``[[miniserver]]`` that is not a
  session's); ``[log]`` applies at once; ``[web] listen``, ``telemetry_path`` and
  ``state_dir`` are kept (they need a restart), with a warning that says so, and the reload
  still succeeds.

Reloads run one at a time, in the supervisor's nursery: a caller that goes away (an HTTP client
that hangs up) cannot leave a reload half done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import trio

from ..config import Config, LogConfig, MiniserverConfig, describe_source, load_config
from ..errors import ConfigError
from ..logs import CONFIG_LOGGER, mask_secrets
from ._connections import ConnectionRegistry, PreparedConnection
from ._owner import StateOwner

log = logging.getLogger(CONFIG_LOGGER)

#: Sets up logging from ``[log]``, masking every one of the passwords (``configure_logging``).
LoggingSetup = Callable[[LogConfig, Sequence[str]], None]


def _copy(environ: Mapping[str, str]) -> dict[str, str]:
    return dict(environ)  # a snapshot: later changes to the process environment do not count


@attrs.frozen
class ConfigSource:
    """Where the config comes from: the file given at start (``None``: the environment alone)
    and the environment as it was at start (a running process's environment cannot change from
    outside, so an environment-only reload reads the same values again)."""

    path: Path | None
    environ: Mapping[str, str] = attrs.field(converter=_copy, repr=False)  # LOXONE_PASSWORD

    def load(self) -> Config:
        return load_config(self.path, self.environ)

    def describe(self) -> str:
        return describe_source(self.path)


@attrs.frozen
class ReloadPlan:
    """What applying a loaded config to the running one means (``plan_reload``)."""

    config: Config  # what runs afterwards: the loaded config with the kept settings
    unchanged: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    export_changed: bool
    log_changed: bool
    warnings: tuple[str, ...]
    #: A kept Miniserver's own ``max_series`` changed (applied as ``[export]`` is).
    limits_changed: bool = False


def _session_settings(miniserver: MiniserverConfig) -> MiniserverConfig:
    """What a Miniserver's session depends on: all but its ``max_series``."""
    return attrs.evolve(miniserver, max_series=None)


def series_limits(config: Config) -> dict[str, int]:
    """The Miniservers' own ``max_series``, by name (those that set one)."""
    return {m.name: m.max_series for m in config.miniservers if m.max_series is not None}


def plan_reload(running: Config, loaded: Config) -> ReloadPlan:
    """Compare Miniservers by name and whole settings; keep what needs a restart."""
    before = {m.name: _session_settings(m) for m in running.miniservers}
    after = {m.name: _session_settings(m) for m in loaded.miniservers}
    limits_before, limits_after = series_limits(running), series_limits(loaded)
    warnings: list[str] = []
    web = running.web
    if loaded.web.listen != web.listen:
        warnings.append(
            f"[web] listen changed to {', '.join(loaded.web.listen)}: that needs a restart; "
            f"still listening on {', '.join(web.listen)}"
        )
    if loaded.web.telemetry_path != web.telemetry_path:
        warnings.append(
            f"[web] telemetry_path changed to {loaded.web.telemetry_path}: that needs a "
            f"restart; metrics stay on {web.telemetry_path}"
        )
    if loaded.state_dir != running.state_dir:
        warnings.append(
            f"state_dir changed to {loaded.state_dir}: that needs a restart; "
            f"still using {running.state_dir}"
        )
    # Only what needs a restart is pinned; the rest of [web] is left as loaded.
    kept_web = attrs.evolve(loaded.web, listen=web.listen, telemetry_path=web.telemetry_path)
    return ReloadPlan(
        config=attrs.evolve(loaded, web=kept_web, state_dir=running.state_dir),
        unchanged=tuple(name for name in after if before.get(name) == after[name]),
        added=tuple(name for name in after if name not in before),
        removed=tuple(name for name in before if name not in after),
        changed=tuple(name for name in after if name in before and before[name] != after[name]),
        export_changed=loaded.export != running.export,
        log_changed=loaded.log != running.log,
        warnings=tuple(warnings),
        limits_changed=any(
            limits_before.get(name) != limits_after.get(name)
            for name in after
            if name in before and before[name] == after[name]
        ),
    )


@attrs.frozen
class ReloadResult:
    """The outcome of one reload; ``message`` is what ``POST /-/reload`` answers."""

    successful: bool
    message: str
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


def summary(plan: ReloadPlan) -> str:
    """E.g. ``added office; removed garage; restarted home; 1 unchanged``."""
    parts = [
        f"{verb} {', '.join(names)}"
        for verb, names in (
            ("added", plan.added),
            ("removed", plan.removed),
            ("restarted", plan.changed),
        )
        if names
    ]
    parts.append(f"{len(plan.unchanged)} unchanged")
    if plan.export_changed:
        parts.append("[export] applied")
    if plan.limits_changed:
        parts.append("max_series applied")
    if plan.log_changed:
        parts.append("[log] applied")
    return "; ".join(parts)


class Reloader:
    """Applies reloads to the running exporter; ``reload`` is what SIGHUP and the web call."""

    def __init__(
        self,
        source: ConfigSource,
        running: Config,
        *,
        nursery: trio.Nursery,
        registry: ConnectionRegistry,
        owner: StateOwner,
        setup_logging: LoggingSetup | None = None,
    ) -> None:
        self._source = source
        self._running = running
        self._nursery = nursery
        self._registry = registry
        self._owner = owner
        self._setup_logging = setup_logging
        self._lock = trio.Lock()
        # Every password configured since start: one that was removed may still be valid on
        # its Miniserver, so it stays masked.
        self._secrets = {miniserver.password for miniserver in running.miniservers}

    @property
    def running(self) -> Config:
        """The config the exporter runs now."""
        return self._running

    async def reload(self) -> ReloadResult:
        """Read the config again and apply it; wait for reloads already under way first."""
        finished = trio.Event()
        outcome: list[ReloadResult] = []

        async def run() -> None:
            try:
                async with self._lock:
                    outcome.append(await self._reload())
            finally:
                finished.set()

        self._nursery.start_soon(run, name="config reload")
        await finished.wait()
        if not outcome:  # cancelled: the exporter is stopping
            return ReloadResult(successful=False, message="reload cut short: the exporter stops")
        return outcome[0]

    async def _reload(self) -> ReloadResult:
        source = self._source.describe()
        log.info("reloading the config from %s", source)
        try:
            # A thread: the file (and any password_file) may sit on a slow or hung disk.
            loaded = await trio.to_thread.run_sync(self._source.load)
        except ConfigError as exc:
            return self._failed(source, [line for line in str(exc).splitlines() if line])
        except Exception:
            log.exception("config reload: unexpected error while reading %s", source)
            return self._failed(source, ["unexpected error while reading it (see the log)"])
        fresh_secrets = {m.password for m in loaded.miniservers} - self._secrets
        self._secrets |= fresh_secrets
        plan = plan_reload(self._running, loaded)
        prepared = self._prepare(plan)
        if isinstance(prepared, list):
            return self._failed(source, prepared)
        if self._setup_logging is not None and (plan.log_changed or fresh_secrets):
            # First, so that new passwords are masked before their connections start.
            self._setup_logging(plan.config.log, sorted(self._secrets))
        for warning in plan.warnings:
            log.warning("config reload: %s", warning)
        await self._apply(plan, prepared)
        self._running = plan.config
        self._owner.record_reload(successful=True)
        # A reload is how an operator says "I fixed it": no Miniserver waits out its backoff.
        self._registry.retry_now()
        text = summary(plan)
        log.info("config reloaded from %s: %s", source, text)
        message = "\n".join([f"config reloaded from {source}: {text}", *plan.warnings])
        return ReloadResult(
            successful=True,
            message=mask_secrets(message, self._secrets),
            warnings=plan.warnings,
            added=plan.added,
            removed=plan.removed,
            restarted=plan.changed,
            unchanged=plan.unchanged,
        )

    def _failed(self, source: str, errors: list[str]) -> ReloadResult:
        # A second line of defence: config errors are written never to hold a password.
        errors = [mask_secrets(error, self._secrets) for error in errors]
        for error in errors:
            log.error("config reload: %s", error)
        log.error(
            "config reload failed: %s is not a valid config (%d error(s)); the previous "
            "config keeps running",
            source,
            len(errors),
        )
        self._owner.record_reload(successful=False)
        message = "\n".join(
            [f"failed to reload config from {source}; the previous config keeps running:", *errors]
        )
        return ReloadResult(successful=False, message=message, errors=tuple(errors))

    def _prepare(self, plan: ReloadPlan) -> dict[str, PreparedConnection] | list[str]:
        """The connection tasks to start, built before anything changes; or what stops them
        (settings a config check cannot see, such as an unreadable ``tls_ca_file``)."""
        starting = {*plan.added, *plan.changed}
        prepared: dict[str, PreparedConnection] = {}
        errors: list[str] = []
        for index, miniserver in enumerate(plan.config.miniservers):
            if miniserver.name not in starting:
                continue
            try:
                prepared[miniserver.name] = self._registry.prepare(miniserver)
            except Exception as exc:  # whatever it is, the running config must stay
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                errors.append(f"miniserver[{index}]: cannot be set up: {reason}")
        if errors:
            for connection in prepared.values():
                self._registry.discard(connection)
            return errors
        return prepared

    async def _apply(self, plan: ReloadPlan, prepared: dict[str, PreparedConnection]) -> None:
        order = tuple(miniserver.name for miniserver in plan.config.miniservers)
        limits = series_limits(plan.config)
        for name in plan.added:
            self._owner.add_miniserver(name, max_series=limits.get(name))
            self._registry.start(prepared[name])
        self._owner.sort_miniservers(order)
        async with trio.open_nursery() as stopping:  # each within its own short bound
            for name in (*plan.removed, *plan.changed):
                stopping.start_soon(self._registry.stop, name)
        for name in plan.changed:
            self._owner.add_miniserver(name, max_series=limits.get(name))
            self._registry.start(prepared[name])
        self._owner.sort_miniservers(order)
        if plan.export_changed or plan.limits_changed:
            self._owner.set_export(plan.config.export, limits)
