"""The remote worker's transport for the queue's hot routes (lease, report, heartbeat): one
keep-alive HTTP/1.1 connection per thread on a plain socket, JSON by orjson
(``templates.dumpb``/``loadb``), no client object per call. A round trip is one ``sendall``
of the request and the ``recv`` of its answer, with a few lines of Python around them: httpx
spent 0.6 ms per call on its request, response, header and URL objects, and even
``http.client`` spends half its time parsing the answer's headers with the ``email`` package.
The answers come from our own server (uvicorn): a status line, headers, a body sized by
``Content-Length`` (chunked bodies and bodies up to the end of the connection are read too).

A connection the server closed while it sat idle (its keep-alive timeout, a restart) is seen
before it is reused (the socket reads as ready, at end of file) and replaced. A request that
fails on a reused connection before any answer came is sent once more on a new connection
when the caller says repeating it is harmless (a report carries its ``report_id``; a heartbeat
without logs only extends a lease); otherwise, and when the server cannot be reached at all,
the error is :class:`noetl.client.ApiError` with ``status_code`` 0 (the pool retries)."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from noetl.client import ApiError, raise_for
from noetl.templates import dumpb, loadb

TIMEOUT = 30.0
MAX_HEAD = 65536  # bytes of a status line and headers


class Closed(ConnectionError):
    """The server closed the connection before a whole answer came."""


class _Conn:
    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()  # read past the last answer (nothing, with our server)

    def fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise Closed("the server closed the connection")
        self.buf += chunk

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise Closed("an over-long line in the answer")
            self.fill()
        out = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return out

    def answer(self) -> tuple[int, bytes, bool]:
        """(status, body, whether the server closes the connection after it)."""
        status, length, close, chunked = self._head()
        if chunked:
            chunks = bytearray()
            while (size := int(self.line().split(b";", 1)[0], 16)) > 0:
                chunks += self.take(size)
                self.take(2)
            while self.line():  # trailers, up to the empty line
                pass
            return status, bytes(chunks), close
        if length is not None:
            return status, self.take(length), close
        try:  # no length: the body runs to the end of the connection
            while True:
                self.fill()
        except Closed:
            pass
        body, self.buf = bytes(self.buf), bytearray()
        return status, body, True

    def _head(self) -> tuple[int, int | None, bool, bool]:
        """The status line and headers: (status, Content-Length, close, chunked)."""
        while True:
            while (i := self.buf.find(b"\r\n\r\n")) < 0:
                if len(self.buf) > MAX_HEAD:
                    raise Closed("over-long answer headers")
                self.fill()
            lines = bytes(self.buf[:i]).split(b"\r\n")
            del self.buf[:i + 4]
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise Closed(f"not an HTTP answer: {lines[0][:80]!r}")
            if int(parts[1]) >= 200:
                break  # 1xx (never sent to us: we send no Expect) is skipped
        length: int | None = None
        close = parts[0] == b"HTTP/1.0"
        chunked = False
        for raw in lines[1:]:
            name, _, value = raw.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = b"close" in value.lower()
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        return int(parts[1]), length, close, chunked


class LeanHttp:
    """POST JSON to one server, one persistent connection per calling thread."""

    def __init__(self, server_url: str, token: str | None = None, timeout: float = TIMEOUT):
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"server URL {server_url!r}: http:// or https:// expected")
        self.server_url = server_url.rstrip("/")
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.base = parts.path.rstrip("/")
        self.timeout = timeout
        headers = [f"Host: {parts.netloc}", "Content-Type: application/json",
                   "Accept: application/json"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        self._head = ("\r\n".join(headers) + "\r\nContent-Length: ").encode("latin-1")
        self._local = threading.local()
        self._all: list[_Conn] = []
        self._lock = threading.Lock()
        self.connects = 0  # connections opened (for tests)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.sock.close()

    def _connect(self) -> _Conn:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        conn = _Conn(sock)
        self.connects += 1
        with self._lock:
            self._all.append(conn)
        self._local.conn = conn
        return conn

    def _drop(self, conn: _Conn) -> None:
        conn.sock.close()
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def _reusable(self) -> _Conn | None:
        """This thread's connection, unless the server closed it meanwhile (readable while
        idle: end of file, or bytes nobody asked for)."""
        conn: _Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            return None
        try:
            ready, _, _ = select.select([conn.sock], [], [], 0)
        except (OSError, ValueError):
            ready = [conn.sock]
        if ready or conn.buf:
            self._drop(conn)
            return None
        return conn

    def post(self, path: str, body: Any, timeout: float | None = None,
             repeatable: bool = False) -> Any:
        """POST ``body`` as JSON to ``path``; the decoded answer, or the engine error an
        error status stands for (:func:`noetl.client.raise_for`)."""
        data = dumpb(body)
        request = b"".join((b"POST ", (self.base + path).encode(), b" HTTP/1.1\r\n",
                            self._head, str(len(data)).encode(), b"\r\n\r\n", data))
        conn = self._reusable()
        reused = conn is not None
        for attempt in (0, 1):
            answered = False
            try:
                if conn is None:
                    conn = self._connect()
                conn.sock.settimeout(timeout or self.timeout)
                conn.sock.sendall(request)
                conn.fill()  # the first bytes of the answer
                answered = True
                status, content, close = conn.answer()
            except (Closed, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError) as exc:
                if conn is not None:
                    self._drop(conn)
                conn = None
                if reused and repeatable and attempt == 0 and not answered:
                    reused = False  # the server closed it under us: once more, afresh
                    continue
                raise self._unreachable(exc) from exc
            except (OSError, ValueError) as exc:  # refused, timed out, a garbled answer
                if conn is not None:
                    self._drop(conn)
                raise self._unreachable(exc) from exc
            if close:
                self._drop(conn)
            if status >= 400:
                raise_for(status, content, self.server_url + path)
            return loadb(content) if content else None
        raise AssertionError("unreachable")

    def _unreachable(self, exc: BaseException) -> ApiError:
        return ApiError(f"cannot reach the NoETL server at {self.server_url}: "
                        f"{type(exc).__name__}: {exc}")
