"""The signing port: the ``Signer`` protocol, the IC card behind it, and a software stand-in.

Owns how bytes get their RSASSA-PKCS1-v1_5 SHA-256 signature and which certificate goes with
it. ``Pkcs11Signer`` is the real adapter (the IC card through PKCS#11, via ``card.p11``);
``SoftwareSigner`` holds a ``cryptography`` key for unit tests and simulated partners.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self, TypeVar

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, SignMixin
from pkcs11 import exceptions as p11e

from adapter.errors import CardUnavailable, ConfigurationError, PinIncorrect
from card import p11

T = TypeVar("T")


class Signer(Protocol):
    """Something that signs with one RSA key and shows the certificate that goes with it."""

    @property
    def key_name(self) -> str:
        """Goes into ``ds:KeyInfo/ds:KeyName`` (card or certificate number)."""
        ...

    @property
    def certificate(self) -> x509.Certificate:
        """Goes into ``ds:KeyInfo/ds:X509Data``."""
        ...

    def sign_bytes(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``data``."""
        ...

    def close(self) -> None:
        """Release the key (log out of the card)."""
        ...


class SoftwareSigner:
    """A ``Signer`` over a ``cryptography`` RSA key: unit tests and simulated partners."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate, key_name: str):
        self._key = key
        self._certificate = certificate
        self._key_name = key_name

    @classmethod
    def generate(
        cls,
        common_name: str,
        *,
        key_name: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_size: int = 2048,
    ) -> SoftwareSigner:
        """A fresh key with a self-signed certificate (valid from now for a year by default)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = not_before or datetime.now(UTC) - timedelta(minutes=1)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after or start + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # signxml 5 refuses a signing certificate without digitalSignature.
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate, key_name or common_name)

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, key_name: str) -> SoftwareSigner:
        """Load an unencrypted PEM RSA key and its PEM certificate."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"the key of {key_name!r} is not an RSA key")
        return cls(key, x509.load_pem_x509_certificate(cert_pem), key_name)

    @property
    def key_name(self) -> str:
        """Goes into ``ds:KeyInfo/ds:KeyName``."""
        return self._key_name

    @property
    def certificate(self) -> x509.Certificate:
        """The self-signed (or given) certificate of the key."""
        return self._certificate

    def sign_bytes(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``data``."""
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def close(self) -> None:
        """Nothing to release: the key lives in memory."""

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (tests and xmlsec1 only)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def __repr__(self) -> str:
        return f"SoftwareSigner(key_name={self._key_name!r})"


@dataclass(frozen=True)
class CardInfo:
    """What an operator wants to know about the card and its certificate."""

    module: str
    token_label: str
    serial: str
    manufacturer: str
    model: str
    key_label: str
    key_name: str
    subject: str
    not_before: datetime
    not_after: datetime
    days_to_expiry: int
    fingerprint_sha256: str


class Pkcs11Signer:
    """The IC card as a ``Signer``: one logged-in session, opened on first use and reused.

    The certificate is the token's ``CKO_CERTIFICATE`` labelled like the key. A lost session
    is reopened once; lost again, the module is started afresh (``C_Finalize`` and
    ``C_Initialize``) and the session opened a third time, then ``CardUnavailable``. After a
    ``CardUnavailable`` the next use starts the module afresh too, so a card that was pulled
    (or a token directory that went away) is used again as soon as it is back. A refused PIN
    raises ``PinIncorrect`` and this instance never tries to log in again (real cards lock
    after a few wrong PINs).
    """

    def __init__(
        self,
        module: str,
        token_label: str,
        key_label: str,
        pin: str,
        *,
        key_name: str | None = None,
    ):
        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin
        self._key_name = key_name or key_label
        self._token: pkcs11.Token | None = None
        self._session: pkcs11.Session | None = None
        self._key: SignMixin | None = None
        self._certificate: x509.Certificate | None = None
        self._refused: str | None = None  # the message of the PIN refusal, once refused
        self._restart = False  # the last use failed: start the module afresh before the next

    def __repr__(self) -> str:
        return (
            f"Pkcs11Signer(module={self.module!r}, token_label={self.token_label!r}, "
            f"key_label={self.key_label!r})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def key_name(self) -> str:
        """Goes into ``ds:KeyInfo/ds:KeyName``: configured, or the key label."""
        return self._key_name

    @property
    def certificate(self) -> x509.Certificate:
        """The certificate stored on the token with the key's label.

        Read from the card with the key, then kept: asking for it (alerts, metrics) must not
        fail while the card is away for a moment; signing is what needs the card."""
        if self._certificate is not None:
            return self._certificate
        return self._use(lambda _key: self._loaded_certificate())

    def sign_bytes(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 SHA-256 over ``data``, computed by the card (``SHA256_RSA_PKCS``)."""
        return self._use(lambda key: key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))

    def info(self) -> CardInfo:
        """The token and its certificate, for ``cdgi card info`` and ``cdgi status``."""
        with p11.LOCK:
            certificate = self.certificate
            token = self._token
            assert token is not None  # set by the open that reading the certificate needed
            not_after = certificate.not_valid_after_utc
            return CardInfo(
                module=self.module,
                token_label=token.label,
                serial=token.serial.decode("ascii", "replace").strip(),
                manufacturer=token.manufacturer_id,
                model=token.model,
                key_label=self.key_label,
                key_name=self.key_name,
                subject=certificate.subject.rfc4514_string(),
                not_before=certificate.not_valid_before_utc,
                not_after=not_after,
                days_to_expiry=(not_after - datetime.now(UTC)).days,
                fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
            )

    def close(self) -> None:
        """Log out and close the session; the next use opens a new one."""
        with p11.LOCK:
            self._discard()

    # -- the session -----------------------------------------------------------------------
    def _use(self, operation: Callable[[SignMixin], T]) -> T:
        with p11.LOCK:
            try:
                result = self._attempt(operation)
            except CardUnavailable:
                self._restart = True
                raise
            self._restart = False
            return result

    def _attempt(self, operation: Callable[[SignMixin], T]) -> T:
        try:
            if self._restart and self._key is None:
                p11.reinitialize(self.module)
            try:
                return operation(self._open())
            except p11.SESSION_LOST:
                self._discard()
                try:
                    return operation(self._open())
                except p11.SESSION_LOST:
                    # The module may still hold the card's old state: start it afresh.
                    self._discard()
                    p11.reinitialize(self.module)
                    return operation(self._open())
        except p11.SESSION_LOST as e:
            self._discard()
            raise CardUnavailable(
                f"lost the session with token {self.token_label!r} and could not open a new "
                f"one ({type(e).__name__}): check the card reader and that the card is inserted"
            ) from e
        except p11e.PKCS11Error as e:
            raise CardUnavailable(
                f"token {self.token_label!r} failed ({type(e).__name__}: {e})"
            ) from e

    def _open(self) -> SignMixin:
        if self._refused is not None:
            raise PinIncorrect(self._refused)
        if self._key is not None:
            return self._key
        self._token = token = p11.find_token(p11.load_module(self.module), self.token_label)
        try:
            self._session = p11.open_session(token, self._pin)
        except PinIncorrect as e:
            self._refused = e.message
            raise
        try:
            self._key = self._find_key(self._session)
        except BaseException:
            self._discard()  # never keep a session without its key
            raise
        return self._key

    def _find_key(self, session: pkcs11.Session) -> SignMixin:
        try:
            key = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label=self.key_label)
        except (p11e.NoSuchKey, p11e.MultipleObjectsReturned) as e:
            raise ConfigurationError(
                f"token {self.token_label!r} has no single RSA private key labelled "
                f"{self.key_label!r}: set CDGI_KEY_LABEL to the key's label"
            ) from e
        if not isinstance(key, SignMixin):
            raise ConfigurationError(
                f"the key labelled {self.key_label!r} on token {self.token_label!r} may not sign "
                "(CKA_SIGN is false): set CDGI_KEY_LABEL to a signing key"
            )
        certificates = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: self.key_label}
            )
        )
        if len(certificates) != 1:
            raise ConfigurationError(
                f"token {self.token_label!r} has {len(certificates)} certificates labelled "
                f"{self.key_label!r}, expected one beside the key: store the key's certificate "
                "under the key's label, or set CDGI_KEY_LABEL"
            )
        try:
            certificate = x509.load_der_x509_certificate(certificates[0][Attribute.VALUE])
        except ValueError as e:
            raise ConfigurationError(
                f"the certificate labelled {self.key_label!r} on token {self.token_label!r} is "
                "not a valid X.509 certificate: store it again (DER)"
            ) from e
        public = certificate.public_key()
        modulus = int.from_bytes(key[Attribute.MODULUS], "big")
        # A certificate of another key would make every signature fail at the partner instead.
        if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers().n != modulus:
            raise ConfigurationError(
                f"the certificate labelled {self.key_label!r} on token {self.token_label!r} "
                "does not belong to the key of that label: store the right certificate"
            )
        self._certificate = certificate
        return key

    def _loaded_certificate(self) -> x509.Certificate:
        assert self._certificate is not None  # read by _open together with the key
        return self._certificate

    def _discard(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None:
            # Best effort: a lost session cannot be closed cleanly, and that is why we are here.
            with contextlib.suppress(p11e.PKCS11Error):
                session.close()
