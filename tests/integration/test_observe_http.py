"""The observability endpoint over real HTTP on a loopback port of its own."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapter.observe import Health, HttpServer, Metrics

pytestmark = pytest.mark.integration

UP = {"broker": "up", "store": "up", "card": "present", "state": "running"}


class Snapshot:
    """What the daemon would keep: a Health the test can change between requests."""

    def __init__(self) -> None:
        self.health = Health.judge(live=True, checks=UP)

    def __call__(self) -> Health:
        return self.health


@pytest.fixture()
def snapshot() -> Snapshot:
    return Snapshot()


@pytest.fixture()
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture()
def base(metrics: Metrics, snapshot: Snapshot) -> Iterator[str]:
    """The URL of a running server on a free loopback port."""
    srv = HttpServer("127.0.0.1", 0, metrics, snapshot)
    port = srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


def get(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers["Content-Type"], e.read()


def get_json(url: str) -> tuple[int, Any]:
    status, ctype, body = get(url)
    assert ctype == "application/json"
    return status, json.loads(body)


def test_metrics_are_scraped_in_the_prometheus_text_format(base: str, metrics: Metrics) -> None:
    metrics.messages_in.labels(type="CDGI101", partner="BANK1", outcome="REFUSED").inc(2)
    metrics.set_state("running")
    with metrics.stage("parse"):
        pass

    status, ctype, body = get(f"{base}/metrics")

    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    key = (("outcome", "REFUSED"), ("partner", "BANK1"), ("type", "CDGI101"))
    assert found[("cdgi_messages_in_total", key)] == 2
    assert found[("cdgi_daemon_state", (("state", "running"),))] == 1
    assert found[("cdgi_stage_seconds_count", (("stage", "parse"),))] == 1


def test_healthz_and_readyz_answer_200_with_the_checks_when_all_is_up(base: str) -> None:
    assert get_json(f"{base}/healthz") == (200, {"live": True, "checks": UP})
    assert get_json(f"{base}/readyz") == (200, {"ready": True, "checks": UP})


def test_readyz_answers_503_while_live_when_the_broker_is_down(
    base: str, snapshot: Snapshot
) -> None:
    checks = {**UP, "broker": "down"}
    snapshot.health = Health.judge(live=True, checks=checks)
    assert get_json(f"{base}/healthz") == (200, {"live": True, "checks": checks})
    assert get_json(f"{base}/readyz") == (503, {"ready": False, "checks": checks})


def test_healthz_answers_503_when_the_loop_is_dead(base: str, snapshot: Snapshot) -> None:
    checks = {**UP, "state": "stopped"}
    snapshot.health = Health(live=False, ready=False, checks=checks)
    assert get_json(f"{base}/healthz") == (503, {"live": False, "checks": checks})
    assert get_json(f"{base}/readyz") == (503, {"ready": False, "checks": checks})


def test_a_failing_health_callable_reads_as_unhealthy(metrics: Metrics) -> None:
    def broken() -> Health:
        raise RuntimeError("snapshot gone")

    srv = HttpServer("127.0.0.1", 0, metrics, broken)
    port = srv.start()
    try:
        status, body = get_json(f"http://127.0.0.1:{port}/healthz")
    finally:
        srv.stop()
    assert (status, body["live"]) == (503, False)


def test_requests_are_never_logged_to_stderr(base: str, capfd: pytest.CaptureFixture[str]) -> None:
    get(f"{base}/metrics")
    get(f"{base}/nothing-here")
    assert "GET /" not in capfd.readouterr().err


def test_an_unknown_path_is_404(base: str) -> None:
    status, _, _ = get(f"{base}/nothing-here")
    assert status == 404


def test_start_returns_the_bound_port_and_stop_frees_it(metrics: Metrics) -> None:
    srv = HttpServer("127.0.0.1", 0, metrics, Snapshot())
    port = srv.start()
    assert port > 0
    assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200

    srv.stop()
    srv.stop()  # twice is harmless

    with socket.socket() as sock:
        # SO_REUSEADDR: a closed connection's TIME_WAIT must not count, a listener would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # would raise EADDRINUSE if still listening
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_stopped_server_can_bind_the_same_port_again(metrics: Metrics) -> None:
    first = HttpServer("127.0.0.1", 0, metrics, Snapshot())
    port = first.start()
    first.stop()
    second = HttpServer("127.0.0.1", port, metrics, Snapshot())
    try:
        assert second.start() == port
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        second.stop()
