"""Who may use the server: a loopback bind by default, and the key (env
BATCHSCRIBE_SERVER_KEY) in `Authorization`, compared in constant time.

The key is never logged: aiohttp's access log is off, and refusals say only that it is wrong.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from batchscribe.config import Settings
from batchscribe.errors import ConfigError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Names that mean this machine only, besides loopback addresses.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: Paths that answer without a key: none of them says anything about transcripts.
OPEN_PATHS = frozenset({"/health"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; anything else (0.0.0.0, a LAN address) is not."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to serve off this machine without a key (ConfigError, exit 2)."""
    if not is_loopback(settings.serve_host) and not settings.server_key:
        raise ConfigError(
            f"refusing to listen on {settings.serve_host} without a key: set "
            "BATCHSCRIBE_SERVER_KEY, or keep the default --host 127.0.0.1."
        )


def key_matches(header: str | None, key: str) -> bool:
    """`Authorization: <key>` (AssemblyAI's SDK) or `Bearer <key>` (OpenAI's), in constant
    time whatever the header holds."""
    given = (header or "").strip()
    if given[:7].lower() == "bearer ":
        given = given[7:].strip()
    return hmac.compare_digest(given.encode(), key.encode())


def key_required(key: str | None) -> Any:
    """The middleware (Any: aiohttp types middlewares as its own protocol): 401 without the
    key, when one is set, before any handler runs. Compared even for a wrong length in
    constant time (`hmac.compare_digest`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        open_path = request.path in OPEN_PATHS
        if key and not open_path and not key_matches(request.headers.get("Authorization"), key):
            return web.json_response(
                {"error": "Authentication error, API token missing/invalid"}, status=401
            )
        return await handler(request)

    return middleware
