"""HTTP/1.1 over plain asyncio streams, so a test can send anything, malformed or not.

`Lane` keeps one keep-alive connection for well-formed requests and opens a fresh
one for each raw (possibly malformed) input; if the server has not answered that
within RAW_GRACE_S, it half-closes the connection, so the server sees the end of
the input instead of waiting for more.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

CLOSED = "closed"  # the server closed the connection without an answer
TIMEOUT = "timeout"  # no answer and no close within the timeout: a hang
RAW_GRACE_S = 0.25  # raw input: how long to wait for an answer before half-closing


@dataclass(frozen=True)
class Input:
    cls: str  # the input class, for the counts
    data: bytes  # the bytes on the wire
    raw: bool = False  # malformed framing: own connection, half-closed after writing
    head: bool = False  # a HEAD request: the answer has no body
    allowed: frozenset[int] | None = None  # None: any status below 500


def request(method: str, target: str, headers: list[tuple[str, str | bytes]],
            body: bytes = b"", content_length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    for name, value in headers:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes)
                                              else value.encode()))
    if content_length and body is not None:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Answer:
    status: str  # "200", "400", ... or CLOSED / TIMEOUT
    close: bool  # the server will close the connection after this answer


async def read_answer(reader: asyncio.StreamReader, head: bool) -> Answer:
    try:
        block = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return Answer(CLOSED, True)
    lines = block.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = parts[1] if len(parts) > 1 else "garbled"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    close = headers.get("connection", "").lower() == "close"
    if head or status in ("204", "304") or status.startswith("1"):
        return Answer(status, close)
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()  # until the server closes
        close = True
    return Answer(status, close)


class Lane:
    """One client 'connection slot': sends inputs one after another."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self._conn is not None:
            _, writer = self._conn
            self._conn = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, inp: Input) -> str:
        try:
            return await asyncio.wait_for(self._send(inp), self.timeout_s)
        except TimeoutError:
            await self.close()
            return TIMEOUT

    async def _send(self, inp: Input) -> str:
        if inp.raw:
            await self.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                with contextlib.suppress(OSError):
                    writer.write(inp.data)
                    await writer.drain()
                try:
                    # An answer to what was sent, before the server sees the end of input
                    # (on EOF aiohttp may drop the connection without answering).
                    return (await asyncio.wait_for(read_answer(reader, inp.head),
                                                   RAW_GRACE_S)).status
                except TimeoutError:
                    pass  # it waits for more input: end the input
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    return CLOSED
                with contextlib.suppress(OSError):
                    writer.write_eof()
                try:
                    return (await read_answer(reader, inp.head)).status
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    return CLOSED
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._conn
            wrote = True
            try:
                writer.write(inp.data)
                await writer.drain()
            except OSError:
                wrote = False  # the server may have answered early (413) and closed
            try:
                answer = await read_answer(reader, inp.head)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                answer = Answer(CLOSED, True)
            if answer.close or answer.status == CLOSED or not wrote or len(inp.data) > 65536:
                await self.close()
            if answer.status == CLOSED and reused and attempt == 1:
                continue  # a keep-alive connection the server had closed meanwhile
            return answer.status
        raise AssertionError("unreachable")
