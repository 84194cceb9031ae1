"""The daemon with a slow card: ``bootstrap(settings, signer=SlowSigner(card))``, then run.

    CDGI_... python bench/slowcard_runner.py [seconds per signature, default 0.25]

Started by ``bench/slowcard.py`` as a subprocess (cwd = the work tree, settings from the
environment exactly as ``cdgi run`` reads them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402

from adapter import logs  # noqa: E402
from adapter.bootstrap import bootstrap, open_signer  # noqa: E402
from adapter.daemon import Daemon  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from card import Signer  # noqa: E402


class SlowSigner:
    """A card that takes ``delay_s`` per signature (a real one underneath)."""

    def __init__(self, inner: Signer, delay_s: float = 0.25) -> None:
        self.inner = inner
        self.delay_s = delay_s

    @property
    def key_name(self) -> str:
        return self.inner.key_name

    @property
    def certificate(self) -> x509.Certificate:
        return self.inner.certificate

    def sign_bytes(self, data: bytes) -> bytes:
        time.sleep(self.delay_s)
        return self.inner.sign_bytes(data)

    def close(self) -> None:
        self.inner.close()


def main() -> int:
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    app = bootstrap(settings, signer=SlowSigner(open_signer(settings), delay))
    return int(Daemon(app).run())


if __name__ == "__main__":
    sys.exit(main())
