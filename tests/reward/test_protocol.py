"""The frame protocol between the engine and its sandbox processes, on real Unix socket pairs."""
import socket
import struct
import threading
import time

import pytest

from acecoder_rl.reward.sandbox import protocol


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()
    b.close()


def test_back_to_back_frames_come_out_one_by_one_in_order(pair):
    a, b = pair
    messages = [{"ok": True, "v": ["i", hex(k)]} for k in range(50)]
    for m in messages:
        protocol.send(a, m)
    reader = protocol.FrameReader(b)
    assert [reader.recv(time.monotonic() + 5) for _ in messages] == messages
    assert reader.buf == bytearray()  # nothing read past the last frame


def test_a_frame_trickling_in_byte_by_byte_is_assembled(pair):
    a, b = pair
    payload = b'{"ok":true,"v":["s","' + b"x" * 3000 + b'"]}'
    frame = struct.pack(">I", len(payload)) + payload

    def trickle():
        for k in range(len(frame)):
            a.send(frame[k:k + 1])

    sender = threading.Thread(target=trickle)
    sender.start()
    assert protocol.FrameReader(b).recv(time.monotonic() + 30) == {"ok": True, "v": ["s", "x" * 3000]}
    sender.join()


def test_large_frame_and_the_one_after_it(pair):
    a, b = pair
    big = {"v": ["s", "y" * 5_000_000]}
    sender = threading.Thread(target=lambda: (protocol.send(a, big), protocol.send(a, {"after": 1})))
    sender.start()
    reader = protocol.FrameReader(b)
    assert reader.recv(time.monotonic() + 30) == big
    assert reader.recv(time.monotonic() + 30) == {"after": 1}
    sender.join()


def test_partial_frame_then_silence_is_a_timeout(pair):
    a, b = pair
    a.sendall(struct.pack(">I", 100) + b'{"ok":')
    started = time.monotonic()
    with pytest.raises(protocol.ChannelTimeout):
        protocol.FrameReader(b).recv(time.monotonic() + 0.3)
    assert 0.25 < time.monotonic() - started < 5


def test_peer_closing_mid_frame_is_channel_closed(pair):
    a, b = pair
    a.sendall(struct.pack(">I", 100) + b'{"ok":')
    a.close()
    with pytest.raises(protocol.ChannelClosed):
        protocol.FrameReader(b).recv(time.monotonic() + 5)


def test_oversized_frame_is_refused_from_its_header(pair):
    a, b = pair
    a.sendall(struct.pack(">I", protocol.MAX_FRAME + 1))  # no body: refused before waiting for one
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.FrameReader(b).recv(time.monotonic() + 5)


@pytest.mark.parametrize("body", [b"not json", b"[" * (protocol.MAX_CONTAINERS + 1)])
def test_garbage_is_a_protocol_error(pair, body):
    a, b = pair
    sender = threading.Thread(target=lambda: a.sendall(struct.pack(">I", len(body)) + body))
    sender.start()
    with pytest.raises(protocol.ProtocolError):
        protocol.FrameReader(b).recv(time.monotonic() + 5)
    sender.join()


def test_unbuffered_recv_leaves_what_follows_the_frame(pair):
    """The zygote's control socket carries frames and file descriptors: ``recv`` must not read ahead."""
    a, b = pair
    protocol.send(a, {"exit": 0})
    a.sendall(b"12345678")
    assert protocol.recv(b, time.monotonic() + 5) == {"exit": 0}
    assert b.recv(8) == b"12345678"
