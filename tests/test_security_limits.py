"""Request size limit on POST /slack/events: 1 MiB (Slack's payloads are far smaller).

A larger body is answered 413 before bolt sees it, and without reading the rest: by its
Content-Length when it declares one, else (chunked) as soon as the bytes read pass the limit.
"""

from __future__ import annotations

import socket
import threading
import time

import anyio
import pytest

from vigil_ir.web.app import MAX_SLACK_BODY_BYTES
from tests import slack_requests as sr
from tests.fuzzing import changed, row_counts


def signed_note(vigil, size: int) -> str:
    """A signed `/incident note` form body of exactly `size` bytes."""
    body = sr.slash_command("note ", channel="C0GENERAL")
    return body.replace("text=note+", "text=note+" + "x" * (size - len(body)), 1)


def test_a_body_over_the_limit_is_refused_with_413_and_runs_nothing(vigil, fake_slack):
    before, calls = row_counts(vigil.db), len(fake_slack.calls)
    body = signed_note(vigil, MAX_SLACK_BODY_BYTES + 1)
    assert len(body.encode()) == MAX_SLACK_BODY_BYTES + 1
    response = vigil.post(body)
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large" and "1048576 bytes" in response.json()["message"]
    assert not changed(before, row_counts(vigil.db)) and len(fake_slack.calls) == calls


def test_a_body_at_the_limit_reaches_slack_handling(vigil):
    response = vigil.post(signed_note(vigil, MAX_SLACK_BODY_BYTES))
    assert response.status_code == 200 and "works inside an incident channel" in response.text


def test_a_lying_content_length_is_refused_before_reading(vigil):
    response = vigil.client.post("/slack/events", content=b"payload=%7B%7D",
                                 headers={"Content-Length": str(50 * 2**20), **sr.signed_headers("payload=%7B%7D")})
    assert response.status_code == 413


def test_a_chunked_body_stops_being_read_just_past_the_limit(vigil):
    """Drive the ASGI app with an endless chunked body: it must answer 413 after about 1 MiB."""
    app = vigil.client.app
    chunk = b"x" * 65536
    read, sent = 0, []

    async def receive():
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}  # never ends

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/slack/events", "raw_path": b"/slack/events", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded"),
                         (b"transfer-encoding", b"chunked")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}

    async def main():
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(main)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert read == MAX_SLACK_BODY_BYTES // len(chunk) + 1  # 17 chunks of 64 KiB: just past 1 MiB


@pytest.fixture
def server(vigil):
    """The same app served by uvicorn on a free loopback port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = uvicorn.Config(vigil.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    instance.should_exit = True
    thread.join(10)


def test_uvicorn_answers_413_while_the_client_is_still_sending(server):
    """Declared 50 MiB: the answer comes back after the headers alone."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        connection.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 52428800\r\n\r\n" + b"{" * 1000)
        answer = connection.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:  # chunked, endless
        connection.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer, sent = b"", 0
        connection.settimeout(0.05)
        while not answer and sent < 8 * 2**20:
            try:
                connection.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
                sent += 65536
                answer = connection.recv(4096)
            except (TimeoutError, socket.timeout):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        if not answer:
            connection.settimeout(5)
            answer = connection.recv(4096)
    assert answer.decode().startswith("HTTP/1.1 413") and sent < 2 * 2**20, (answer[:100], sent)
