"""Length-prefixed JSON frames over a Unix stream socket.

Used on both sides of the sandbox boundary (the package imports it; the sandbox scripts import it as a
top-level module), so it only uses the standard library. Every untrusted child gets its own fresh socket,
so a child that writes garbage can only spoil its own answers, never desynchronise another program's.
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import time

_HEADER = struct.Struct(">I")
MAX_FRAME = 24 * 1024 * 1024
# json.loads of a frame full of tiny containers costs ~80 bytes of parent memory per byte of input; honest
# answers hold at most values.MAX_NODES containers, so anything with far more is refused before parsing.
MAX_CONTAINERS = 500_000


class ChannelClosed(Exception):
    """The peer closed the socket (or died) before a whole frame arrived."""


class ChannelTimeout(Exception):
    """No whole frame arrived before the deadline."""


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def send(sock: socket.socket, message: object) -> None:
    sock.sendall(encode(message))


# One encoder for every frame: json.dumps with options builds a new JSONEncoder per call (a few µs each, on
# every message of every program).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_DECODE = json.JSONDecoder().decode


def encode(message: object) -> bytes:
    """One frame's bytes (header and body), for a caller that writes several frames at once."""
    data = _ENCODE(message).encode("utf-8", "surrogatepass")
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(data)) + data


def send_with_fds(sock: socket.socket, message: object, fds: list[int]) -> None:
    """``send``, with file descriptors riding on the frame's first bytes (SCM_RIGHTS)."""
    data = encode(message)
    sent = socket.send_fds(sock, [data], fds)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_with_fds(sock: socket.socket, deadline: float | None = None) -> tuple[object, list[int]]:
    """``recv`` of a frame sent by :func:`send_with_fds`: the message and the descriptor it carried (one at
    most: every such frame carries one socket)."""
    if deadline is not None and not _wait_readable(sock, deadline):
        raise ChannelTimeout()
    try:
        head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 1)
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None
    if not head:
        raise ChannelClosed("peer closed the connection")
    try:
        if len(head) < _HEADER.size:
            head += _recv_exact(sock, _HEADER.size - len(head), deadline)
        return _decode(_recv_exact(sock, _body_size(head), deadline)), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def recv(sock: socket.socket, deadline: float | None = None) -> object:
    """Read one frame; ``deadline`` is a ``time.monotonic()`` value (None waits forever).

    Reads exactly the frame and nothing after it: safe on a socket that also carries other messages
    (file descriptors). See :class:`FrameReader` for sockets that carry frames only."""
    size = _body_size(_recv_exact(sock, _HEADER.size, deadline))
    return _decode(_recv_exact(sock, size, deadline))


class FrameReader:
    """Buffered frame reading for a socket that carries nothing but frames (a program's child).

    A child answers a batch of probes with several frames in a row; reading whatever has arrived in one
    ``recv`` and keeping the rest costs one system call (and one poll) per burst instead of two per frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.poller = select.poll()  # poll, not select: trainer processes often hold fds > 1024
        self.poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)

    def recv(self, deadline: float | None = None) -> object:
        """The next frame (same contract as :func:`recv`)."""
        buf = self.buf
        while True:
            if len(buf) >= _HEADER.size:
                need = _HEADER.size + _body_size(buf)
                if len(buf) >= need:
                    with memoryview(buf) as view:  # one copy of the body, not two
                        body = bytes(view[_HEADER.size:need])
                    del buf[:need]
                    return _decode(body)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.poller.poll(remaining * 1000.0):
                    raise ChannelTimeout()
            try:
                # A fixed size: recv(n) allocates n bytes up front, and a child trickling a 24 MB frame
                # byte by byte must not make the parent allocate 24 MB per byte.
                chunk = self.sock.recv(_CHUNK)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("peer closed the connection")
            buf += chunk


_CHUNK = 64 * 1024


def _body_size(header: bytes | bytearray) -> int:
    """The body length a frame's header announces (refused before waiting for a body that large)."""
    (size,) = _HEADER.unpack_from(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    return size


def _decode(body: bytes) -> object:
    if body.count(b"[") + body.count(b"{") > MAX_CONTAINERS:
        raise ProtocolError(f"frame with more than {MAX_CONTAINERS} containers")
    try:
        return _DECODE(body.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None and not _wait_readable(sock, deadline):
            raise ChannelTimeout()
        try:
            k = sock.recv_into(view[got:], n - got)
        except (ConnectionResetError, BrokenPipeError, OSError) as exc:
            raise ChannelClosed(str(exc)) from None
        if k == 0:
            raise ChannelClosed("peer closed the connection")
        got += k
    return bytes(buf)


def _wait_readable(sock: socket.socket, deadline: float) -> bool:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    poller = select.poll()  # poll, not select: trainer processes often hold fds > 1024
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(remaining * 1000.0))
