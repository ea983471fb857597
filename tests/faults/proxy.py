"""A TCP proxy in front of a real server that can fail on demand, for outage tests.

Modes (each for a while, then `heal()`):
- ``cut``: every open connection is reset (RST), and so is every new one until healed;
- ``refuse``: the listening socket is closed (connections are refused) and open ones are reset;
- ``blackhole``: nothing flows in either direction and new connections are accepted but never
  answered, like a network partition; when healed, held bytes flow again (a client that gave up
  meanwhile has closed its end, which then propagates).

It runs its own asyncio loop in a daemon thread, so the test's code stays synchronous.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from contextlib import contextmanager

PASS, CUT, REFUSE, BLACKHOLE = "pass", "cut", "refuse", "blackhole"
_CHUNK = 64 * 1024


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.mode = PASS
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # --- control, from the test's thread -----------------------------------------------------

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def fail(self, mode: str) -> None:
        assert mode in (CUT, REFUSE, BLACKHOLE), mode
        self._call(self._set_mode(mode))

    def heal(self) -> None:
        self._call(self._set_mode(PASS))

    @contextmanager
    def failing(self, mode: str):
        self.fail(mode)
        try:
            yield self
        finally:
            self.heal()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # --- inside the loop ---------------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shut(self) -> None:
        await self._set_mode(REFUSE)
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _set_mode(self, mode: str) -> None:
        previous, self.mode = self.mode, mode
        if mode in (CUT, REFUSE):
            for writer in list(self._writers):
                _reset(writer)
        if mode == REFUSE and self._server is not None:
            self._server.close()
            self._server = None
        if mode == BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()
        if previous == REFUSE and mode != REFUSE:
            await self._listen()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode == CUT:
            _reset(client_writer)
            return
        self._writers.add(client_writer)
        upstream_writer = None
        try:
            await self._flowing.wait()  # black-holed: accepted, never answered
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
            )
        except (ConnectionError, OSError, asyncio.CancelledError):  # cancelled: the proxy stops
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # bytes read just before a black-hole are held too
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()  # one side closed: close the other, so neither waits on a dead peer


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
