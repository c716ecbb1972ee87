"""A scripted MidChains FIX gateway on 127.0.0.1 for link and adapter tests: frames built and read
with simplefix directly (not adapters.midchains.codec), every inbound frame recorded with its
arrival time, and the document's gateway behaviour where a test needs it: Logon answered, queued
messages delivered right after a logon (001, Logout (5)), TestRequests echoed, Logouts confirmed,
a dropped connection on demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
import simplefix

from support.midchains_fix import GATEWAY, Gateway

#: what a handler returns: frames to send, each ``(msg_type, fields)``
Reply = list[tuple[str, list[tuple[int, str]]]]


@dataclass
class Arrival:
    """One frame the gateway read: when (wall ns), its type and fields (text)."""

    ns: int
    msg_type: str
    fields: dict[int, str] = field(default_factory=dict)


class ScriptedGateway:
    """Serve one client at a time. ``queued`` is sent after the next logon (then cleared);
    ``on_application(fields)`` answers each application message the client sends."""

    def __init__(self, on_application: Callable[[dict[int, str]], Reply] | None = None) -> None:
        self.numbering = Gateway(seq=1)
        self.on_application = on_application
        self.queued: Reply = []
        self.skipped: list[tuple[int, int]] = []  # numbers taken and never sent, answered by a GapFill
        self.arrivals: list[Arrival] = []
        self.logons = 0
        self.answer_test_requests = True
        self.port = 0
        self._stream: anyio.abc.ByteStream | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._scope = anyio.CancelScope()
        self._logged_on = anyio.Event()

    async def start(self, tasks: anyio.abc.TaskGroup) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self._listener = listener
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        self._scope = anyio.CancelScope()
        tasks.start_soon(self._listen, listener)

    async def _listen(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        with self._scope:
            await listener.serve(self._serve)

    async def stop(self) -> None:
        await self.drop()
        self._scope.cancel()

    async def drop(self) -> None:
        """Close the current connection without a Logout (a network fault)."""
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        if self._stream is None:
            raise ConnectionError("no client connected")
        await self._stream.send(self.numbering.frame(msg_type, *fields))

    def skip(self, count: int) -> None:
        """Take ``count`` numbers and never send them: the client sees a gap, and its ResendRequest
        is answered with a SequenceReset-GapFill over them (what a gateway does for messages it
        deems stale)."""
        first = self.numbering.seq
        self.numbering.seq += count
        self.skipped.append((first, first + count - 1))

    def received(self, msg_type: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.msg_type == msg_type]

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        self._stream = stream
        parser = simplefix.FixParser()
        try:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                parser.append_buffer(data)
                while (message := parser.get_message()) is not None:
                    fields = {int(tag): value.decode() for tag, value in message.pairs}
                    arrival = Arrival(time.time_ns(), fields.get(35, ""), fields)
                    self.arrivals.append(arrival)
                    await self._answer(arrival)
        finally:
            if self._stream is stream:
                self._stream = None
            await stream.aclose()

    async def _answer(self, arrival: Arrival) -> None:
        kind = arrival.msg_type
        if kind == "A":
            self.logons += 1
            await self.send("A", [(98, "0"), (108, arrival.fields.get(108, "60"))])
            queued, self.queued = self.queued, []
            for msg_type, fields in queued:
                await self.send(msg_type, fields)
        elif kind == "1" and self.answer_test_requests:
            await self.send("0", [(112, arrival.fields.get(112, ""))])
        elif kind == "5":
            await self.send("5", [])
            await self.drop()
        elif kind == "2":
            begin = int(arrival.fields.get(7, "1"))
            gap = next(((first, last) for first, last in self.skipped if first <= begin <= last), None)
            if gap is not None and self._stream is not None:
                frame = self.numbering.frame("4", (123, "Y"), (36, str(gap[1] + 1)), seq=begin,
                                             header=[(43, "Y"), (122, self.numbering.sending_time)])
                await self._stream.send(frame)
            else:
                # SequenceReset-Reset: "expect my next number", whatever was lost (no replay kept)
                await self.send("4", [(36, str(self.numbering.seq + 1))])
        elif kind not in ("0", "3", "4") and self.on_application is not None:
            for msg_type, fields in self.on_application(arrival.fields):
                await self.send(msg_type, fields)


__all__ = ["GATEWAY", "Arrival", "Reply", "ScriptedGateway"]
