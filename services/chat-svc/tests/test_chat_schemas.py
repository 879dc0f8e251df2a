"""Message cursors are opaque and reject anything that is not one of ours."""

from __future__ import annotations

import pytest
from chat_svc.schemas import decode_cursor, encode_cursor


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345


@pytest.mark.parametrize("cursor", ["", "!!", "bTEy!", "eDEy"])
def test_foreign_cursor_is_rejected(cursor: str) -> None:
    with pytest.raises(ValueError, match="malformed cursor"):
        decode_cursor(cursor)
