"""The admin listener: what operators use, apart from the public webhook port.

The public listener (``RAPPORT_WEB_HOST:RAPPORT_WEB_PORT``) must face the internet so platforms can
deliver; it serves the webhook routes and ``/health/live``, ``/health/ready``, and nothing else. Everything
for operators lives here, on ``RAPPORT_ADMIN_HOST:RAPPORT_ADMIN_PORT`` (loopback by default):

- ``GET  /rapport/progress``  the worker's counters, freshness, health (JSON)
- ``POST /rapport/sql?format=F`` a read-only query on the worker's own chdb (``streams/web/readonly_sql.py``);
  what ``rapport sql --data-dir`` uses while a worker holds that chdb directory
- ``GET  /metrics``           the same counters in Prometheus' text format
- ``GET  /health/live``, ``GET /health/ready`` as on the public port

Every request needs ``Authorization: Bearer <RAPPORT_ADMIN_TOKEN>`` (compared in constant time): missing or
wrong → 401. A request that carries an ``Origin`` header comes from a browser page and is refused (403)
whatever its token: no web page can drive the admin listener of a developer's local stack.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from streams.worker.app import Rapport

log = logging.getLogger("rapport.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_SQL_BYTES = 64 * 1024
READ_SECONDS = 10.0


def token_ok(expected: str, header: str | None) -> bool:
    """``header`` is ``Bearer <expected>`` (constant time; any bytes, never an exception)."""
    if not expected or not header or header[:7].lower() != "bearer ":
        return False
    given = header[7:].strip().encode("utf-8", errors="surrogateescape")
    return hmac.compare_digest(expected.encode(), given)


def build_admin_app(rapport: Rapport, token: str) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "Origin" in request.headers:
            return web.json_response({"error": "requests from web pages are not accepted"}, status=403)
        if not token_ok(token, request.headers.get("Authorization")):
            return web.json_response(
                {"error": "missing or wrong admin token (Authorization: Bearer …)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="rapport-admin"'},
            )
        return await handler(request)

    async def progress(request: web.Request) -> web.StreamResponse:
        return web.json_response(rapport.progress_report())

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(text=prometheus_text(rapport.progress_report()), content_type="text/plain")

    async def sql(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_SQL_BYTES:
            return web.json_response({"error": f"query over {MAX_SQL_BYTES} bytes"}, status=413)
        try:
            async with asyncio.timeout(READ_SECONDS):
                body = await request.read()  # the whole body (a partial read could run a truncated query)
        except TimeoutError:
            return web.json_response({"error": f"query not received within {READ_SECONDS:g}s"}, status=408)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"query over {MAX_SQL_BYTES} bytes"}, status=413)
        try:
            query = body.decode("utf-8")
        except UnicodeDecodeError:
            return web.Response(text="the query is not UTF-8\n", status=400)
        status, text = await rapport.admin_query(query, request.query.get("format", "TSV"))
        return web.Response(text=text, status=status)

    app = web.Application(middlewares=[guard], client_max_size=MAX_SQL_BYTES)
    app.router.add_get("/rapport/progress", progress)
    app.router.add_post("/rapport/sql", sql)
    app.router.add_get("/metrics", metrics)
    for path, handler in health_routes(rapport):
        app.router.add_get(path, handler)  # GET and HEAD
    return app


def health_routes(rapport: Rapport) -> list[tuple[str, Handler]]:
    """``/health/live`` and ``/health/ready`` (for Kubernetes probes; see the README)."""

    async def live(request: web.Request) -> web.StreamResponse:
        ok, reasons = rapport.liveness()
        return web.json_response({"live": ok, "reasons": reasons}, status=200 if ok else 503)

    async def ready(request: web.Request) -> web.StreamResponse:
        ok, reasons = rapport.readiness()
        return web.json_response({"ready": ok, "reasons": reasons}, status=200 if ok else 503)

    return [("/health/live", live), ("/health/ready", ready)]


def prometheus_text(report: dict[str, Any]) -> str:
    """The numeric figures of the progress report as Prometheus gauges named ``rapport_<key>``."""
    lines = []
    for key, value in sorted(report.items()):
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            lines.append(f"# TYPE rapport_{key} gauge\nrapport_{key} {value}")
    return "\n".join(lines) + "\n"


class AdminServer:
    """The admin listener's aiohttp server, started and stopped with the worker."""

    def __init__(self, rapport: Rapport, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self._runner = web.AppRunner(build_admin_app(rapport, token), access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("admin listener on http://%s:%s", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
