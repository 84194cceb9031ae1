"""The business-lifecycle mix: every message pre-built and pre-signed before a clock starts.

    python bench/mix.py [--enterprises 400]      # build one and print its composition

For N enterprises, each goes through the lifecycle of ``adapter/scenario.py`` (happy path):

    wave  1  CDGI101 bind the legal card, CDGI101 bind the operator card (portal),
             CDGI401 credit rating (customs)
    wave  2  CDGI103 the legal card grants the operator every permission
    wave  3  CDGI105 tripartite agreement (legal card), CDGI107 authorization to PICC (operator)
    wave  4  CDGI201 the bank: agreement effective
    wave  5  CDGI109 quota application (operator card)
    wave  6  CDGI301 the insurer: underwriting
    wave  7  CDGI301 the insurer: approved
    wave  8  CDGI113 policy application
    wave  9  CDGI305 the insurer: policy issued (with its e-policy)
    wave 10  CDGI403 customs: policy recorded (guarantee record number)
    wave 11  CDGI405 two deductions; every 2nd enterprise: CDGI111 quota increase
    wave 12  CDGI407 restore of the first entry; every 2nd: CDGI409 claim notice (overdue),
             CDGI303 the insurer approves the increase
    wave 13  CDGI401 a new credit rating; every 2nd: CDGI307 claim paid (shared with the two
             other insurers), CDGI115 the enterprise queries its claims

Enterprise documents are signed by the enterprise's own cards (``SimEnterprise``, software
keys; 16 key pairs shared round-robin, each card number its own binding), envelopes by each
partner's software key. Every answer of a partner (insurer and bank
decisions, customs records) is pre-built too: its numbers are ours to choose. Waves are
published in order; each is larger than what two daemons hold in flight (2 x prefetch 100),
so that a dependent message never overtakes the one it depends on.

The building runs in worker processes (RSA key generation and signing are the cost).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapter import documents as doc  # noqa: E402
from adapter.domain.identifiers import make_uscc  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from adapter.sim import SimEnterprise, SimPartner, partner_message_id  # noqa: E402
from card import SoftwareSigner  # noqa: E402

PARTIES = ("PORTAL", "BANK.BOC", "INS.PICC", "INS.CPIC", "INS.PAIC", "CUS.0800")

# What the adapter sends for each inbound step: receipt + forwards + notices + shares.
OUTPUTS = {
    "bind": 1, "credit": 1, "grant": 1,
    "agreement": 2,          # receipt, CDGI105 forwarded to the bank
    "agreement_ok": 2,       # receipt, CDGI505 to the portal
    "authorization": 2,      # receipt, CDGI107 forwarded to the insurer
    "quota": 3,              # receipt, CDGI109 forwarded, CDGI507 credit to the insurer
    "underwriting": 2, "approved": 2,   # receipt, CDGI505
    "policy": 2,             # receipt, CDGI113 forwarded
    "issued": 3,             # receipt, CDGI501 policy record to customs, CDGI505
    "recorded": 2,           # receipt, CDGI505
    "deduct": 1, "restore": 1,
    "increase": 2,           # receipt, CDGI111 forwarded
    "increase_ok": 2,        # receipt, CDGI505
    "claim": 3,              # receipt, CDGI409 forwarded to the insurer, CDGI505
    "paid": 4,               # receipt, CDGI505, CDGI503 to the two other insurers
    "query": 2,              # receipt, CDGI116 answer to the portal
}
DOC_SIGNED = {"grant", "agreement", "authorization", "quota", "policy", "increase", "query"}


@dataclass(frozen=True)
class Message:
    """One pre-signed inbound message."""

    wave: int
    step: str
    sender: str
    message_type: str
    message_id: str
    body: bytes
    enterprise: int = 0
    doc_cert: bytes | None = None  # PEM of the enterprise card that signed its document

    @property
    def outputs(self) -> int:
        return OUTPUTS[self.step]


@dataclass
class Mix:
    """The partners' keys and the waves of messages, in publishing order."""

    partners: dict[str, SoftwareSigner]
    waves: list[list[Message]]
    enterprises: int
    built_s: float = 0.0
    tag: str = ""
    _flat: list[Message] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        if not self._flat:
            self._flat = [m for wave in self.waves for m in wave]
        return self._flat

    @property
    def outbound(self) -> int:
        return sum(m.outputs for m in self.messages)

    @property
    def signatures_per_message(self) -> float:
        return self.outbound / len(self.messages)

    def subset(self, enterprises: int) -> Mix:
        """The same mix for the first ``enterprises`` enterprises only."""
        waves = [[m for m in wave if m.enterprise < enterprises] for wave in self.waves]
        return Mix(self.partners, [w for w in waves if w], enterprises, self.built_s, self.tag)

    def sample(self, count: int) -> list[Message]:
        """About ``count`` messages spread evenly over the mix (its proportions kept)."""
        msgs = self.messages
        step = max(1, len(msgs) // count)
        return msgs[::step][:count]

    def composition(self) -> str:
        """A table: messages per type and step, waves, signatures per message."""
        by_type = Counter((m.message_type, m.step, m.sender) for m in self.messages)
        lines = [f"mix: {self.enterprises} enterprises, {len(self.messages)} inbound messages "
                 f"in {len(self.waves)} waves (smallest wave {min(map(len, self.waves))}), "
                 f"built and signed in {self.built_s:.0f} s",
                 f"  {'type':<8} {'step':<14} {'sender':<9} {'count':>6} {'out each':>8}"]
        for (mtype, step, sender), n in sorted(by_type.items()):
            lines.append(f"  {mtype:<8} {step:<14} {sender:<9} {n:>6} {OUTPUTS[step]:>8}")
        doc_signed = sum(1 for m in self.messages if m.step in DOC_SIGNED)
        lines.append(f"  outbound messages (each signed by the card): {self.outbound}; "
                     f"signatures per inbound message {self.signatures_per_message:.2f}; "
                     f"enterprise-signed documents {doc_signed} "
                     f"({doc_signed / len(self.messages):.0%})")
        return "\n".join(lines)


_PARTNERS: dict[str, SimPartner] = {}
_CARD_KEYS: list[SoftwareSigner] = []
CARD_KEYS = 16  # enterprise card keys, shared round-robin (generating 2 per firm costs 140 ms)


def _init_worker(pems: dict[str, tuple[bytes, bytes]], cards: list[tuple[bytes, bytes]]) -> None:
    # Loading a PEM key checks it (tens of ms): once per worker, not per enterprise.
    settings = Settings()
    _PARTNERS.update({p: SimPartner(p, SoftwareSigner.from_pem(k, c, p), settings)
                      for p, (k, c) in pems.items()})
    _CARD_KEYS.extend(SoftwareSigner.from_pem(k, c, f"card{n}") for n, (k, c) in enumerate(cards))


def _card_pems() -> list[tuple[bytes, bytes]]:
    keys = [SoftwareSigner.generate(f"enterprise card {n} (bench)", key_name=f"card{n}")
            for n in range(CARD_KEYS)]
    return [(k.key_pem(), k.cert_pem()) for k in keys]


def _enterprise(args: tuple[int, str, date]) -> list[Message]:
    """Every message of enterprise ``i``, in waves (runs in a worker process)."""
    i, tag, t = args
    partners = _PARTNERS
    ent = SimEnterprise(make_uscc(f"9121{i:06d}MA0B{tag[-3:]}"), f"测试进出口有限公司{i}",
                        f"21{i:06d}01")
    legal, op = f"L{tag}{i:05d}", f"O{tag}{i:05d}"
    ent.cards[legal] = ("LEGAL", _CARD_KEYS[(2 * i) % len(_CARD_KEYS)], f"SEAL-{legal}")
    ent.cards[op] = ("OPERATOR", _CARD_KEYS[(2 * i + 1) % len(_CARD_KEYS)], f"SEAL-{op}")
    ent._holders = {legal: "张伟", op: "王芳"}  # type: ignore[attr-defined]
    n = lambda prefix: f"{prefix}{tag}{i:05d}"  # noqa: E731
    out: list[Message] = []
    now = datetime.now(UTC)

    def add(wave: int, step: str, sender: str, mtype: str, business: object,
            card: str | None = None) -> None:
        element = ent.sign(business, card) if card else business  # type: ignore[arg-type]
        mid = partner_message_id()
        body = partners[sender].envelope(mtype, element, message_id=mid)  # type: ignore[arg-type]
        cert = ent.cards[card][1].cert_pem() if card else None
        out.append(Message(wave, step, sender, mtype, mid, body, i, cert))

    for card in (legal, op):
        add(1, "bind", "PORTAL", "CDGI101", ent.binding(
            card, valid_from=t - timedelta(days=30), valid_to=t + timedelta(days=730)))
    rating = "ADVANCED" if i % 3 == 0 else "GENERAL"
    add(1, "credit", "CUS.0800", "CDGI401", doc.credit_info(
        uscc=ent.uscc, customs_code=ent.customs_code, rating=rating, rated_date=t,
        records=[doc.CreditRecord(date=t, kind="AEO" if rating == "ADVANCED" else "NONE",
                                  description="海关信用记录")]))
    add(2, "grant", "PORTAL", "CDGI103", doc.operator_grant(
        uscc=ent.uscc, operator_card_no=op,
        permissions=["AUTHORIZE", "QUOTA", "POLICY", "QUERY"]), legal)
    agreement = n("AG")
    add(3, "agreement", "PORTAL", "CDGI105", doc.agreement_sign(
        agreement_no=agreement, uscc=ent.uscc, payer_name=ent.name, bank_code="BOC",
        bank_name="中国银行沈阳分行", clearing_bank_code="104221000011",
        account_no="6217000012345678", customs_district="0800", seal_id=ent.seal(legal)), legal)
    add(3, "authorization", "PORTAL", "CDGI107", doc.authorization_sign(
        auth_no=n("AU"), uscc=ent.uscc, insurer_code="PICC", scopes=["CREDIT_QUERY"],
        valid_to=t + timedelta(days=365), seal_id=ent.seal(op)), op)
    add(4, "agreement_ok", "BANK.BOC", "CDGI201", doc.agreement_result(
        agreement_no=agreement, result="EFFECTIVE", effective_date=t))
    quota = n("Q")
    contact = doc.Contact(name="王芳", phone="024-88886666")
    add(5, "quota", "PORTAL", "CDGI109", doc.quota_apply(
        quota_no=quota, uscc=ent.uscc, insurer_code="PICC", applied_amount=Decimal("5000000.00"),
        contact=contact, term_start=t, term_end=t + timedelta(days=364)), op)
    add(6, "underwriting", "INS.PICC", "CDGI301", doc.quota_decision(
        quota_no=quota, result="UNDERWRITING"))
    add(7, "approved", "INS.PICC", "CDGI301", doc.quota_decision(
        quota_no=quota, result="APPROVED", approved_amount=Decimal("5000000.00"),
        rate=Decimal("0.0080"), valid_from=t, valid_to=t + timedelta(days=364)))
    invoice = doc.Invoice(type="SPECIAL", title=ent.name, taxpayer_id=ent.uscc,
                          address="沈阳市和平区中华路1号", phone="024-88886666",
                          bank_name="中国银行沈阳分行", bank_account="6217000012345678",
                          email="finance@example.cn")
    term = dict(term_start=t, term_end=t + timedelta(days=180))
    apply_no, policy = n("A"), n("P")
    add(8, "policy", "PORTAL", "CDGI113", doc.policy_apply(
        apply_no=apply_no, quota_no=quota, uscc=ent.uscc, insured_amount=Decimal("4000000.00"),
        insured_customs=["0800", "2100"], coverage=["DUTY", "VAT"], invoice=invoice, **term), op)
    pdf = b"%PDF-1.7 electronic policy " + policy.encode()
    add(9, "issued", "INS.PICC", "CDGI305", doc.policy_decision(
        apply_no=apply_no, result="ISSUED", policy_no=policy, premium=Decimal("32000.00"),
        rate=Decimal("0.0080"), e_policy=doc.EPolicy.of(f"{policy}.pdf", "application/pdf", pdf),
        **term))
    grn = n("G")
    add(10, "recorded", "CUS.0800", "CDGI403", doc.policy_record_result(
        policy_no=policy, result="RECORDED", guarantee_record_no=grn))
    entry_1, entry_2 = f"08002026{i:07d}001", f"08002026{i:07d}002"
    due = t - timedelta(days=120)
    for entry, amount in ((entry_1, Decimal("100000.00")), (entry_2, Decimal("57600.00"))):
        add(11, "deduct", "CUS.0800", "CDGI405", doc.guarantee_deduct(
            guarantee_record_no=grn, entry_id=entry, declaration_type="CL",
            customs_district="0800",
            tax_items=[doc.TaxItem(tax_kind="DUTY", amount=amount * Decimal("0.4")),
                       doc.TaxItem(tax_kind="VAT", amount=amount * Decimal("0.6"))],
            total=amount, deduct_time=now, payment_due_date=due))
    add(12, "restore", "CUS.0800", "CDGI407", doc.guarantee_restore(
        guarantee_record_no=grn, entry_id=entry_1, amount=Decimal("100000.00"), paid_time=now))
    add(13, "credit", "CUS.0800", "CDGI401", doc.credit_info(
        uscc=ent.uscc, customs_code=ent.customs_code, rating=rating, rated_date=t))
    if i % 2 == 0:
        increase = n("I")
        add(11, "increase", "PORTAL", "CDGI111", doc.quota_increase(
            increase_no=increase, quota_no=quota, amount=Decimal("1000000.00")), op)
        add(12, "increase_ok", "INS.PICC", "CDGI303", doc.increase_decision(
            increase_no=increase, quota_no=quota, result="APPROVED",
            approved_amount=Decimal("1000000.00")))
        claim = n("C")
        add(12, "claim", "CUS.0800", "CDGI409", doc.claim_notice(
            claim_no=claim, policy_no=policy, guarantee_record_no=grn, cause="OVERDUE",
            entries=[doc.ClaimEntry(entry_id=entry_2, tax=Decimal("57600.00"), due_date=due,
                                    overdue_days=120, late_fee=Decimal("3456.00"))],
            total=Decimal("61056.00"), notice_date=t))
        add(13, "paid", "INS.PICC", "CDGI307", doc.claim_settlement(
            claim_no=claim, policy_no=policy, result="PAID", paid_amount=Decimal("61056.00"),
            paid_time=now))
        add(13, "query", "PORTAL", "CDGI115", doc.claim_info_query(
            query_no=n("QQ"), uscc=ent.uscc, insurer_name="中国人民财产保险股份有限公司"), op)
    return out


def build(enterprises: int, *, partners: dict[str, SoftwareSigner] | None = None,
          tag: str | None = None, offset: int = 0) -> Mix:
    """Partner keys (unless given), then every enterprise's messages in worker processes.

    ``offset`` and ``tag`` make further generations of fresh enterprises for long runs.
    """
    started = time.perf_counter()
    tag = tag or datetime.now(UTC).strftime("%H%M%S")
    partners = partners or {p: SoftwareSigner.generate(f"{p} (bench)", key_name=p)
                            for p in PARTIES}
    pems = {p: (s.key_pem(), s.cert_pem()) for p, s in partners.items()}
    today = datetime.now(UTC).date()
    waves: dict[int, list[Message]] = {}
    with ProcessPoolExecutor(os.cpu_count() or 2, initializer=_init_worker,
                             initargs=(pems, _card_pems())) as pool:
        for msgs in pool.map(_enterprise, [(offset + i, tag, today)
                                           for i in range(enterprises)], chunksize=8):
            for m in msgs:
                waves.setdefault(m.wave, []).append(m)
    # Inside a wave, the steps interleave as partners would send them, not type by type.
    ordered = [sorted(waves[w], key=lambda m: m.message_id) for w in sorted(waves)]
    return Mix(partners, ordered, enterprises, time.perf_counter() - started, tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=400)
    args = parser.parse_args()
    mix = build(args.enterprises)
    print(mix.composition())
    size = sum(len(m.body) for m in mix.messages) / len(mix.messages)
    print(f"  average inbound body {size:.0f} bytes")


if __name__ == "__main__":
    main()
