"""A device model's mapping: which decoded fields are readings (channels) and which are alarm
flags. Configuration, so a new device model needs no code. Pure: no I/O.

    {
      "channels": {"volume_m3": {}, "volume_l": {"scale": "0.001"}},
      "flags": {
        "leak": {"field": "leak"},
        "tamper": {"field": "current_status", "not_in": ["OK", ""]},
        "low_battery": {"field": "battery_v", "below": "3.1"}
      }
    }

A channel's name is the payload field it reads (``a.b`` for nested fields); ``scale`` turns the
device's unit into the meter's (litres to m³). A flag is raised when its field is true, is not
one of ``not_in``, or is ``below`` a number; alarm kinds are those of zhkh.alarms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

FLAG_KINDS = ("leak", "tamper", "magnet", "low_battery")


class MappingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FlagRule:
    field: str
    not_in: tuple[str, ...] | None = None
    below: Decimal | None = None

    def raised(self, fields: Mapping[str, Any]) -> bool | None:
        """True or False, or None when the message does not carry the field."""
        if self.field not in fields or fields[self.field] is None:
            return None
        value = fields[self.field]
        if self.not_in is not None:
            return str(value) not in self.not_in
        if self.below is not None:
            try:
                return Decimal(str(value)) < self.below
            except InvalidOperation:
                return None
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)


@dataclass(frozen=True, slots=True)
class ModelMapping:
    channels: Mapping[str, Decimal]  # field -> scale
    flags: Mapping[str, FlagRule]  # alarm kind -> rule

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ModelMapping:
        if not isinstance(document, Mapping):
            raise MappingError("a mapping is a JSON object with channels and flags")
        unknown = set(document) - {"channels", "flags"}
        if unknown:
            raise MappingError(f"unknown keys {sorted(unknown)}; a mapping has channels and flags")
        channels = {name: _scale(name, spec) for name, spec in dict(document.get("channels") or {}).items()}
        if not channels:
            raise MappingError("a mapping needs at least one channel")
        flags = {kind: _flag(kind, spec) for kind, spec in dict(document.get("flags") or {}).items()}
        return cls(channels, flags)

    def readings(self, fields: Mapping[str, Any]) -> dict[str, Decimal]:
        """The channels this message carries, scaled. Raises ValueError on a non-number."""
        found: dict[str, Decimal] = {}
        for channel, scale in self.channels.items():
            if channel not in fields or fields[channel] is None:
                continue  # The Things Stack omits zero values; absent is not an error
            value = fields[channel]
            if isinstance(value, bool):
                raise ValueError(f"{channel} must be a number, got {value}")
            try:
                found[channel] = Decimal(str(value)) * scale
            except InvalidOperation as exc:
                raise ValueError(f"{channel} must be a number, got {value!r}") from exc
        return found

    def raised_flags(self, fields: Mapping[str, Any]) -> dict[str, bool]:
        states = {kind: rule.raised(fields) for kind, rule in self.flags.items()}
        return {kind: state for kind, state in states.items() if state is not None}


def _scale(name: str, spec: Any) -> Decimal:
    if not isinstance(spec, Mapping):
        raise MappingError(f'channel {name!r}: expected an object such as {{"scale": "0.001"}}')
    try:
        scale = Decimal(str(spec.get("scale", "1")))
    except InvalidOperation as exc:
        raise MappingError(f"channel {name!r}: scale must be a number") from exc
    if scale <= 0:
        raise MappingError(f"channel {name!r}: scale must be positive")
    return scale


def _flag(kind: str, spec: Any) -> FlagRule:
    if kind not in FLAG_KINDS:
        raise MappingError(f"flag {kind!r}: known kinds are {', '.join(FLAG_KINDS)}")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("field"), str):
        raise MappingError(f"flag {kind!r}: expected an object with a field")
    not_in = spec.get("not_in")
    below = spec.get("below")
    if not_in is not None and below is not None:
        raise MappingError(f"flag {kind!r}: give not_in or below, not both")
    try:
        return FlagRule(
            spec["field"],
            tuple(str(v) for v in not_in) if not_in is not None else None,
            Decimal(str(below)) if below is not None else None,
        )
    except InvalidOperation as exc:
        raise MappingError(f"flag {kind!r}: below must be a number") from exc
