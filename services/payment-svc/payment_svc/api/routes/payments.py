"""``/api/payments``: pay for a listing (idempotent) and read your payments."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from servicekit.errors import BadRequest

from payment_svc import payments
from payment_svc.api.deps import ProcessorDep, SessionDep, SettingsDep, UserId
from payment_svc.schemas import PaymentCreate, PaymentOut, PaymentPage

router = APIRouter(prefix="/api/payments", tags=["payments"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="required; a client-chosen unique key (e.g. a UUID) per payment intent",
    ),
]
#: Headers of every answer carrying a payment (the first one, or a replay of it).
PAYMENT_HEADERS = {
    "Location": {"description": "the payment's URL", "required": True, "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer to an earlier request with the same key",
        "required": True,
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}
ERRORS = {
    201: {"description": "the payment succeeded", "headers": PAYMENT_HEADERS},
    400: {"description": "Idempotency-Key header missing"},
    402: {
        "description": "the card was declined (body is the failed payment)",
        "model": PaymentOut,
        "headers": PAYMENT_HEADERS,
    },
    403: {"description": "you cannot buy your own listing"},
    404: {"description": "listing not found"},
    409: {"description": "listing already sold, or its price is not the confirmed one (price_changed)"},
    422: {"description": "invalid body, or the key was used with a different body"},
    429: {"description": "too many payment attempts by this buyer or with this card (card testing)"},
    503: {"description": "processor unavailable; retry with the same key"},
}


@router.post("", status_code=201, response_model=PaymentOut, responses=ERRORS)  # type: ignore[arg-type]
async def create_payment(
    body: PaymentCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    processor: ProcessorDep,
    settings: SettingsDep,
    buyer_id: UserId,
    idempotency_key: IdempotencyKey = None,
) -> PaymentOut:
    """Pay for a listing. Repeating the same key and body returns the first result, never a new charge."""
    if not idempotency_key:
        raise BadRequest(
            "the Idempotency-Key header is required",
            code="idempotency_key_required",
            details={"hint": "send 'Idempotency-Key: <uuid>' and reuse it when retrying this payment"},
        )
    outcome = await payments.pay(
        session,
        processor,
        buyer_id=buyer_id,
        idempotency_key=idempotency_key,
        body=body,
        secret=settings.fingerprint_key.get_secret_value().encode(),  # type: ignore[union-attr]
        producer=settings.service_name,
        limits=payments.AttemptLimits(
            settings.payment_attempts_per_buyer,
            settings.payment_attempts_per_card,
            settings.payment_attempt_window_seconds,
        ),
    )
    if not outcome.replayed:
        relay = request.app.state.runtime.relay
        if relay is not None:
            relay.notify()
    response.status_code = outcome.status_code
    response.headers["Idempotent-Replayed"] = "true" if outcome.replayed else "false"
    response.headers["Location"] = f"{router.prefix}/{outcome.payment.id}"
    return PaymentOut.model_validate(outcome.payment)


@router.get("", response_model=PaymentPage)
async def list_payments(
    session: SessionDep,
    buyer_id: UserId,
    status: Annotated[Literal["succeeded", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> PaymentPage:
    """The caller's payments ("my purchases"), newest first; ``status`` narrows them."""
    items = await payments.list_payments(session, buyer_id, status, limit)
    return PaymentPage(items=[PaymentOut.model_validate(p) for p in items])


@router.get("/{payment_id}", response_model=PaymentOut, responses={404: {"description": "not yours"}})
async def read_payment(payment_id: uuid.UUID, session: SessionDep, buyer_id: UserId) -> PaymentOut:
    """One of the caller's payments (404 for anyone else's)."""
    return PaymentOut.model_validate(await payments.get_payment(session, payment_id, buyer_id))
