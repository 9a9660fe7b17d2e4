"""bpkit/grading/channel.py over plain pipes (no kernel, no sandbox): deadlines, nonces, size bounds."""

from __future__ import annotations

import contextlib
import json
import os
import time
from types import SimpleNamespace

import pytest

from bpkit.grading.channel import (
    HEADER,
    MAX_REPLY_BYTES,
    Channel,
    ChannelClosed,
    ChannelTimeout,
    ReplyTooLarge,
)


@pytest.fixture
def pipes():
    """A Channel on two pipes, as the runner's stdin and stdout; the test holds the runner's ends."""
    request_read, request_write = os.pipe()  # grader -> runner
    reply_read, reply_write = os.pipe()  # runner -> grader
    process = SimpleNamespace(stdin=open(request_write, "wb"), stdout=open(reply_read, "rb"))  # noqa: SIM115
    ends = SimpleNamespace(
        channel=Channel(process), process=process, request_read=request_read, reply_write=reply_write
    )
    yield ends
    for handle in (process.stdin, process.stdout):
        handle.close()
    for fd in (request_read, reply_write):
        with contextlib.suppress(OSError):  # closed by the test itself
            os.close(fd)


def frame(message) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
    return HEADER.pack(len(body)) + body


def test_send_gives_up_at_its_deadline_when_no_one_reads(pipes):
    """Issue 20: a kernel that stops reading blocked Channel.send forever on a message over 64 KiB."""
    message = {"op": "cell", "source": "#" + "x" * 300_000}  # more than a pipe holds (64 KiB)
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        pipes.channel.send(message, time.monotonic() + 0.5)
    assert 0.4 < time.monotonic() - started < 3.0


def test_a_message_that_fits_is_sent_whole_with_a_fresh_nonce(pipes):
    first = pipes.channel.send({"op": "cell", "source": "pass"}, time.monotonic() + 5)
    second = pipes.channel.send({"op": "cell", "source": "pass"}, time.monotonic() + 5)
    assert first != second and len(first) == 32
    data = os.read(pipes.request_read, 1 << 16)
    (size,) = HEADER.unpack(data[: HEADER.size])
    assert json.loads(data[HEADER.size : HEADER.size + size]) == {"op": "cell", "source": "pass", "nonce": first}


def test_receive_drops_frames_with_another_nonce_and_garbage(pipes):
    os.write(
        pipes.reply_write,
        frame({"nonce": "forged", "observations": ["pre-filled"]})
        + frame(b"\xff not json")
        + frame([1, 2])
        + frame({"nonce": "right", "error": None})
        + frame({"nonce": "next", "error": None}),
    )
    assert pipes.channel.receive("right", time.monotonic() + 5) == {"nonce": "right", "error": None}
    assert pipes.channel.receive("next", time.monotonic() + 5) == {"nonce": "next", "error": None}  # kept


def test_no_reply_before_the_deadline_is_a_timeout(pipes):
    os.write(pipes.reply_write, frame({"nonce": "other"}))
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        pipes.channel.receive("right", time.monotonic() + 0.3)
    assert time.monotonic() - started < 2.0


def test_a_reply_announced_over_the_limit_is_refused_before_it_is_read(pipes):
    # Only the header is written: reading the body would wait for the deadline (a timeout, not a refusal).
    os.write(pipes.reply_write, HEADER.pack(MAX_REPLY_BYTES + 1))
    started = time.monotonic()
    with pytest.raises(ReplyTooLarge, match=str(MAX_REPLY_BYTES + 1)):
        pipes.channel.receive("right", time.monotonic() + 10)
    assert time.monotonic() - started < 2.0


def test_a_reply_of_exactly_the_limit_is_not_refused_by_its_header(pipes):
    os.write(pipes.reply_write, HEADER.pack(MAX_REPLY_BYTES))  # allowed: the body is then awaited
    with pytest.raises(ChannelTimeout):
        pipes.channel.receive("right", time.monotonic() + 0.3)


def test_a_closed_reply_pipe_is_channel_closed(pipes):
    os.write(pipes.reply_write, HEADER.pack(100) + b"{")  # half a frame, then the runner is gone
    os.close(pipes.reply_write)
    with pytest.raises(ChannelClosed):
        pipes.channel.receive("right", time.monotonic() + 5)


def test_a_closed_request_pipe_is_channel_closed(pipes):
    os.close(pipes.request_read)
    with pytest.raises(ChannelClosed):
        pipes.channel.send({"op": "cell", "source": "pass"}, time.monotonic() + 5)
