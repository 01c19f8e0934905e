"""Prometheus metrics: this process's counters, and gauges read from the database at scrape time.

Each `vigil serve` and `vigil worker` process exposes its own: counters count what *this* process
did (sum them across instances); the database gauges are the same in every process (take `max`).
Served at `GET /metrics` (bot/web/metrics.py) and by `vigil worker --metrics-port`.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import and_, exists, func
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.eventlog.models import Event, StreamHead
from vigil_ir.outbox.models import OutboxItem

log = logging.getLogger(__name__)
disable_created_metrics()  # no `*_created` series next to every counter: half the series, nothing lost

HTTP_REQUESTS = Counter("vigil_http_requests", "HTTP requests answered, by route template, method and status.",
                        ["route", "method", "status"])
# Slack retries a request it has no answer to within 3 s; the buckets are dense around that limit.
SLACK_ACK_SECONDS = Histogram("vigil_slack_ack_seconds", "Time to answer POST /slack/events, by request type.",
                              ["type"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2, 2.5, 3, 5, 10))
OUTBOX_DELIVERIES = Counter("vigil_outbox_deliveries", "Outbox delivery attempts by item kind and outcome "
                            "(delivered, failed = retried later, not_ready = waits for an earlier item).",
                            ["kind", "outcome"])
REMINDERS_QUEUED = Counter("vigil_reminders_queued", "Reminders queued by each sweep.", ["sweep"])
SWEEP_FAILURES = Counter("vigil_sweep_failures", "Sweeps that raised (logged; retried at the next run).", ["sweep"])
SWEEPS_LAST_RUN = Gauge("vigil_sweeps_last_run_timestamp_seconds", "When this process last ran the sweeps.")


def slack_request_type(content_type: str, body: bytes | str) -> str:
    """command / interactive / event / other, from the content type and the body's shape (no parsing)."""
    text = body if isinstance(body, str) else body.decode("latin-1")
    if content_type.startswith("application/json"):
        return "event"
    if text.startswith("payload="):
        return "interactive"
    if text.startswith("command=") or "&command=" in text:
        return "command"
    return "other"


class DatabaseCollector:
    """Gauges computed with one cheap query each when scraped; `vigil_database_up 0` if they fail."""

    def __init__(self, database: Database, settings: Settings):
        self.database, self.settings = database, settings

    def collect(self):
        up = GaugeMetricFamily("vigil_database_up", "1 if the scrape-time database queries succeeded.")
        try:
            with self.database.session() as session:
                families = list(self._families(session))
        except Exception as failure:  # noqa: BLE001 - a scrape must still answer
            log.warning("metrics: database queries failed: %s", failure)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session):
        now = clock.now()
        pending, oldest = session.exec(select(func.count(), func.min(OutboxItem.created_at))
                                       .where(OutboxItem.status == "pending")).one()
        yield GaugeMetricFamily("vigil_outbox_pending", "Outbox items not yet delivered.", value=pending)
        dead = session.exec(select(func.count()).where(OutboxItem.status == "dead")).one()
        yield GaugeMetricFamily("vigil_outbox_dead", "Outbox items that failed in a way retrying cannot fix, "
                                "waiting for `vigil outbox retry` (alert on > 0).", value=dead)
        age = (now - clock.to_utc(oldest)).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("vigil_outbox_oldest_pending_age_seconds",
                                "Age of the oldest undelivered outbox item (0 when none).", value=max(age, 0.0))

        streams, events = session.exec(select(func.count(), func.coalesce(func.sum(StreamHead.seq), 0))
                                       .select_from(StreamHead)).one()
        yield GaugeMetricFamily("vigil_event_streams", "Event-log streams (hash chains).", value=streams)
        yield CounterMetricFamily("vigil_events", "Events in the log (sum of the stream heads' sequence numbers).",
                                  value=events)
        yield GaugeMetricFamily("vigil_event_head_mismatches", _MISMATCH_HELP, value=self._head_mismatches(session))

        if self.settings.audit_channel:
            published = session.exec(select(func.max(OutboxItem.done_at)).where(
                OutboxItem.subject == "audit", OutboxItem.dedupe_key.like("audit-witness:%"),
                OutboxItem.status == "done")).one()
            yield GaugeMetricFamily("vigil_audit_heads_published_timestamp_seconds",
                                    "When the chain heads were last posted to VIGIL_AUDIT_CHANNEL (0: never).",
                                    value=clock.to_utc(published).timestamp() if published else 0)

    @staticmethod
    def _head_mismatches(session) -> int:
        """Streams whose head is not their last event: a deleted tail, an extra event, a changed head hash.
        Index lookups per stream; not a re-verification (that is `vigil verify`)."""
        at_head = exists().where(Event.stream == StreamHead.stream, Event.stream_seq == StreamHead.seq,
                                 Event.hash == StreamHead.hash)
        beyond = exists().where(and_(Event.stream == StreamHead.stream, Event.stream_seq == StreamHead.seq + 1))
        return session.exec(select(func.count()).select_from(StreamHead).where(~at_head | beyond)).one()


_MISMATCH_HELP = ("Streams whose stored head is not their last event (should be 0). A cheap check at scrape "
                  "time; `vigil verify` recomputes every hash.")


class _ProcessMetrics:
    """This process's default registry (counters above, process_* and python_* metrics)."""

    def collect(self):
        yield from REGISTRY.collect()


def build_registry(database: Database, settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(database, settings))
    return registry


def serve_worker_metrics(port: int, database: Database, settings: Settings, host: str = "127.0.0.1"):
    """`vigil worker --metrics-port`: prometheus_client's HTTP server on loopback; returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=build_registry(database, settings))
