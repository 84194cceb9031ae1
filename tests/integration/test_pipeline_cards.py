"""The pipeline in-process on real SQLite and PostgreSQL, signing with the SoftHSM2 card."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from adapter import documents
from adapter.pipeline import Delivery, Pipeline
from adapter.registry import Registry
from adapter.settings import Settings
from adapter.sim import SimEnterprise, SimPartner
from card import Pkcs11Signer, SoftwareSigner
from store.db import UnitOfWork
from store.repo import Repo
from tests.support.harness import register
from tests.support.softhsm import TokenInfo, session_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    return session_token(tmp_path_factory)


def test_binding_a_card_again_keeps_the_permissions_granted_to_it(
    migrated_url: str, engines: Any, token: TokenInfo
) -> None:
    engine = engines(migrated_url)
    portal_key = SoftwareSigner.generate("PORTAL test", key_name="PORTAL")
    register(engine, "PORTAL", portal_key)
    settings = replace(Settings(), database_url=migrated_url)
    portal = SimPartner("PORTAL", portal_key, settings)  # builds envelopes; not connected
    firm = (SimEnterprise("91210100MA0DEM0016", "辽宁示范进出口有限公司", "2101960001")
            .add_card("LP0001", "LEGAL", "张伟").add_card("OP0001", "OPERATOR", "王芳"))
    signer = Pkcs11Signer(token.module, token.token_label, token.key_label, token.pin)
    pipeline = Pipeline(settings, Registry(engines(migrated_url, writer=False)), signer,
                        owner="test")
    validity = dict(valid_from=date(2026, 1, 1), valid_to=date(2028, 12, 31))
    grant = firm.sign(documents.operator_grant(uscc=firm.uscc, operator_card_no="OP0001",
                                               permissions=["QUOTA", "POLICY"]), "LP0001")
    messages = [
        portal.envelope("CDGI101", firm.binding("LP0001", **validity)),
        portal.envelope("CDGI101", firm.binding("OP0001", **validity)),
        portal.envelope("CDGI103", grant),
        portal.envelope("CDGI101", firm.binding("OP0001", **validity)),  # bound again
    ]
    for body in messages:
        result = pipeline.process_batch(engine, [Delivery(body, "PORTAL")])
        assert [status for _, status, _ in result.outcomes] == ["PROCESSED"]
    signer.close()
    with UnitOfWork(engine) as uow:
        card = Repo(uow.session).card("OP0001")
        assert card is not None and card.permissions == "POLICY,QUOTA"
