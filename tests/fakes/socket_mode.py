"""A fake of Slack's Socket Mode WebSocket endpoint on 127.0.0.1.

Slack's protocol (api.slack.com/apis/socket-mode): the app asks `apps.connections.open` for a URL,
connects, and receives a `hello`; each request then arrives as an envelope
`{"envelope_id", "type": "slash_commands"|"interactive"|"events_api", "payload", "accepts_response_payload"}`
and the app acknowledges it by sending `{"envelope_id", "payload"?}` back on the socket.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

_ids = itertools.count(1)


class FakeSocketMode:
    def __init__(self) -> None:
        self.connected = threading.Event()
        self.acks: dict[str, dict] = {}
        self._acked = threading.Condition()
        self._outgoing: queue.Queue[str] = queue.Queue()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def send(self, kind: str, payload: dict) -> str:
        """Queue one envelope for the connected app; returns its envelope id."""
        envelope_id = f"env-{next(_ids)}"
        self._outgoing.put(json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                       "accepts_response_payload": kind != "events_api"}))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 30.0) -> dict:
        with self._acked:
            if not self._acked.wait_for(lambda: envelope_id in self.acks, timeout=timeout):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged")
            return self.acks[envelope_id]

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _handle(self, connection) -> None:
        connection.send(json.dumps({"type": "hello", "num_connections": 1,
                                    "connection_info": {"app_id": "A0VIGIL"},
                                    "debug_info": {"host": "fake", "approximate_connection_time": 3600}}))
        self.connected.set()
        try:
            while True:
                try:
                    connection.send(self._outgoing.get(timeout=0.05))
                except queue.Empty:
                    pass
                try:
                    message = connection.recv(timeout=0)
                except TimeoutError:
                    continue
                answer = json.loads(message)
                if "envelope_id" in answer:
                    with self._acked:
                        self.acks[answer["envelope_id"]] = answer
                        self._acked.notify_all()
        except ConnectionClosed:
            return
