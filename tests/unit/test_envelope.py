"""The hardened parser and the envelope helpers (pure: no services)."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

from adapter.envelope import (
    build_envelope,
    build_receipt,
    business_element,
    canonical_digest,
    contract_time,
    element,
    leaf,
    new_element_id,
    new_message_id,
    parse,
    read_head,
    serialize,
)
from adapter.errors import NotWellFormed, TooLarge
from store.db import utcnow

LIMITS = {"max_bytes": 4096, "max_depth": 8}


def _envelope() -> bytes:
    return serialize(
        build_envelope(
            message_type="CDGI401",
            sender_id="CUS.0800",
            receiver_id="DC",
            business=element("CreditInfo", leaf("USCC", "X"), attrs={"Id": "D1"}),
            send_time="2026-11-24T10:15:00+08:00",
            message_id="6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1",
        )
    )


def test_a_plain_envelope_parses_and_its_head_reads_back() -> None:
    root = parse(_envelope(), **LIMITS)
    head = read_head(root)
    assert (head.message_type, head.sender_id, head.receiver_id) == ("CDGI401", "CUS.0800", "DC")
    assert head.message_id == "6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1"
    assert business_element(root).get("Id") == "D1"


@pytest.mark.parametrize(
    "data, words",
    [
        (b"<a><b></a>", "not well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DTD"),
        (b'<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>', "DTD|network entity"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<lolz>&lol2;</lolz>",
            "DTD",
        ),
        (b"<a><?php evil()?></a>", "processing instructions"),
        (b"<a><b/><c><d>x<?php evil()?></d></c></a>", "processing instructions"),
        (b"<?pi x?><a/>", "processing instructions"),
        (
            b'<a xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd"/></a>',
            "XInclude",
        ),
        ('<?xml version="1.0" encoding="GBK"?><a>中</a>'.encode("gbk"), "encoding GBK"),
    ],
)
def test_forbidden_constructs_are_refused_as_not_well_formed(data: bytes, words: str) -> None:
    with pytest.raises(NotWellFormed, match=words) as caught:
        parse(data, **LIMITS)
    assert caught.value.code == "0001"


def test_too_many_bytes_and_too_deep_nesting_are_refused_with_0004() -> None:
    with pytest.raises(TooLarge) as big:
        parse(b"<a>" + b"x" * 5000 + b"</a>", **LIMITS)
    with pytest.raises(TooLarge) as deep:
        parse(b"<a>" * 9 + b"</a>" * 9, **LIMITS)
    assert big.value.code == deep.value.code == "0004"
    parse(b"<a>" * 8 + b"</a>" * 8, **LIMITS)  # the limit itself is fine
    with pytest.raises(TooLarge):  # too deep in a later branch, beside a shallow one
        parse(b"<a><b/>" + b"<c>" * 8 + b"</c>" * 8 + b"</a>", **LIMITS)


def test_the_digest_ignores_signatures_and_serialisation_but_not_content() -> None:
    base = parse(_envelope(), **LIMITS)
    pretty = parse(_envelope().replace(b"<cdgi:Head>", b"<cdgi:Head >"), **LIMITS)
    signed = parse(
        _envelope().replace(
            b"</cdgi:Envelope>",
            b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></cdgi:Envelope>',
        ),
        **LIMITS,
    )
    changed = parse(_envelope().replace(b">X<", b">Y<"), **LIMITS)
    assert canonical_digest(base) == canonical_digest(pretty) == canonical_digest(signed)
    assert canonical_digest(base) != canonical_digest(changed)


def test_a_receipt_for_an_unreadable_message_says_unknown() -> None:
    receipt = build_receipt(
        ori_message_id=None,
        ori_message_type=None,
        status=-1,
        code="0001",
        info="not well-formed",
        time=contract_time(utcnow()),
    )
    values = {child.tag.split("}")[1]: child.text for child in receipt}
    assert values["OriMessageId"] == values["OriMessageType"] == "Unknown"
    assert values["ReturnStatus"] == "-1" and values["ReturnCode"] == "0001"


def test_contract_time_is_china_time_with_an_offset() -> None:
    from datetime import UTC, datetime

    assert contract_time(datetime(2026, 11, 24, 2, 15, tzinfo=UTC)) == (
        "2026-11-24T10:15:00.000+08:00"
    )


def test_message_ids_are_time_ordered_version_7_uuids_and_element_ids_ncnames() -> None:
    found: list[str] = []

    def draw() -> None:  # each thread draws from its own pool
        found.extend(new_message_id() for _ in range(3000))

    before = time.time_ns() // 1_000_000
    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = time.time_ns() // 1_000_000
    assert len(set(found)) == len(found) == 12000
    for text in found[::97]:
        assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-7[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}",
                            text), text
        u = uuid.UUID(text)
        assert (u.version, u.variant) == (7, uuid.RFC_4122)
        assert before <= u.int >> 80 <= after  # the first 48 bits: the time in milliseconds
    # Made a millisecond apart, they sort in the order they were made; within one
    # millisecond the 74 random bits still tell them apart (above).
    earlier = new_message_id()
    time.sleep(0.002)
    assert new_message_id() > earlier
    assert len({new_element_id("D") for _ in range(5000)}) == 5000
    assert re.fullmatch(r"D[0-9A-F]{16}", new_element_id("D"))
