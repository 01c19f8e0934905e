"""Whether `vigil serve` can listen where it was told to, checked before start-up work.

uvicorn reports a host that does not resolve or a port in use only after the migrations and the app
are built, as a bare OS message ("Name or service not known") that names neither the setting nor the
address. A trial bind (with SO_REUSEADDR, as uvicorn binds) names both at once.
"""

from __future__ import annotations

import socket


def listen_problem(host: str, port: int) -> str | None:
    """None when `host:port` can be bound now; otherwise a sentence naming the address and what to change."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as exc:
        return f"Cannot listen on {host}:{port}: the host does not resolve ({_reason(exc)}); set --host or HOST."
    try:
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            trial.bind(address)
    except OSError as exc:
        return f"Cannot listen on {host}:{port}: {_reason(exc)}; choose another --port or PORT (or --host or HOST)."
    return None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)
