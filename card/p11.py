"""The PKCS#11 boundary: loading the module, finding the token, logging in, one process lock.

Owns every call into python-pkcs11 that ``Pkcs11Signer`` and ``card.devtoken`` share, and the
translation of its errors into ``adapter.errors``. Only ``card`` may import ``pkcs11``.

python-pkcs11 calls ``C_Initialize(NULL)``, i.e. without asking the module to lock for us, so
every PKCS#11 call of the process must hold ``LOCK``. Messages name the setting to fix and
never contain the PIN.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import exceptions as p11e

from adapter.errors import CardUnavailable, ConfigurationError, PinIncorrect

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library

# The modules this process loaded once (configuration was right), by path.
_STARTED: dict[str, Library] = {}

# Re-entrant: info() reads the certificate, which opens the session, under the same lock.
LOCK = threading.RLock()

WRONG_PIN: tuple[type[p11e.PKCS11Error], ...] = (
    p11e.PinIncorrect,
    p11e.PinInvalid,
    p11e.PinLenRange,
    p11e.PinLocked,
    p11e.PinExpired,
)

# The session or the card went away under us: close, reopen once, then give up as transient.
SESSION_LOST: tuple[type[p11e.PKCS11Error], ...] = (
    p11e.SessionHandleInvalid,
    p11e.SessionClosed,
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.GeneralError,
    p11e.FunctionFailed,
    # Another session of this process logged out (C_Logout ends the login of all of them).
    p11e.UserNotLoggedIn,
    p11e.KeyHandleInvalid,
    p11e.ObjectHandleInvalid,
)


def load_module(module: str) -> Library:
    """The initialised PKCS#11 library at ``module`` (python-pkcs11 caches it per path).

    Loading it the first time is configuration; once it worked, a module that does not start
    again (after ``reinitialize``) is a card that is away for now: ``CardUnavailable``."""
    lib = _STARTED.get(module)
    if lib is not None:
        if not getattr(lib, "initialized", True):
            try:
                lib.initialize()
            except p11e.PKCS11Error as e:
                raise CardUnavailable(
                    f"the PKCS#11 module {module} does not start ({type(e).__name__}): check "
                    "the card reader and the card (SoftHSM2: its token directory)"
                ) from e
        return lib
    if not Path(module).is_file():
        raise ConfigurationError(
            f"PKCS#11 module {module} not found: set CDGI_PKCS11_MODULE to the card "
            "vendor's library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
        )
    try:
        lib = pkcs11.lib(module)
    except p11e.PKCS11Error as e:
        raise ConfigurationError(
            f"cannot load the PKCS#11 module {module} ({type(e).__name__}: {e}); "
            "check CDGI_PKCS11_MODULE"
        ) from e
    _STARTED[module] = lib
    return lib


def reinitialize(module: str) -> None:
    """Finalize the module and initialise it again (``C_Finalize``, ``C_Initialize``).

    A module keeps what it learnt about a card that went away: SoftHSM2 whose token directory
    disappeared answers every later call with ``CKR_GENERAL_ERROR``, even once the directory
    is back, and a reader's module may keep a slot of a pulled card. Starting the module
    afresh is the standard way back; it ends every session and login of this process, so
    call it holding ``LOCK`` and only after a loss. If it does not start, ``load_module``
    tries again on the next use.
    """
    lib = load_module(module)
    with contextlib.suppress(p11e.PKCS11Error):
        lib.finalize()
    load_module(module)


def find_token(lib: Library, token_label: str) -> pkcs11.Token:
    """The one token labelled ``token_label``; an absent card is transient (it may be inserted)."""
    try:
        return lib.get_token(token_label=token_label)
    except p11e.NoSuchToken as e:
        raise CardUnavailable(
            f"no token labelled {token_label!r} in {lib.so}: insert the card, or set "
            "CDGI_TOKEN_LABEL to its label (the dev token is made by `cdgi card init`)"
        ) from e
    except p11e.MultipleTokensReturned as e:
        raise ConfigurationError(
            f"several tokens are labelled {token_label!r} in {lib.so}: relabel one, "
            "or set CDGI_TOKEN_LABEL to a unique label"
        ) from e


def open_session(token: pkcs11.Token, pin: str, *, rw: bool = False) -> pkcs11.Session:
    """A session logged in as the user; a wrong PIN raises ``PinIncorrect`` and is not retried."""
    try:
        return token.open(rw=rw, user_pin=pin)
    except p11e.UserAlreadyLoggedIn:
        # The login belongs to the process, not the session: another session of ours holds it,
        # so a plain session is already logged in.
        return token.open(rw=rw)
    except WRONG_PIN as e:
        raise PinIncorrect(wrong_pin_message(token.label, e)) from e
    except p11e.UserPinNotInitialized as e:
        raise ConfigurationError(
            f"the user PIN of token {token.label!r} was never set: initialise the token "
            "(the dev token: `cdgi card init`)"
        ) from e


def wrong_pin_message(token_label: str, error: p11e.PKCS11Error) -> str:
    """How to fix a PIN the card refused; it never contains the PIN itself."""
    if isinstance(error, p11e.PinLocked):
        return (
            f"the PIN of token {token_label!r} is locked: unblock it with the SO PIN, then "
            "set CDGI_CARD_PIN or CDGI_PIN_FILE"
        )
    return (
        f"token {token_label!r} refused the PIN ({type(error).__name__}): set the right PIN "
        "in CDGI_CARD_PIN or CDGI_PIN_FILE; not retried automatically, real cards lock "
        "after a few wrong PINs"
    )
