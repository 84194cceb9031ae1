"""One frozen ``Settings`` object, built once from the environment and an optional TOML file.

No other module reads ``os.environ``. Every field has an embedded default that works on a
developer's machine (SQLite under ``./var``, the local RabbitMQ, the SoftHSM2 dev token), so
``cdgi run`` needs no configuration at all for the demo.

Precedence: environment variable ``CDGI_<FIELD>`` > the TOML file named by ``CDGI_CONFIG``
(keys are the field names) > the default. The card PIN is never a field of its own: it is read
from ``CDGI_CARD_PIN`` or the file named by ``CDGI_PIN_FILE`` when the card is opened (for
the dev token, ``<softhsm_dir>/dev-pin`` as ``cdgi demo`` writes it), and ``Settings`` only
shows whether one is set.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from adapter.errors import ConfigurationError

_SOFTHSM_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def _default_module() -> str:
    for candidate in _SOFTHSM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return _SOFTHSM_CANDIDATES[0]


@dataclass(frozen=True)
class Settings:
    """Everything the adapter can be told, with the embedded defaults."""

    party_id: str = "DC"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    prefix: str = "cdgi"
    database_url: str = "sqlite:///var/cdgi.db"
    pkcs11_module: str = field(default_factory=_default_module)
    token_label: str = "CDGI-DEV"
    key_label: str = "cdgi-dc"
    key_name: str = ""
    softhsm_dir: str = "var/softhsm"
    state_dir: str = "var/run"
    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    prefetch: int = 100
    batch_size: int = 50
    batch_budget_s: float = 2.0  # a batch is cut so that it takes about this long (slow cards)
    delivery_limit: int = 20
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    relay_interval_s: float = 2.0
    expiry_interval_s: float = 60.0
    alert_interval_s: float = 60.0
    alert_cert_days: int = 30
    http_host: str = "127.0.0.1"
    http_port: int = 9469  # 0 turns the metrics and health endpoint off
    receipt_timeout_s: float = 3600.0
    order_grace_s: float = 60.0  # how long a message that came before its cause is retried
    log_format: str = "auto"
    log_level: str = "INFO"
    timezone_offset: str = "+08:00"
    pin_env: str = "CDGI_CARD_PIN"
    pin_file: str = ""
    config_file: str = ""

    # -- derived names -------------------------------------------------------------------
    @property
    def exchange_in(self) -> str:
        """Topic exchange partners publish to."""
        return f"{self.prefix}.in"

    @property
    def queue_in(self) -> str:
        """The adapter's quorum queue."""
        return f"{self.prefix}.in.q"

    @property
    def exchange_out(self) -> str:
        """Topic exchange the adapter publishes to (routing key = receiver id)."""
        return f"{self.prefix}.out"

    @property
    def exchange_dlx(self) -> str:
        """Dead-letter exchange of the inbound queue."""
        return f"{self.prefix}.dlx"

    @property
    def queue_dead(self) -> str:
        """Where the broker parks what exceeded its delivery limit."""
        return f"{self.prefix}.dead"

    @property
    def exchange_alerts(self) -> str:
        """Topic exchange the daemon publishes its alerts to (routing key = the alert's kind)."""
        return f"{self.prefix}.alerts"

    @property
    def effective_key_name(self) -> str:
        """The KeyName put in our signatures: configured, or the key label."""
        return self.key_name or self.key_label

    def masked(self) -> dict[str, Any]:
        """The settings as a dict fit to print: passwords in URLs masked."""
        out = dataclasses.asdict(self)
        for key in ("amqp_url", "database_url"):
            out[key] = mask_url(out[key])
        return out

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build from ``env`` (default: the process environment), the TOML file, overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        config_file = overrides.get("config_file") or env.get("CDGI_CONFIG", "")
        if config_file:
            values.update(_read_toml(Path(config_file)))
            values["config_file"] = config_file
        # Conventional PKCS#11 test variables (python-pkcs11's own) are honoured as fallbacks.
        for conventional, name in (
            ("PKCS11_MODULE", "pkcs11_module"),
            ("PKCS11_TOKEN_LABEL", "token_label"),
        ):
            if conventional in env and f"CDGI_{name.upper()}" not in env:
                values[name] = env[conventional]
        for f in fields(cls):
            key = f"CDGI_{f.name.upper()}"
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def read_pin(self, env: Mapping[str, str] | None = None) -> str:
        """The card PIN from the environment variable or the file; never logged or shown."""
        env = os.environ if env is None else env
        pin_file = self.pin_file or self._dev_pin_file(env)
        if pin_file:
            try:
                return Path(pin_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigurationError(
                    f"cannot read the PIN file {pin_file}: {e.strerror}; "
                    "check CDGI_PIN_FILE and its permissions"
                ) from None
        pin = env.get(self.pin_env) or env.get("PKCS11_TOKEN_PIN")
        if not pin:
            raise ConfigurationError(
                f"no card PIN: set {self.pin_env} or CDGI_PIN_FILE (a file holding the PIN)"
            )
        return pin

    def has_pin(self, env: Mapping[str, str] | None = None) -> bool:
        """Whether a PIN source is configured (without reading it out)."""
        env = os.environ if env is None else env
        return bool(
            self.pin_file
            or env.get(self.pin_env)
            or env.get("PKCS11_TOKEN_PIN")
            or self._dev_pin_file(env)
        )

    def _dev_pin_file(self, env: Mapping[str, str]) -> str:
        """The dev token's PIN file that ``cdgi demo`` writes, when nothing else is set."""
        if env.get(self.pin_env) or env.get("PKCS11_TOKEN_PIN"):
            return ""
        candidate = Path(self.softhsm_dir) / "dev-pin"
        return str(candidate) if candidate.is_file() else ""

    def softhsm_conf(self) -> Path:
        """The SoftHSM2 configuration file of the dev token directory."""
        return Path(self.softhsm_dir) / "softhsm2.conf"


def mask_url(url: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:***@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigurationError(f"cannot read the config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"the config file {path} is not valid TOML: {e}") from None
    section = data.get("cdgi", data)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) in {path}: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return dict(section)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(Settings)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = types.get(name)
        if kind is None:
            raise ConfigurationError(f"unknown setting {name}")
        try:
            if kind == "int" and not isinstance(value, int):
                value = int(value)
            elif kind == "float" and not isinstance(value, float):
                value = float(value)
        except ValueError:
            raise ConfigurationError(
                f"setting {name} must be a {kind}, got {value!r} (CDGI_{name.upper()})"
            ) from None
        out[name] = value
    return out
