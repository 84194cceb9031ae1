"""``cdgi`` as an operator runs it: a subprocess against a real SQLite or PostgreSQL store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from card import SoftwareSigner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def cdgi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.fixture()
def env(migrated_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CDGI_DATABASE_URL": migrated_url,
        "CDGI_STATE_DIR": str(tmp_path / "run"),
        "CDGI_SOFTHSM_DIR": str(tmp_path / "softhsm"),
        "CDGI_PREFIX": "cdgi-cli-test",
    }


def test_partners_are_added_listed_and_disabled_with_their_certificates(
    env: dict[str, str], tmp_path: Path
) -> None:
    cert = tmp_path / "picc.pem"
    cert.write_bytes(SoftwareSigner.generate("INS.PICC").cert_pem())
    added = cdgi(
        "partner", "add", "INS.PICC", "--name", "中国人保财险", "--cert", str(cert), env=env
    )
    assert added.returncode == 0, added.stderr
    assert "INS.PICC (INSURER, canonical) registered" in added.stdout
    # Adding the same certificate again is idempotent.
    assert (
        cdgi(
            "partner", "add", "INS.PICC", "--name", "中国人保财险", "--cert", str(cert), env=env
        ).returncode
        == 0
    )
    assert cdgi("partner", "disable", "INS.PICC", env=env).returncode == 0
    listed = json.loads(cdgi("partner", "list", "--json", env=env).stdout)
    assert [(p["id"], p["kind"], p["enabled"], p["name"]) for p in listed] == [
        ("INS.PICC", "INSURER", False, "中国人保财险")
    ]
    assert len(listed[0]["certificates"]) == 1
    assert 360 <= listed[0]["certificates"][0]["days_to_expiry"] <= 366


@pytest.mark.parametrize(
    "args, says",
    [
        (["partner", "add", "INSURER-X", "--name", "x"], "not a party id; use PORTAL, BANK.<code>"),
        (
            ["partner", "add", "INS.X1", "--name", "x", "--kind", "BANK"],
            "is a INSURER id, not BANK",
        ),
        (["partner", "add", "INS.X1", "--name", "x", "--dialect", "klingon"], "unknown dialect"),
        (["partner", "add", "INS.X1", "--name", "x", "--cert", "/nonexistent.pem"], "cannot read"),
        (["partner", "disable", "INS.NONE"], "not registered; see `cdgi partner list`"),
        (["why", "6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1"], "no message"),
    ],
)
def test_operator_mistakes_get_one_line_that_says_how_to_fix_them(
    env: dict[str, str], args: list[str], says: str
) -> None:
    result = cdgi(*args, env=env)
    assert result.returncode == 1
    assert "error:" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_without_a_message_or_filter_is_a_usage_error(env: dict[str, str]) -> None:
    result = cdgi("replay", env=env)
    assert result.returncode == 2 and "name a message" in result.stderr


def test_validate_prints_every_problem_with_its_line_and_path(
    env: dict[str, str], tmp_path: Path
) -> None:
    sample = (ROOT / "tests/samples/CDGI401.xml").read_text(encoding="utf-8")
    broken = sample.replace("<cdgi:Rating>", "<cdgi:Rating>X").replace(
        "<cdgi:RatedDate>", "<cdgi:RatedDate>not-a-"
    )
    path = tmp_path / "bad.xml"
    path.write_text(broken, encoding="utf-8")
    result = cdgi("validate", str(path), env=env)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert any("Rating" in line for line in lines) and any("RatedDate" in line for line in lines)
    assert all(line.startswith(f"{path}:") and line.split(":")[1].isdigit() for line in lines)


def test_the_daemon_refuses_to_start_on_an_unmigrated_database_with_exit_78(
    tmp_path: Path,
) -> None:
    env = {
        "CDGI_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "CDGI_CARD_PIN": "0000",
        "CDGI_STATE_DIR": str(tmp_path / "run"),
    }
    result = cdgi("run", env=env)
    assert result.returncode == 78
    assert "run `cdgi db upgrade` first" in result.stderr
    upgraded = cdgi("db", "upgrade", env=env)
    from store.migrate import head

    assert upgraded.returncode == 0 and f"(empty) -> {head()}" in upgraded.stdout
    assert "up to date" in cdgi("db", "upgrade", env=env).stdout


def test_the_journal_is_empty_on_a_new_store_and_says_so(env: dict[str, str]) -> None:
    assert cdgi("log", env=env).stdout.strip() == "no messages match"
    assert cdgi("log", "--json", env=env).stdout.strip() == ""


def test_updating_a_partner_keeps_what_is_not_given_again(env: dict[str, str], tmp_path: Path) -> None:
    cert = tmp_path / "picc.pem"
    cert.write_bytes(SoftwareSigner.generate("INS.PICC").cert_pem())
    assert cdgi("partner", "add", "INS.PICC", "--name", "PICC", "--dialect", "legacy-gbk",
                "--broker-user", "picc", env=env).returncode == 0
    assert cdgi("partner", "add", "INS.PICC", "--name", "PICC renamed", "--cert", str(cert),
                env=env).returncode == 0
    (partner,) = json.loads(cdgi("partner", "list", "--json", env=env).stdout)
    assert (partner["name"], partner["dialect"], partner["broker_user"]) == (
        "PICC renamed", "legacy-gbk", "picc")
    assert len(partner["certificates"]) == 1
