"""The catalogue of API scopes. A token carries some of these; an endpoint requires one."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "housing:read": "read buildings, premises, personal accounts and owners",
    "admin": "everything, including what later scopes will cover",
}
ADMIN_SCOPE = "admin"
