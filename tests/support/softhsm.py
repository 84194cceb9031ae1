"""SoftHSM2 tokens for tests: made in a subprocess, so this process may load the module later.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the module is first initialised in a process (and
python-pkcs11 keeps that instance per path), so a pytest process can use one token
directory only: ``session_token`` makes it once and points ``SOFTHSM2_CONF`` at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.settings import Settings
from card.devtoken import softhsm_conf
from tests.support import require_executable, unavailable

_MAKE = """
import json, sys
from pathlib import Path
from card.devtoken import init_dev_token
args = json.load(sys.stdin)
init_dev_token(softhsm_dir=Path(args.pop("softhsm_dir")), common_name="CDGI test card", **args)
"""


@dataclass(frozen=True)
class TokenInfo:
    """A token made for tests, and the environment that selects it."""

    module: str
    conf: Path
    softhsm_dir: Path
    token_label: str
    key_label: str
    pin: str
    env: dict[str, str]


def require_softhsm() -> str:
    """The SoftHSM2 module; skip where SoftHSM2 is missing, fail in CI."""
    require_executable("softhsm2-util")
    module = Settings.from_env().pkcs11_module
    if not Path(module).is_file():
        unavailable(f"the SoftHSM2 module {module} is not installed")
    return module


def make_token(
    tmpdir: Path,
    *,
    token_label: str,
    key_label: str,
    pin: str = "1234",
    so_pin: str = "5678",
) -> TokenInfo:
    """A fresh token directory under ``tmpdir`` with a key and its certificate."""
    module = require_softhsm()
    softhsm_dir = tmpdir / "softhsm"
    conf = softhsm_conf(softhsm_dir)
    args = {
        "module": module,
        "softhsm_dir": str(softhsm_dir),
        "token_label": token_label,
        "key_label": key_label,
        "pin": pin,
        "so_pin": so_pin,
    }
    made = subprocess.run(
        [sys.executable, "-c", _MAKE],
        check=False,
        input=json.dumps(args),
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
    )
    if made.returncode:
        raise RuntimeError(f"could not make token {token_label!r}:\n{made.stderr}")
    env = {
        "SOFTHSM2_CONF": str(conf),
        "CDGI_PKCS11_MODULE": module,
        "CDGI_TOKEN_LABEL": token_label,
        "CDGI_KEY_LABEL": key_label,
        "CDGI_SOFTHSM_DIR": str(softhsm_dir),
        "CDGI_CARD_PIN": pin,
    }
    return TokenInfo(module, conf, softhsm_dir, token_label, key_label, pin, env)


_SESSION: dict[str, TokenInfo] = {}


def session_token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    """The one token this pytest process loads in-process, made on first use.

    Test modules wrap it in a session-scoped fixture; the cache here makes those fixtures of
    different modules share one token.
    """
    if "token" not in _SESSION:
        token = make_token(
            tmp_path_factory.mktemp("card"), token_label="CDGI-TEST", key_label="cdgi-test"
        )
        os.environ["SOFTHSM2_CONF"] = str(token.conf)
        _SESSION["token"] = token
    return _SESSION["token"]
