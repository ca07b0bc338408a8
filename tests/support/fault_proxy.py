"""``FaultProxy``: a loopback HTTP proxy in front of a real registry that injects faults.

Point a client, the CLI or a mount at ``proxy.url`` instead of ``registry.url``;
every request is forwarded to the registry unchanged (``Authorization``
included) and its answer sent back, except where a rule says otherwise::

    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault.corrupt(path=BLOB_READS, times=3))   # flip a byte in 3 blob reads
        proxy.add(Fault.status(503, method="GET", times=2))  # answer 503, registry untouched
        proxy.add(Fault.cut(after=1000, path=BLOB_READS))     # headers, 1000 body bytes, close
        proxy.add(Fault.delay(0.5))                           # every request, 0.5 s late
        proxy.add(Fault.drop(method="POST", times=1))         # close without an answer
        proxy.stop("hang")   # accept, never answer until resume() (a SIGSTOPped server)
        proxy.stop("refuse") # nothing listens on the port (a dead server)
        proxy.resume()
        proxy.faults         # Counter: faults injected so far, by kind

Rules are tried in the order added; the first matching rule of each phase
applies (``delay``/``status``/``drop`` before forwarding, ``corrupt``/``cut``
to the answer), and ``times`` counts only requests a rule actually changed:
``corrupt`` and ``cut`` apply to 2xx answers with a body only. A rule with
``probability`` below 1 draws from the proxy's seeded ``random.Random``.

The proxy buffers each request and each answer whole (answers go back with a
``Content-Length``), which keeps faults exact; it is test support, not a fast
path. Threads: one accepting, one per client connection, each with its own
upstream connection.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, Literal, TypedDict, Unpack
from urllib.parse import urlsplit

__all__ = ["BLOB_READS", "Fault", "FaultKind", "FaultProxy", "Match"]

FaultKind = Literal["delay", "status", "drop", "corrupt", "cut", "hang", "refuse"]

#: Paths of the answers that carry blob bytes: one blob (whole or ranged) and batches.
BLOB_READS = r"/blobs/[0-9a-f]{64}$|/blob-batch$"

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te"}
)
_BEFORE: frozenset[str] = frozenset({"delay", "status", "drop"})


class Match(TypedDict, total=False):
    """Which requests a rule applies to, and how many of them (``Fault``'s fields)."""

    method: str
    path: str
    times: int
    probability: float


@dataclass
class Fault:
    """One rule: which requests (``method``, a regex ``path`` searched in the path without
    its query), how many (``times``; ``None`` for all), and what is done to them."""

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    times: int | None = None
    probability: float = 1.0
    seconds: float = 0.0  # delay
    code: int = 503  # status
    after: int = 0  # cut: body bytes sent before the connection closes
    flips: int = 1  # corrupt: bytes flipped per answer
    _matcher: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._matcher = re.compile(self.path) if self.path is not None else None

    @classmethod
    def delay(cls, seconds: float, **match: Unpack[Match]) -> Fault:
        return cls("delay", seconds=seconds, **match)

    @classmethod
    def status(cls, code: int = 503, **match: Unpack[Match]) -> Fault:
        return cls("status", code=code, **match)

    @classmethod
    def drop(cls, **match: Unpack[Match]) -> Fault:
        return cls("drop", **match)

    @classmethod
    def corrupt(cls, flips: int = 1, **match: Unpack[Match]) -> Fault:
        return cls("corrupt", flips=flips, **match)

    @classmethod
    def cut(cls, after: int = 0, **match: Unpack[Match]) -> Fault:
        return cls("cut", after=after, **match)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self._matcher is None or self._matcher.search(path) is not None


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes | None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def wants_close(self) -> bool:
        connection = next((v for k, v in self.headers if k.lower() == "connection"), "")
        return "close" in connection.lower() or self.version == "HTTP/1.0"


@dataclass
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Closed(Exception):
    """The client connection ended (or must end) here."""


class FaultProxy:
    def __init__(self, upstream_url: str, *, seed: int = 0) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rules: list[Fault] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._up.set()
        self._closing = False
        self._clients: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.port = 0
        #: Faults injected so far, by kind (``refuse`` counts stops and the connections cut).
        self.faults: Counter[str] = Counter()
        #: Requests that reached the proxy, faulted or not.
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def close(self) -> None:
        self._closing = True
        self._up.set()
        self._stop_listening()
        self._cut_clients()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- rules and outages -------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Apply ``fault`` from the next request on; returns it (its ``times`` counts down)."""
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        """Forget every rule; requests pass unchanged again."""
        with self._lock:
            self._rules.clear()

    def stop(self, how: Literal["refuse", "hang"]) -> None:
        """Behave like a stopped registry: ``refuse`` closes the port and every open
        connection; ``hang`` holds each request unanswered until ``resume``."""
        self._up.clear()
        if how == "refuse":
            self._stop_listening()
            with self._lock:
                self.faults["refuse"] += 1 + len(self._clients)
            self._cut_clients()

    def resume(self) -> None:
        """Answer again, on the same port; held requests go on to the registry."""
        if self._listener is None:
            self._listen()
        self._up.set()

    # -- the connections -----------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None

    def _cut_clients(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._clients.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=300)
        try:
            with client.makefile("rb") as incoming:
                while not self._closing:
                    request = _read_request(incoming)
                    if request is None:
                        return
                    self._answer(client, upstream, request)
                    if request.wants_close:
                        return
        except (_Closed, OSError, http.client.HTTPException, ValueError):
            return
        finally:
            upstream.close()
            with self._lock:
                self._clients.discard(client)
            client.close()

    def _answer(
        self, client: socket.socket, upstream: http.client.HTTPConnection, request: _Request
    ) -> None:
        with self._lock:
            self.requests += 1
        if not self._up.is_set():
            with self._lock:
                self.faults["hang"] += 1
            self._up.wait()
            if self._closing:
                raise _Closed
        before = self._pick(request, before=True)
        if before is not None:
            if before.kind == "drop":
                raise _Closed
            if before.kind == "status":
                body = b'{"error": {"code": "internal", "message": "injected by FaultProxy"}}'
                headers = [("content-type", "application/json")]
                _send(client, _Answer(before.code, "Injected", headers, body), request)
                return
            time.sleep(before.seconds)
        answer = _forward(upstream, request)
        after = self._pick(request, before=False, answer=answer)
        if after is not None and after.kind == "cut":
            _send(client, answer, request, limit=min(after.after, len(answer.body) - 1))
            raise _Closed
        if after is not None and after.kind == "corrupt":
            answer.body = self._flipped(answer.body, after.flips)
        _send(client, answer, request)

    def _pick(
        self, request: _Request, *, before: bool, answer: _Answer | None = None
    ) -> Fault | None:
        if answer is not None and not (200 <= answer.status < 300 and answer.body):
            return None
        with self._lock:
            for rule in self._rules:
                if (rule.kind in _BEFORE) != before:
                    continue
                if not rule.matches(request.method, request.path):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                self.faults[rule.kind] += 1
                return rule
        return None

    def _flipped(self, body: bytes, flips: int) -> bytes:
        damaged = bytearray(body)
        with self._lock:
            # Distinct places: flipping one byte twice would put it back.
            places = self._random.sample(range(len(damaged)), min(flips, len(damaged)))
        for place in places:
            damaged[place] ^= 0xFF
        return bytes(damaged)


def _read_request(incoming: BinaryIO) -> _Request | None:
    line = incoming.readline(65537)
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    message = http.client.parse_headers(incoming)
    headers = list(message.items())
    body: bytes | None = None
    if "chunked" in (message.get("Transfer-Encoding") or "").lower():
        pieces = []
        while size := int(incoming.readline().split(b";")[0], 16):
            pieces.append(incoming.read(size))
            incoming.readline()
        while incoming.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        body = b"".join(pieces)
    elif (length := message.get("Content-Length")) is not None:
        body = incoming.read(int(length))
    return _Request(method, target, version, headers, body)


def _forward(upstream: http.client.HTTPConnection, request: _Request) -> _Answer:
    headers = {k: v for k, v in request.headers if k.lower() not in _HOP_BY_HOP}
    try:
        upstream.request(request.method, request.target, body=request.body, headers=headers)
        response = upstream.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        # The registry is gone: the client sees its connection end, as it would directly.
        upstream.close()
        raise _Closed from exc
    answer_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
    if request.method == "HEAD" and (length := response.getheader("Content-Length")):
        answer_headers.append(("Content-Length", length))
    return _Answer(response.status, response.reason, answer_headers, body)


def _send(
    client: socket.socket, answer: _Answer, request: _Request, limit: int | None = None
) -> None:
    headers = list(answer.headers)
    if request.method != "HEAD":
        headers.append(("Content-Length", str(len(answer.body))))
    headers.append(("Connection", "close" if request.wants_close else "keep-alive"))
    head = f"HTTP/1.1 {answer.status} {answer.reason}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    body = answer.body if limit is None else answer.body[: max(limit, 0)]
    client.sendall(head.encode("latin-1") + body)
