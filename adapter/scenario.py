"""The business lifecycle, played by simulated partners against a running daemon.

One script serves the demo (which narrates it) and the end-to-end test (which checks it):
every step says what a partner sends, which receipt it must get back, and what must reach
which other partner; a step whose expectation fails raises ``ScenarioFailed`` with what was
seen instead.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from lxml import etree

from adapter import documents as doc
from adapter.domain.identifiers import make_uscc
from adapter.sim import Received, SimEnterprise, SimPartner
from card import verify_document

PARTNERS = {
    "PORTAL": "International Trade Single Window (simulated)",
    "BANK.BOC": "Bank of China (simulated)",
    "INS.PICC": "中国人民财产保险股份有限公司",
    "INS.CPIC": "中国太平洋财产保险股份有限公司",
    "INS.PAIC": "中国平安财产保险股份有限公司",
    "CUS.0800": "Shenyang Customs (simulated)",
}


class ScenarioFailed(AssertionError):
    """A step did not get what it expected."""


@dataclass
class Mailboxes:
    """What each partner has received, read from its queue and kept until claimed."""

    partners: dict[str, SimPartner]
    kept: dict[str, list[Received]] = field(default_factory=dict)

    def take(self, party: str, message_type: str, match: Callable[[Received], bool] = lambda _: True,
             timeout: float = 20.0) -> Received:
        """The first message of ``message_type`` for ``party`` that ``match`` accepts."""
        box = self.kept.setdefault(party, [])
        deadline = time.monotonic() + timeout
        while True:
            for msg in box:
                if msg.message_type == message_type and match(msg):
                    box.remove(msg)
                    return msg
            if time.monotonic() > deadline:
                seen = [(m.message_type, m.field("ReturnCode") or m.field("Status")) for m in box]
                raise ScenarioFailed(f"{party} got no {message_type} (it has {seen})")
            box.extend(self.partners[party].receive(1, timeout=0.3))

    def none(self, party: str, message_type: str, wait: float = 1.0) -> None:
        """Fail if ``party`` receives a ``message_type`` within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        box = self.kept.setdefault(party, [])
        while time.monotonic() < deadline:
            box.extend(self.partners[party].receive(1, timeout=0.2))
        if any(m.message_type == message_type for m in box):
            raise ScenarioFailed(f"{party} received a {message_type} it must not get")


@dataclass
class Lifecycle:
    """The whole business, step by step; ``say`` narrates (the demo), checks always run."""

    partners: dict[str, SimPartner]
    say: Callable[[str], None] = lambda _: None
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (step, type, code)

    def __post_init__(self) -> None:
        self.mail = Mailboxes(self.partners)
        suffix = datetime.now(UTC).strftime("%H%M%S")
        self.n = lambda prefix: f"{prefix}{self.today:%Y%m%d}{suffix}"
        self.e = (SimEnterprise(make_uscc("91210100MA0DEM001"), "辽宁示范进出口有限公司",
                                "2101960001")
                  .add_card("LP0001", "LEGAL", "张伟").add_card("OP0001", "OPERATOR", "王芳")
                  .add_card("OP0002", "OPERATOR", "李强"))
        self.b = (SimEnterprise(make_uscc("91210200MA0BXY001"), "大连测试贸易有限公司",
                                "2102960002")
                  .add_card("LB0001", "LEGAL", "赵敏").add_card("OB0001", "OPERATOR", "孙丽"))

    # -- plumbing ------------------------------------------------------------------------
    def send(self, step: str, party: str, message_type: str, business: etree._Element, *,
             status: int, code: str = "0000") -> Received:
        """Send and check the receipt's status and code."""
        message_id = self.partners[party].send(message_type, business)
        receipt = self.mail.take(party, "CDGI900", lambda m: m.field("OriMessageId") == message_id)
        got = (int(receipt.field("ReturnStatus") or 0), receipt.field("ReturnCode"))
        self.seen.append((step, message_type, got[1] or ""))
        ok = (got[0] == status or (status < 0 and got[0] < 0)) and got[1] == code
        mark = "ok " if ok else "!! "
        self.say(f"   {mark}{step}: {message_type} -> receipt {got[0]} {got[1]} "
                 f"{receipt.field('ReturnInfo')}")
        if not ok:
            raise ScenarioFailed(f"{step}: expected receipt {status}/{code}, got {got}: "
                                 f"{receipt.field('ReturnInfo')}")
        return receipt

    def portal(self, step: str, message_type: str, business: etree._Element, card: str,
               enterprise: SimEnterprise, *, status: int = 2, code: str = "0000") -> Received:
        """The portal relays a document signed by an enterprise card."""
        return self.send(step, "PORTAL", message_type, enterprise.sign(business, card),
                         status=status, code=code)

    def forwarded(self, party: str, message_type: str, key: str, value: str,
                  enterprise: SimEnterprise, card: str) -> Received:
        """A document reached ``party`` and still carries the enterprise's valid signature."""
        msg = self.mail.take(party, message_type, lambda m: m.field(key) == value)
        business = msg.root.find("{urn:cdgi:1}Body")[0]  # type: ignore[index]
        verify_document(business, [enterprise.cards[card][1].certificate])
        self.say(f"      {party} received {message_type} {value}, enterprise signature valid")
        return msg

    def out_of_order(self, grn: str, now: datetime) -> None:
        """A restore that overtakes its deduction waits for it, then is applied cleanly."""
        entry, amount = "080020261000000003", Decimal("20000.00")
        restore_id = self.partners["CUS.0800"].send("CDGI407", doc.guarantee_restore(
            guarantee_record_no=grn, entry_id=entry, amount=amount, paid_time=now))
        self.say(f"   ..  customs: restore of entry 3 sent before its deduction ({restore_id[:8]})")
        self.send("customs: the deduction of entry 3 follows", "CUS.0800", "CDGI405",
                  doc.guarantee_deduct(
                      guarantee_record_no=grn, entry_id=entry, declaration_type="CL",
                      customs_district="0800",
                      tax_items=[doc.TaxItem(tax_kind="DUTY", amount=amount)], total=amount,
                      deduct_time=now, payment_due_date=self.today), status=1)
        receipt = self.mail.take("CUS.0800", "CDGI900",
                                 lambda m: m.field("OriMessageId") == restore_id)
        got = (int(receipt.field("ReturnStatus") or 0), receipt.field("ReturnCode"))
        self.seen.append(("restore that came first", "CDGI407", got[1] or ""))
        ok = got == (1, "0000")
        self.say(f"   {'ok ' if ok else '!! '}customs: the waiting restore is applied: receipt "
                 f"{got[0]} {got[1]} {receipt.field('ReturnInfo')}")
        if not ok:
            raise ScenarioFailed(f"the restore that came first got {got}, not (1, '0000'): "
                                 f"{receipt.field('ReturnInfo')}")

    def notice(self, subject: str, number: str, status: str) -> Received:
        """The portal got the CDGI505 of a status change."""
        msg = self.mail.take("PORTAL", "CDGI505", lambda m: (m.field("Subject"), m.field(
            "SubjectNo"), m.field("Status")) == (subject, number, status))
        self.say(f"      PORTAL notified: {subject} {number} {status}")
        return msg

    # -- the story -----------------------------------------------------------------------
    def run(self) -> dict[str, str]:
        """Play the whole lifecycle; returns the business numbers it made."""
        ids = self.setup()
        return self.business(ids)

    def setup(self) -> dict[str, str]:
        """Cards, grants, credit, agreements and authorizations of both enterprises."""
        t, e, b = self.today, self.e, self.b
        ids: dict[str, str] = {}
        self.say("[bold]enterprise, cards and credit[/bold]")
        for ent in (e, b):
            for card in ent.cards:
                self.send(f"bind {card}", "PORTAL", "CDGI101", ent.binding(
                    card, valid_from=t - timedelta(days=30), valid_to=t + timedelta(days=730)),
                    status=1)
        self.portal("grant OP0001 every permission", "CDGI103", doc.operator_grant(
            uscc=e.uscc, operator_card_no="OP0001",
            permissions=["AUTHORIZE", "QUOTA", "POLICY", "QUERY"]), "LP0001", e, status=1)
        self.portal("grant OB0001 every permission", "CDGI103", doc.operator_grant(
            uscc=b.uscc, operator_card_no="OB0001",
            permissions=["AUTHORIZE", "QUOTA", "POLICY", "QUERY"]), "LB0001", b, status=1)
        for ent, rating in ((e, "ADVANCED"), (b, "GENERAL")):
            self.send(f"credit {rating}", "CUS.0800", "CDGI401", doc.credit_info(
                uscc=ent.uscc, customs_code=ent.customs_code, rating=rating, rated_date=t,
                records=[doc.CreditRecord(date=t, kind="AEO" if rating == "ADVANCED" else "NONE",
                                          description="海关信用记录")]), status=1)

        self.say("[bold]tripartite agreement[/bold]")
        for ent, legal in ((e, "LP0001"), (b, "LB0001")):
            no = ids[f"agreement:{ent.uscc}"] = self.n("AG") + ent.uscc[-3:]
            self.portal("sign agreement", "CDGI105", doc.agreement_sign(
                agreement_no=no, uscc=ent.uscc, payer_name=ent.name, bank_code="BOC",
                bank_name="中国银行沈阳分行", clearing_bank_code="104221000011",
                account_no="6217000012345678", customs_district="0800", seal_id=ent.seal(legal)),
                legal, ent)
            self.forwarded("BANK.BOC", "CDGI105", "AgreementNo", no, ent, legal)
            self.send("bank: agreement effective", "BANK.BOC", "CDGI201", doc.agreement_result(
                agreement_no=no, result="EFFECTIVE", effective_date=t), status=1)
            self.notice("AGREEMENT", no, "EFFECTIVE")

        self.say("[bold]authorization letter[/bold]")
        for ent, op in ((e, "OP0001"), (b, "OB0001")):
            no = self.n("AU") + ent.uscc[-3:]
            self.portal("sign authorization to PICC", "CDGI107", doc.authorization_sign(
                auth_no=no, uscc=ent.uscc, insurer_code="PICC", scopes=["CREDIT_QUERY"],
                valid_to=t + timedelta(days=365), seal_id=ent.seal(op)), op, ent)
            self.forwarded("INS.PICC", "CDGI107", "AuthNo", no, ent, op)
        return ids

    def business(self, ids: dict[str, str]) -> dict[str, str]:
        """Quota, increase, policy, ledger, claim and query, with the refusals on the way."""
        t, e, b = self.today, self.e, self.b
        self.say("[bold]quota[/bold]")
        quota = ids["quota"] = self.n("Q")
        contact = doc.Contact(name="王芳", phone="024-88886666")
        term = dict(term_start=t, term_end=t + timedelta(days=364))
        self.portal("apply for a quota", "CDGI109", doc.quota_apply(
            quota_no=quota, uscc=e.uscc, insurer_code="PICC", applied_amount=Decimal("5000000.00"),
            contact=contact, **term), "OP0001", e)
        self.forwarded("INS.PICC", "CDGI109", "QuotaNo", quota, e, "OP0001")
        credit = self.mail.take("INS.PICC", "CDGI507", lambda m: m.field("QuotaNo") == quota)
        self.say(f"      INS.PICC received the credit that follows it: {credit.field('Rating')}")
        self.portal("refused: a second application while one is effective", "CDGI109",
                    doc.quota_apply(quota_no=self.n("QX"), uscc=e.uscc, insurer_code="PICC",
                                    applied_amount=Decimal("1000000.00"), contact=contact, **term),
                    "OP0001", e, status=-1, code="2404")
        self.portal("refused: an operator card without the permission", "CDGI109",
                    doc.quota_apply(quota_no=self.n("QY"), uscc=e.uscc, insurer_code="PICC",
                                    applied_amount=Decimal("1000000.00"), contact=contact, **term),
                    "OP0002", e, status=-1, code="1006")
        self.portal("refused: another enterprise's card", "CDGI109",
                    b.sign(doc.quota_apply(quota_no=self.n("QZ"), uscc=e.uscc,
                                           insurer_code="PICC",
                                           applied_amount=Decimal("1000000.00"),
                                           contact=contact, **term), "OB0001"),
                    "OP0001", _Unsigned(), status=-1, code="1003")
        self.send("insurer: underwriting", "INS.PICC", "CDGI301", doc.quota_decision(
            quota_no=quota, result="UNDERWRITING"), status=1)
        self.notice("QUOTA", quota, "UNDERWRITING")
        self.send("insurer: approved", "INS.PICC", "CDGI301", doc.quota_decision(
            quota_no=quota, result="APPROVED", approved_amount=Decimal("5000000.00"),
            rate=Decimal("0.0080"), valid_from=t, valid_to=t + timedelta(days=364)), status=1)
        self.notice("QUOTA", quota, "APPROVED")

        b_quota = ids["b_quota"] = self.n("QB")
        self.portal("enterprise B applies", "CDGI109", doc.quota_apply(
            quota_no=b_quota, uscc=b.uscc, insurer_code="PICC",
            applied_amount=Decimal("800000.00"), contact=contact, **term), "OB0001", b)
        self.forwarded("INS.PICC", "CDGI109", "QuotaNo", b_quota, b, "OB0001")
        self.mail.take("INS.PICC", "CDGI507", lambda m: m.field("QuotaNo") == b_quota)
        self.send("insurer: B rejected", "INS.PICC", "CDGI301", doc.quota_decision(
            quota_no=b_quota, result="REJECTED", reason="经营年限不足"), status=1)
        self.notice("QUOTA", b_quota, "REJECTED")
        self.portal("refused: an increase on a rejected quota", "CDGI111", doc.quota_increase(
            increase_no=self.n("IB"), quota_no=b_quota, amount=Decimal("100000.00")),
            "OB0001", b, status=-1, code="2501")
        self.portal("refused: a missing authorization (B to CPIC)", "CDGI109", doc.quota_apply(
            quota_no=self.n("QC"), uscc=b.uscc, insurer_code="CPIC",
            applied_amount=Decimal("800000.00"), contact=contact, prev_quota_no=b_quota, **term),
            "OB0001", b, status=-1, code="2402")
        self.send("customs: B is now DISHONEST", "CUS.0800", "CDGI401", doc.credit_info(
            uscc=b.uscc, customs_code=b.customs_code, rating="DISHONEST", rated_date=t),
            status=1)
        self.portal("refused: a DISHONEST enterprise re-applies", "CDGI109", doc.quota_apply(
            quota_no=self.n("QD"), uscc=b.uscc, insurer_code="PICC",
            applied_amount=Decimal("800000.00"), contact=contact, prev_quota_no=b_quota, **term),
            "OB0001", b, status=-1, code="2403")

        increase = ids["increase"] = self.n("I")
        self.portal("increase the quota", "CDGI111", doc.quota_increase(
            increase_no=increase, quota_no=quota, amount=Decimal("1000000.00")), "OP0001", e)
        self.forwarded("INS.PICC", "CDGI111", "IncreaseNo", increase, e, "OP0001")
        self.send("insurer: increase approved", "INS.PICC", "CDGI303", doc.increase_decision(
            increase_no=increase, quota_no=quota, result="APPROVED",
            approved_amount=Decimal("1000000.00")), status=1)
        self.notice("INCREASE", increase, "APPROVED")

        self.say("[bold]policy[/bold]")
        invoice = doc.Invoice(type="SPECIAL", title=e.name, taxpayer_id=e.uscc,
                              address="沈阳市和平区中华路1号", phone="024-88886666",
                              bank_name="中国银行沈阳分行", bank_account="6217000012345678",
                              email="finance@example.cn")
        policy_term = dict(term_start=t, term_end=t + timedelta(days=180))
        self.portal("refused: a policy above the available amount", "CDGI113", doc.policy_apply(
            apply_no=self.n("AX"), quota_no=quota, uscc=e.uscc,
            insured_amount=Decimal("6000000.01"), insured_customs=["0800", "2100"],
            coverage=["DUTY", "VAT"], invoice=invoice, **policy_term),
            "OP0001", e, status=-1, code="2602")
        apply_no = ids["apply"] = self.n("A")
        self.portal("apply for a policy", "CDGI113", doc.policy_apply(
            apply_no=apply_no, quota_no=quota, uscc=e.uscc, insured_amount=Decimal("5500000.00"),
            insured_customs=["0800", "2100"], coverage=["DUTY", "VAT"], invoice=invoice,
            **policy_term), "OP0001", e)
        self.forwarded("INS.PICC", "CDGI113", "ApplyNo", apply_no, e, "OP0001")
        policy_no = ids["policy"] = self.n("P")
        pdf = b"%PDF-1.7 electronic policy " + policy_no.encode()
        self.send("insurer: policy issued", "INS.PICC", "CDGI305", doc.policy_decision(
            apply_no=apply_no, result="ISSUED", policy_no=policy_no, premium=Decimal("44000.00"),
            rate=Decimal("0.0080"), e_policy=doc.EPolicy.of(f"{policy_no}.pdf", "application/pdf",
                                                            pdf), **policy_term), status=1)
        record = self.mail.take("CUS.0800", "CDGI501", lambda m: m.field("PolicyNo") == policy_no)
        if record.field("EPolicySha256") != hashlib.sha256(pdf).hexdigest():
            raise ScenarioFailed("the policy record names another e-policy digest")
        self.say(f"      CUS.0800 received the policy record of {policy_no}")
        self.notice("POLICY", policy_no, "ISSUED")
        grn = ids["guarantee"] = self.n("G")
        self.send("customs: policy recorded", "CUS.0800", "CDGI403", doc.policy_record_result(
            policy_no=policy_no, result="RECORDED", guarantee_record_no=grn), status=1)
        self.notice("POLICY", policy_no, "RECORDED")

        self.say("[bold]guarantee ledger[/bold]")
        now = datetime.now(UTC)
        entry_1, entry_2 = "080020261000000001", "080020261000000002"
        due = t - timedelta(days=120)
        for entry, amount in ((entry_1, Decimal("100000.00")), (entry_2, Decimal("57600.00"))):
            self.send(f"customs: deduct {amount}", "CUS.0800", "CDGI405", doc.guarantee_deduct(
                guarantee_record_no=grn, entry_id=entry, declaration_type="CL",
                customs_district="0800",
                tax_items=[doc.TaxItem(tax_kind="DUTY", amount=amount * Decimal("0.4")),
                           doc.TaxItem(tax_kind="VAT", amount=amount * Decimal("0.6"))],
                total=amount, deduct_time=now, payment_due_date=due), status=1)
        self.send("customs: restore entry 1", "CUS.0800", "CDGI407", doc.guarantee_restore(
            guarantee_record_no=grn, entry_id=entry_1, amount=Decimal("100000.00"),
            paid_time=now), status=1)
        self.out_of_order(grn, now)
        self.send("customs: restore of an unknown entry is flagged", "CUS.0800", "CDGI407",
                  doc.guarantee_restore(guarantee_record_no=grn, entry_id="080020261000000009",
                                        amount=Decimal("10.00"), paid_time=now),
                  status=1, code="2802")

        self.say("[bold]claim[/bold]")
        claim = ids["claim"] = self.n("C")
        fee = Decimal("3456.00")  # 57600.00 × 0.05% × 120 days
        self.send("customs: claim notice", "CUS.0800", "CDGI409", doc.claim_notice(
            claim_no=claim, policy_no=policy_no, guarantee_record_no=grn, cause="OVERDUE",
            entries=[doc.ClaimEntry(entry_id=entry_2, tax=Decimal("57600.00"), due_date=due,
                                    overdue_days=120, late_fee=fee)],
            total=Decimal("61056.00"), notice_date=t), status=2)
        self.mail.take("INS.PICC", "CDGI409", lambda m: m.field("ClaimNo") == claim)
        self.say(f"      INS.PICC received the claim notice {claim}")
        self.notice("CLAIM", claim, "NOTIFIED")
        self.send("insurer: claim paid", "INS.PICC", "CDGI307", doc.claim_settlement(
            claim_no=claim, policy_no=policy_no, result="PAID", paid_amount=Decimal("61056.00"),
            paid_time=now), status=1)
        for other in ("INS.CPIC", "INS.PAIC"):
            share = self.mail.take(other, "CDGI503", lambda m: m.field("ClaimNo") == claim)
            self.say(f"      {other} ({self.partners[other].dialect}) received the claim share "
                     f"({share.field('PaidAmount')})")
        self.notice("CLAIM", claim, "PAID")
        for party in ("INS.PICC", "BANK.BOC", "CUS.0800", "PORTAL"):
            self.mail.none(party, "CDGI503", wait=0.3)
        self.say("      no claim share went to the paying insurer, the bank, customs or portal")

        answer_no = self.n("QQ")
        self.portal("the enterprise queries its claims", "CDGI115", doc.claim_info_query(
            query_no=answer_no, uscc=e.uscc, insurer_name=PARTNERS["INS.PICC"]), "OP0001", e,
            status=1)
        answer = self.mail.take("PORTAL", "CDGI116", lambda m: m.field("QueryNo") == answer_no)
        claims = answer.root.findall(".//{urn:cdgi:1}Claim")
        if [c.findtext("{urn:cdgi:1}ClaimNo") for c in claims] != [claim]:
            raise ScenarioFailed("the claim query did not answer with exactly the claim")
        self.say(f"      PORTAL received {len(claims)} claim(s) for {e.uscc}")
        b_query = self.n("QB")
        self.portal("B asks about A's policy: nothing", "CDGI115", doc.claim_info_query(
            query_no=b_query, uscc=b.uscc, policy_no=policy_no), "OB0001", b, status=1)
        other = self.mail.take("PORTAL", "CDGI116", lambda m: m.field("QueryNo") == b_query)
        if other.root.findall(".//{urn:cdgi:1}Claim"):
            raise ScenarioFailed("an enterprise saw another enterprise's claims")
        self.say("      an enterprise sees only its own claims")
        return ids


    def expire_a_quota(self) -> str:
        """A quota approved with a validity that has already ended: the daemon expires it."""
        t, e = self.today, self.e
        quota = self.n("QE")
        self.portal("apply for a quota", "CDGI109", doc.quota_apply(
            quota_no=quota, uscc=e.uscc, insurer_code="PICC", applied_amount=Decimal("100.00"),
            term_start=t - timedelta(days=300), term_end=t - timedelta(days=1),
            contact=doc.Contact(name="王芳", phone="024-88886666")), "OP0001", e)
        self.mail.take("INS.PICC", "CDGI109", lambda m: m.field("QuotaNo") == quota)
        self.send("insurer: approved, validity already over", "INS.PICC", "CDGI301",
                  doc.quota_decision(quota_no=quota, result="APPROVED",
                                     approved_amount=Decimal("100.00"), rate=Decimal("0.01"),
                                     valid_from=t - timedelta(days=300),
                                     valid_to=t - timedelta(days=1)), status=1)
        self.notice("QUOTA", quota, "APPROVED")
        self.notice("QUOTA", quota, "EXPIRED")
        return quota


class _Unsigned(SimEnterprise):
    """Passes an already signed document through unchanged (for the wrong-card case)."""

    def __init__(self) -> None:
        super().__init__("", "", "")

    def sign(self, element: etree._Element, card_no: str) -> etree._Element:
        return element
