"""The adapter's error tree: every failure the pipeline can meet, and what it means.

A leaf module (no imports of our own) so that ``card``, ``store``, ``schemas`` and
``mappings`` may raise these too. The pipeline decides what happens to a delivery from the
error's type alone::

    CdgiError
    ├── PermanentError            refuse with a negative receipt, never retry
    │   ├── FormatError           0xxx
    │   │   ├── NotWellFormed         0001  (also DTD, entity, PI, XInclude, wrong encoding)
    │   │   ├── SchemaInvalid         0002
    │   │   ├── UnknownMessageType    0003
    │   │   └── TooLarge              0004  (size or nesting depth)
    │   ├── SecurityError         1xxx
    │   │   ├── SignatureInvalid      1001
    │   │   ├── CertificateNotValid   1002
    │   │   ├── SignerNotRegistered   1003  (also: another party's key, wrong card)
    │   │   ├── SignatureCoverage     1004  (missing, misplaced, wrong reference)
    │   │   ├── ConflictingDuplicate  1005
    │   │   ├── PermissionMissing     1006
    │   │   └── AlgorithmNotAllowed   1007
    │   └── BusinessRuleError     2xxx  (CONTRACT §6; the code is given per refusal)
    ├── TransientError            pause and retry, never lose the message
    │   ├── StoreUnavailable      3001
    │   ├── CardUnavailable       3002
    │   └── BrokerUnavailable
    └── ConfigurationError        the operator must act (wrong PIN, missing token, bad URL);
                                  the daemon stops with a named exit code, never retries
"""

from __future__ import annotations


class CdgiError(Exception):
    """Root of every error the adapter raises on purpose."""

    code: str = "3000"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable text, safe for receipts and logs (never a secret)."""
        return str(self.args[0]) if self.args else self.__class__.__name__


class PermanentError(CdgiError):
    """The message is refused for good: answer with a negative receipt, never retry."""

    code = "0000"


class FormatError(PermanentError):
    """The bytes are not an acceptable XML message (0xxx)."""

    code = "0001"


class NotWellFormed(FormatError):
    """Not well-formed XML, or a forbidden construct (DTD, entity, PI, XInclude, encoding)."""

    code = "0001"


class SchemaInvalid(FormatError):
    """The message does not conform to the contract's XSD (or a field check it implies)."""

    code = "0002"


class UnknownMessageType(FormatError):
    """The MessageType is not one the contract defines or the adapter accepts inbound."""

    code = "0003"


class TooLarge(FormatError):
    """The message exceeds the configured size or nesting depth."""

    code = "0004"


class SecurityError(PermanentError):
    """A signature or trust failure (1xxx)."""

    code = "1001"


class SignatureInvalid(SecurityError):
    """The signature value or a digest does not match."""

    code = "1001"


class CertificateNotValid(SecurityError):
    """The signer's certificate is expired or not yet valid."""

    code = "1002"


class SignerNotRegistered(SecurityError):
    """The signer is not registered for the claimed sender (or is another party's card)."""

    code = "1003"


class SignatureCoverage(SecurityError):
    """The signature is missing, misplaced, or does not cover exactly what the profile says."""

    code = "1004"


class ConflictingDuplicate(SecurityError):
    """The same MessageId was seen before with different content."""

    code = "1005"


class PermissionMissing(SecurityError):
    """The operator card lacks the permission the document needs."""

    code = "1006"


class AlgorithmNotAllowed(SecurityError):
    """A weak or unexpected algorithm (SHA-1, say) that this partner is not allowed."""

    code = "1007"


class BusinessRuleError(PermanentError):
    """A business rule of CONTRACT §6 refuses the message; the code is given per refusal."""

    code = "2000"


class MustWait(CdgiError):
    """The message depends on one not seen yet (a restore before its deduction): it is kept
    and handled again shortly, until ``CDGI_ORDER_GRACE_S`` after it first arrived."""

    code = "0000"


class TransientError(CdgiError):
    """A dependency is down for now: pause, retry with backoff, lose nothing."""

    code = "3000"


class StoreUnavailable(TransientError):
    """The database cannot be reached or refused the transaction for a passing reason."""

    code = "3001"


class CardUnavailable(TransientError):
    """The IC card (PKCS#11 token) is absent, busy, or its session was lost."""

    code = "3002"


class BrokerUnavailable(TransientError):
    """The RabbitMQ connection or channel is down."""

    code = "3003"


class ConfigurationError(CdgiError):
    """Something only an operator can fix; the message says how."""

    code = "3000"


class PinIncorrect(ConfigurationError):
    """The card refused the PIN. Never retried automatically: real cards lock."""
