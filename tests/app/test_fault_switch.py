"""The reference app's fault switch (FAULT_ERROR_RATIO, app/server docstring): off by default;
on, exactly that share of the user requests is answered 500, evenly spread, counted as 5xx in
`http_requests_total`, and the probes are never failed (the pod stays in service)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.test_server import Service, delta, start_service, stop


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, FAULT_ERROR_RATIO="0.5")
    try:
        yield service
    finally:
        stop(service.proc)


def test_half_of_the_user_requests_fail_evenly_and_are_counted_as_500(faulty: Service) -> None:
    before = faulty.samples()
    statuses = [faulty.get("/").status for _ in range(10)]
    assert statuses == [200, 500] * 5  # the n-th fails when floor(n * 0.5) grows
    assert [faulty.get("/sleep?ms=0").status for _ in range(2)] == [200, 500]
    counted = delta(before, faulty.samples(), "http_requests_total")
    assert counted == {
        frozenset({("method", "GET"), ("code", "500"), ("path", "/")}): 5.0,
        frozenset({("method", "GET"), ("code", "200"), ("path", "/")}): 5.0,
        frozenset({("method", "GET"), ("code", "500"), ("path", "/sleep")}): 1.0,
        frozenset({("method", "GET"), ("code", "200"), ("path", "/sleep")}): 1.0,
    }


def test_the_probes_never_fail(faulty: Service) -> None:
    assert {faulty.get(path).status for path in ["/health", "/health/ready"] * 5} == {200}


def test_the_switch_is_off_by_default(tmp_path: Path) -> None:
    service = start_service(tmp_path)
    try:
        assert {service.get("/").status for _ in range(20)} == {200}
    finally:
        stop(service.proc)
