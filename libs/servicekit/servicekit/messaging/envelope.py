"""The event envelope and the registry of per-event payload models.

Every message body is an :class:`Envelope` (JSON). Payload models register themselves with
:func:`register_event`, which is what ``docs/events.md`` is generated from.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
P = TypeVar("P", bound=BaseModel)


class Envelope(BaseModel):
    """What travels on the wire: metadata plus the event's payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="unique per event; the dedup key")
    type: Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, description="routing key, e.g. listing.created")]
    version: Annotated[int, Field(ge=1, description="payload schema version")] = 1
    occurred_at: AwareDatetime = Field(
        default_factory=lambda: datetime.now(UTC), description="when it happened (UTC, ISO 8601)"
    )
    producer: Annotated[str, Field(min_length=1, description="service that emitted it")]
    payload: dict[str, Any] = Field(description="the event's payload model, see below")

    def parse(self, model: type[P]) -> P:
        """The payload validated as *model*."""
        return model.model_validate(self.payload)

    def parsed(self) -> BaseModel:
        """The payload validated by the model registered for ``(type, version)``."""
        return registry.model_for(self.type, self.version).model_validate(self.payload)


@dataclass(frozen=True)
class EventSpec:
    """One registered event: its routing key, schema version and payload model."""

    type: str
    version: int
    model: type[BaseModel]
    description: str


class EventRegistry:
    """Event type -> payload model. Keys are ``(type, version)``."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], EventSpec] = {}
        self._by_model: dict[type[BaseModel], EventSpec] = {}

    def register(self, event_type: str, model: type[BaseModel], version: int = 1) -> None:
        """Register *model* as the payload of *event_type* (idempotent for the same model)."""
        spec = EventSpec(event_type, version, model, (model.__doc__ or "").strip())
        existing = self._by_key.get((event_type, version))
        if existing and existing.model is not model:
            raise ValueError(f"event {event_type} v{version} is already registered to {existing.model!r}")
        Envelope.model_validate({"type": event_type, "producer": "x", "payload": {}})  # validates the name
        self._by_key[(event_type, version)] = spec
        self._by_model[model] = spec

    def model_for(self, event_type: str, version: int = 1) -> type[BaseModel]:
        """The payload model of an event; KeyError when unregistered."""
        return self._by_key[(event_type, version)].model

    def spec_for_model(self, model: type[BaseModel]) -> EventSpec:
        """The registration of a payload model; KeyError when unregistered."""
        return self._by_model[model]

    def specs(self) -> list[EventSpec]:
        """All registered events, sorted by type and version."""
        return sorted(self._by_key.values(), key=lambda s: (s.type, s.version))

    def __contains__(self, key: object) -> bool:
        return key in self._by_key


#: The process-wide registry (events register at import of their module).
registry = EventRegistry()


def register_event(event_type: str, version: int = 1) -> Any:
    """Class decorator: ``@register_event("listing.created")`` on a payload model."""

    def decorate(model: type[P]) -> type[P]:
        registry.register(event_type, model, version)
        return model

    return decorate


def new_event(payload: BaseModel, *, producer: str, event_id: uuid.UUID | None = None) -> Envelope:
    """Wrap a registered payload model instance in an envelope."""
    spec = registry.spec_for_model(type(payload))
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=spec.type,
        version=spec.version,
        producer=producer,
        payload=payload.model_dump(mode="json"),
    )
