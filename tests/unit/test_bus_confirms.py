"""Publisher confirms matched to messages by sequence number (pure logic, fake frames)."""

from __future__ import annotations

from types import SimpleNamespace

import pika

from adapter.bus import _Confirms


def _ack(tag: int, multiple: bool = False) -> SimpleNamespace:
    return SimpleNamespace(method=pika.spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def _nack(tag: int) -> SimpleNamespace:
    return SimpleNamespace(method=pika.spec.Basic.Nack(delivery_tag=tag))


def _returned(confirms: _Confirms, message_id: str, routing_key: str) -> None:
    confirms.on_return(None, SimpleNamespace(routing_key=routing_key),
                       pika.BasicProperties(message_id=message_id), b"")


def test_a_multiple_ack_settles_every_message_up_to_its_tag() -> None:
    c = _Confirms()
    for mid in ("a", "b", "c"):
        c.expect(mid)
    c.on_confirm(_ack(2, multiple=True))
    assert [c.answer(n).state for n in (1, 2)] == ["SENT", "SENT"]  # type: ignore[union-attr]
    assert c.answer(3) is None
    c.on_confirm(_ack(3))
    assert c.answer(3).state == "SENT"  # type: ignore[union-attr]


def test_a_return_before_the_ack_makes_that_message_unroutable_only() -> None:
    c = _Confirms()
    for mid in ("a", "b", "a"):  # an identical re-send shares its MessageId
        c.expect(mid)
    _returned(c, "b", "INS.NOBODY")
    _returned(c, "a", "INS.NOBODY")
    c.on_confirm(_ack(3, multiple=True))
    answers = [c.answer(n) for n in (1, 2, 3)]
    assert [a.state for a in answers] == ["UNROUTABLE", "UNROUTABLE", "SENT"]  # type: ignore[union-attr]
    assert "INS.NOBODY" in (answers[0].detail or "")  # type: ignore[union-attr]


def test_a_nack_leaves_the_message_pending_and_no_answer_means_none() -> None:
    c = _Confirms()
    c.expect("a")
    c.expect("b")
    c.on_confirm(_nack(1))
    assert c.answer(1).state == "PENDING"  # type: ignore[union-attr]
    assert c.answer(2) is None, "never confirmed: not reported, so it stays in the outbox"


def test_asking_before_the_answer_came_does_not_forget_the_message() -> None:
    c = _Confirms()
    c.expect("a")
    _returned(c, "a", "INS.NOBODY")
    assert c.answer(1) is None  # asked while the broker has not answered yet
    c.on_confirm(_ack(1))
    assert c.answer(1).state == "UNROUTABLE", "the return heard before is still matched"  # type: ignore[union-attr]
    assert c.answer(1) is None, "an answer is handed over once"
