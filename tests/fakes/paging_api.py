"""Fake PagerDuty Events API v2 and Opsgenie Alert API on 127.0.0.1: they record every request,
answer in the providers' documented shapes (PagerDuty 202 `{"status": "success", "message": "Event
processed", "dedup_key": …}`, Opsgenie 202 `{"result": "Request will be processed", "took": …,
"requestId": …}`) and can be told to answer 429/5xx first (`fail_next`)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

OPSGENIE_KEY = "og-api-key"


@dataclass
class Request:
    path: str
    query: dict
    headers: dict
    body: dict


class FakePaging:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: deque[tuple[int, int | None]] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, status: int = 503, *, times: int = 1, retry_after: int | None = None) -> None:
        self._faults.extend([(status, retry_after)] * times)

    def to(self, path_part: str) -> list[Request]:
        return [r for r in self.requests if path_part in r.path]

    def answered(self, path_part: str) -> list[Request]:
        return [r for r in self.to(path_part) if r.headers.get("x-answered") == "202"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        fake: FakePaging = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        parsed = urlparse(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(parsed.path, parse_qs(parsed.query), headers, json.loads(raw or b"{}"))
        with fake._lock:
            fake.requests.append(request)
            fault = fake._faults.popleft() if fake._faults else None
        if fault:
            status, retry_after = fault
            return self._answer(status, {"message": "try later"}, {"Retry-After": str(retry_after)} if retry_after else {})
        if parsed.path == "/v2/enqueue":
            body = request.body
            if not body.get("routing_key") or body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
                return self._answer(400, {"status": "invalid event", "message": "Event object is invalid",
                                          "errors": ["'routing_key' or 'event_action' is missing"]})
            request.headers["x-answered"] = "202"
            return self._answer(202, {"status": "success", "message": "Event processed",
                                      "dedup_key": body.get("dedup_key") or uuid.uuid4().hex})
        if parsed.path.startswith("/v2/alerts"):
            if headers.get("authorization") != f"GenieKey {OPSGENIE_KEY}":
                return self._answer(401, {"message": "Could not authenticate", "took": 0.0, "requestId": str(uuid.uuid4())})
            request.headers["x-answered"] = "202"
            return self._answer(202, {"result": "Request will be processed", "took": 0.302,
                                      "requestId": str(uuid.uuid4())})
        self._answer(404, {"message": "not found"})

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def fake_paging():
    fake = FakePaging()
    yield fake
    fake.close()
