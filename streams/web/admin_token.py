"""The admin listener's bearer token: where it comes from and how a client presents it.

The worker's admin listener (SQL, progress, metrics; ``streams/web/admin.py``) answers only requests that carry
``Authorization: Bearer <token>``. The token is ``RAPPORT_ADMIN_TOKEN`` when set; otherwise it is generated
once into ``DATA_DIR/admin-token`` (mode 0600), so the worker, ``rapport up`` and ``rapport sql`` of the same
data directory agree on it without anyone typing it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from streams.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"


def admin_token(settings: Settings, create: bool = True) -> str:
    """The configured token, else the one in ``DATA_DIR/admin-token`` (generated when ``create``; "" if absent)."""
    configured = settings.admin_token.get_secret_value().strip()
    if configured:
        return configured
    path = settings.data_dir / ADMIN_TOKEN_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    if stored or not create:
        return stored
    return _write_new(path)


def _write_new(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # created with 0600 from the start: no moment where another user could read it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def bearer(token: str) -> dict[str, str]:
    """The request header that presents ``token`` to the admin listener."""
    return {"Authorization": f"Bearer {token}"}
