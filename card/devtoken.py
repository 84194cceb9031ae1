"""The SoftHSM2 dev token: a card for laptops and tests, made like a real one.

Owns the token directory layout (``<softhsm_dir>/softhsm2.conf`` and ``tokens/``) and
``init_dev_token``: a token with an RSA-2048 key generated inside it (sensitive, never
extractable) and a self-signed certificate whose signature the token made, stored beside the
key under the same label and id, as an issued card holds it.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the module is first initialised in a process, so
it must be in ``os.environ`` before anything loads the module: ``use_softhsm_dir`` and
``init_dev_token`` set it when it is unset (and leave an operator's own setting alone).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, SignMixin
from pkcs11.util.rsa import encode_rsa_public_key
from pkcs11.util.x509 import decode_x509_certificate

from adapter.errors import ConfigurationError
from card import p11
from card.signer import CardInfo, Pkcs11Signer

_CONF = """\
# Written by cdgi card init: the SoftHSM2 dev token of this directory.
directories.tokendir = {tokens}
objectstore.backend = file
log.level = ERROR
"""


def softhsm_conf(softhsm_dir: Path) -> Path:
    """``<softhsm_dir>/softhsm2.conf`` (written, with ``tokens/``, if missing)."""
    softhsm_dir = softhsm_dir.resolve()
    tokens = softhsm_dir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = softhsm_dir / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(_CONF.format(tokens=tokens), encoding="utf-8")
    return conf


def use_softhsm_dir(softhsm_dir: Path) -> None:
    """Point SoftHSM2 at the dev token directory if it has one and nothing else is set."""
    conf = softhsm_dir.resolve() / "softhsm2.conf"
    if "SOFTHSM2_CONF" not in os.environ and conf.exists():
        os.environ["SOFTHSM2_CONF"] = str(conf)


def init_dev_token(
    *,
    module: str,
    softhsm_dir: Path,
    token_label: str,
    key_label: str,
    pin: str,
    so_pin: str,
    common_name: str,
    days: int = 730,
    force: bool = False,
) -> CardInfo:
    """Make the dev token, its key and certificate, unless they exist (or ``force``: new key).

    Sets ``SOFTHSM2_CONF`` to ``softhsm_conf(softhsm_dir)`` when it is unset; if the module
    was already loaded in this process with another configuration, that one stays in force.
    """
    os.environ.setdefault("SOFTHSM2_CONF", str(softhsm_conf(softhsm_dir)))
    with p11.LOCK:
        lib = p11.load_module(module)
        try:
            try:
                token = lib.get_token(token_label=token_label)
            except pkcs11.NoSuchToken:
                token = _init_token(lib, module, token_label, pin, so_pin)
            with p11.open_session(token, pin, rw=True) as session:
                if force or not _has_key_and_certificate(session, key_label):
                    _destroy(session, key_label)
                    _make_key_and_certificate(session, key_label, common_name, days)
        except pkcs11.PKCS11Error as e:
            raise ConfigurationError(
                f"could not make the dev token {token_label!r} in {softhsm_dir} "
                f"({type(e).__name__}): check the directory and SOFTHSM2_CONF"
            ) from e
    with Pkcs11Signer(module, token_label, key_label, pin) as signer:
        return signer.info()


def _init_token(lib: p11.Library, module: str, label: str, pin: str, so_pin: str) -> pkcs11.Token:
    # softhsm2-util takes PINs only as arguments (otherwise it asks a terminal), where other
    # users can read them in the process list: give it throwaway ones, set the real ones here.
    throwaway_pin, throwaway_so_pin = secrets.token_hex(8), secrets.token_hex(8)
    command = ["softhsm2-util", "--module", module, "--init-token", "--free", "--label", label]
    try:
        subprocess.run(
            [*command, "--pin", throwaway_pin, "--so-pin", throwaway_so_pin],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError as e:
        raise ConfigurationError("softhsm2-util not found: install SoftHSM2 (softhsm2)") from e
    except subprocess.CalledProcessError as e:
        raise ConfigurationError(
            f"softhsm2-util could not initialise token {label!r}: {e.stderr.strip()}"
        ) from e
    # SoftHSM2 reads its token directory in C_Initialize only.
    lib.reinitialize()
    token = p11.find_token(lib, label)
    with token.open(rw=True, so_pin=throwaway_so_pin) as session:
        session.set_pin(throwaway_so_pin, so_pin)
    with token.open(rw=True, user_pin=throwaway_pin) as session:
        session.set_pin(throwaway_pin, pin)
    return token


def _objects(session: pkcs11.Session, label: str, object_class: ObjectClass) -> list[pkcs11.Object]:
    return list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))


def _has_key_and_certificate(session: pkcs11.Session, label: str) -> bool:
    return all(
        _objects(session, label, object_class)
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.CERTIFICATE)
    )


def _destroy(session: pkcs11.Session, label: str) -> None:
    for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
        for obj in _objects(session, label, object_class):
            obj.destroy()


def _make_key_and_certificate(
    session: pkcs11.Session, label: str, common_name: str, days: int
) -> None:
    key_id = secrets.token_bytes(16)
    public, private = session.generate_keypair(
        KeyType.RSA,
        2048,
        id=key_id,
        label=label,
        store=True,
        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
        private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
    )
    assert isinstance(private, SignMixin)  # made with the SIGN capability
    name = asn1_x509.Name.build({"common_name": common_name})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127),
            "signature": {"algorithm": "sha256_rsa"},
            "issuer": name,
            "validity": {
                "not_before": _time(start),
                "not_after": _time(start + timedelta(days=days)),
            },
            "subject": name,
            "subject_public_key_info": {
                "algorithm": {"algorithm": "rsa"},
                "public_key": asn1_keys.RSAPublicKey.load(encode_rsa_public_key(public)),
            },
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": {"digital_signature", "non_repudiation"},
                },
            ],
        }
    )
    certificate = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": "sha256_rsa"},
            "signature_value": private.sign(tbs.dump(), mechanism=Mechanism.SHA256_RSA_PKCS),
        }
    )
    session.create_object(
        {
            **decode_x509_certificate(certificate.dump()),
            Attribute.TOKEN: True,
            # Public, like the certificate printed on a card: readable without the PIN.
            Attribute.PRIVATE: False,
            Attribute.LABEL: label,
            Attribute.ID: key_id,
        }
    )


def _time(moment: datetime) -> asn1_x509.Time:
    # RFC 5280: UTCTime up to 2049, GeneralizedTime from 2050.
    return asn1_x509.Time({"utc_time" if moment.year < 2050 else "general_time": moment})
