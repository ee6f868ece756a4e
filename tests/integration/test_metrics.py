"""/metrics: Prometheus's text format for operators, read with prometheus-client's own parser;
the scraper's token or an administrator's, nobody else."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telehealth.settings import Settings
from tests.helpers import assert_problem, login

SCRAPER_TOKEN = "scrape-" + "s" * 32


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SCRAPER_TOKEN})


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_of(figures: dict, route: str, status: str) -> float:  # type: ignore[type-arg]
    key = (
        "telehealth_http_requests_total",
        (("method", "GET"), ("route", route), ("status", status)),
    )
    return float(figures.get(key, 0.0))


async def test_metrics_are_not_public(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/metrics"), 401)
    assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer guess"}), 401)
    doctor = await login(client, "bs.xa1")
    assert_problem(await client.get("/metrics", headers=doctor), 403)
    coordinator = await login(client, "dieuphoi")
    assert_problem(await client.get("/metrics", headers=coordinator), 403)
    admin = await login(client, "quantri")
    assert (await client.get("/metrics", headers=admin)).status_code == 200


async def test_requests_by_route_and_status_with_latency(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/api/patients", headers=doctor)).status_code == 200
    assert (await client.get("/api/patients")).status_code == 401
    for path in ("/no/such/a", "/no/such/b"):  # unknown paths share one series
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    assert (
        requests_of(after, "/api/patients", "200") - requests_of(before, "/api/patients", "200")
        == 3
    )
    assert (
        requests_of(after, "/api/patients", "401") - requests_of(before, "/api/patients", "401")
        == 1
    )
    assert requests_of(after, "unmatched", "404") - requests_of(before, "unmatched", "404") == 2
    assert not any("/no/such" in str(labels) for _, labels in after)
    count = (
        "telehealth_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/patients")),
    )
    assert after[count] - before.get(count, 0.0) == 4
    names = {name for name, _ in after}
    assert "telehealth_http_request_duration_seconds_bucket" in names


async def test_database_figures(client: httpx.AsyncClient) -> None:
    figures = await scrape(client)
    assert ("telehealth_timers", (("state", "due"),)) in figures
    assert ("telehealth_timers", (("state", "pending"),)) in figures
    assert figures[("telehealth_timer_backlog_seconds", ())] >= 0
    assert figures[("telehealth_rooms", (("state", "open"),))] >= 0
    assert ("telehealth_rooms", (("state", "active"),)) in figures
