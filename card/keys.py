"""A ``cryptography`` RSA private key whose signing is done by a ``Signer``.

signxml signs only with ``cryptography`` key objects and has no PKCS#11 support; it calls
``sign(data, padding, algorithm)`` and ``key_size`` (and ``public_key()`` only when no
``cert=`` is given, which we always give). Everything that would need the private half
raises: it never leaves the card.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as pad
from cryptography.hazmat.primitives.asymmetric import rsa

from card.signer import Signer


class SignerKey(rsa.RSAPrivateKey):
    """Hands a ``Signer`` (the IC card, say) to signxml as an RSA private key."""

    def __init__(self, signer: Signer):
        self._signer = signer

    @property
    def key_size(self) -> int:
        """The modulus length, from the signer's certificate."""
        return self.public_key().key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half, from the signer's certificate."""
        public = self._signer.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise TypeError(f"the certificate of {self._signer.key_name!r} is not an RSA one")
        return public

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:
        """RSASSA-PKCS1-v1_5 SHA-256, the only scheme the ``Signer`` port offers."""
        if not isinstance(padding, pad.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise TypeError(
                f"a Signer signs RSASSA-PKCS1-v1_5 with SHA-256 only, not "
                f"{padding.name} with {getattr(algorithm, 'name', algorithm)}"
            )
        return self._signer.sign_bytes(data)

    def decrypt(self, ciphertext: bytes, padding: Any) -> NoReturn:
        """Not offered: the card key signs only."""
        raise TypeError("a Signer key only signs")

    def private_numbers(self) -> NoReturn:
        """Not offered: the private key never leaves the card."""
        raise TypeError("the private key never leaves the card")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> NoReturn:
        """Not offered: the private key never leaves the card."""
        raise TypeError("the private key never leaves the card")

    def __copy__(self) -> SignerKey:
        return self  # holds no state of its own to copy

    def __deepcopy__(self, memo: dict[int, Any]) -> SignerKey:
        return self
