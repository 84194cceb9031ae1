"""The IC-card signing port: signers, XML-DSig signing and the verification profile.

Owns everything about keys and signatures: the ``Signer`` protocol with its PKCS#11 and
software implementations, the dev token (``card.devtoken``), and making and verifying the
envelope and document signatures of CONTRACT §4 (``card.xmldsig``). The only package that
imports ``pkcs11``; it may import ``adapter.errors`` and nothing else of ours.
"""

from __future__ import annotations

from card.signer import CardInfo, Pkcs11Signer, Signer, SoftwareSigner
from card.xmldsig import (
    EXC_C14N,
    Unsigned,
    Verified,
    prepare_envelope,
    sign_document,
    sign_envelope,
    verify_document,
    verify_envelope,
)

__all__ = [
    "EXC_C14N",
    "CardInfo",
    "Pkcs11Signer",
    "Signer",
    "SoftwareSigner",
    "Unsigned",
    "Verified",
    "prepare_envelope",
    "sign_document",
    "sign_envelope",
    "verify_document",
    "verify_envelope",
]
