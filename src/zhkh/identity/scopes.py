"""The catalogue of API scopes. A token carries some of these; an endpoint requires one."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "housing:read": "read buildings, premises, personal accounts and owners",
    "metering:read": "read meters, readings, consumption and alarms",
    "readings:write": "submit readings in batches (meter gateways, billing centres) and correct them",
    "alarms:manage": "acknowledge and clear alarms",
    "billing:read": "read accrual lines and their explanations",
    "payments:read": "read payments and the review queue of unmatched payments",
    "payments:write": "record cash payments, start online payments, assign unmatched payments",
    "resident": "a resident's own personal account: submit readings, see meters and notifications",
    "admin": "everything, including what later scopes will cover (not a resident's account)",
}
ADMIN_SCOPE = "admin"
RESIDENT_SCOPE = "resident"
