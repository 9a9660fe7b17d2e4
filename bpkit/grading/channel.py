"""The grader's end of the runner's pipes: framed requests, and replies read with a size bound.

Every reply must carry the nonce of the request it answers. Anything else the student's code wrote
on the pipe (frames written early to pre-fill answers, or garbage) is read and dropped, never
trusted; a reply announcing more than MAX_REPLY_BYTES is refused before it is read, so the grader's
memory stays bounded whatever the kernel sends.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import struct
import time

HEADER = struct.Struct(">Q")
MAX_REPLY_BYTES = 16 * 2**20
MAX_DROPPED_FRAMES = 10_000


class ChannelClosed(Exception):
    """The runner is gone (it exited, crashed or was killed)."""


class ChannelTimeout(Exception):
    """No reply before the deadline."""


class ReplyTooLarge(Exception):
    """The kernel announced a reply over MAX_REPLY_BYTES."""


class Channel:
    def __init__(self, process):
        self.process = process
        self._out = process.stdout.fileno()
        self._buffer = b""

    def send(self, message: dict, deadline: float) -> str:
        """Send a request with a fresh nonce before `deadline` (time.monotonic()); returns the nonce.

        The pipe holds 64 KiB: a kernel that stops reading must not block the grader, so the request
        goes out in non-blocking writes, each waiting at most until the deadline (ChannelTimeout)."""
        nonce = secrets.token_hex(16)
        body = json.dumps({**message, "nonce": nonce}).encode("utf-8")
        data = memoryview(HEADER.pack(len(body)) + body)
        try:
            fd = self.process.stdin.fileno()
            os.set_blocking(fd, False)
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout()
                _, ready, _ = select.select([], [fd], [], min(left, 0.5))
                if ready:
                    try:
                        data = data[os.write(fd, data[: 1 << 16]) :]
                    except BlockingIOError:
                        continue
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise ChannelClosed(str(exc)) from None
        return nonce

    def receive(self, nonce: str, deadline: float) -> dict:
        """The first reply that carries `nonce`; other frames are dropped."""
        for _ in range(MAX_DROPPED_FRAMES):
            frame = self._frame(deadline)
            if isinstance(frame, dict) and frame.get("nonce") == nonce:
                return frame
        raise ChannelClosed("the kernel flooded the channel with unrequested messages")

    def _fill(self, n: int, deadline: float) -> None:
        while len(self._buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            ready, _, _ = select.select([self._out], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(self._out, min(1 << 20, n - len(self._buffer)))
            if not chunk:
                raise ChannelClosed("the kernel's channel closed")
            self._buffer += chunk

    def _frame(self, deadline: float):
        self._fill(HEADER.size, deadline)
        (size,) = HEADER.unpack(self._buffer[: HEADER.size])
        if size > MAX_REPLY_BYTES:
            raise ReplyTooLarge(f"{size} bytes")
        self._fill(HEADER.size + size, deadline)
        data, self._buffer = self._buffer[HEADER.size : HEADER.size + size], self._buffer[HEADER.size + size :]
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
