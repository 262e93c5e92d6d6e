"""A recording TCP relay for the real-client checks: a client library talks
to the server through it, and the check then reads what the library really
sent (which protocol, which commands). Standard library only, so it works
with Debian's python3 and with pip's.

    tap = WireTap(("127.0.0.1", 11211))   # listens on 127.0.0.1, a port the kernel picks
    client = SomeClient("127.0.0.1:%d" % tap.port)
    ...
    tap.sent()      # one bytes object per accepted connection, client -> server
    tap.close()     # ends the relay process; call it (try/finally)

binary_opcodes() and meta_commands() parse what was sent as the binary
protocol and as meta commands; each raises ValueError on anything else.
"""

import os
import shutil
import signal
import socket
import struct
import tempfile
import threading


class WireTap:
    """The relay runs in a forked child process: a client library that holds
    the GIL while it waits for a reply (pylibmc does) would otherwise stall
    a relay thread in the same process. The child writes what each
    connection sent to a file of its own (conn-N, N from 0 in accept order)
    before forwarding it, so what a client got a reply to is on file."""

    def __init__(self, upstream, timeout=10.0):
        self.dir = tempfile.mkdtemp(prefix="wiretap.")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.pid = os.fork()
        if self.pid == 0:
            try:
                _serve(listener, upstream, timeout, self.dir)
            finally:
                os._exit(0)
        listener.close()

    def sent(self):
        """What each connection sent so far, in accept order."""
        names = sorted((int(n[5:]), n) for n in os.listdir(self.dir) if n.startswith("conn-"))
        out = []
        for _, n in names:
            with open(os.path.join(self.dir, n), "rb") as f:
                out.append(f.read())
        return out

    def close(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0
            shutil.rmtree(self.dir, ignore_errors=True)


def _serve(listener, upstream, timeout, directory):
    parent = os.getppid()

    def orphan_watch():
        # ends the relay when the process that started it is gone
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(0)

    threading.Thread(target=orphan_watch, daemon=True).start()
    n = 0
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(upstream, timeout=timeout)
        except OSError:
            client.close()
            continue
        for s in (client, server):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        record = open(os.path.join(directory, "conn-%d" % n), "wb", buffering=0)
        n += 1
        threading.Thread(target=_pump, args=(client, server, record), daemon=True).start()
        threading.Thread(target=_pump, args=(server, client, None), daemon=True).start()


def _pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.write(data)
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


BINARY_OPCODES = {
    0x00: "get", 0x01: "set", 0x02: "add", 0x03: "replace", 0x04: "delete",
    0x05: "increment", 0x06: "decrement", 0x07: "quit", 0x08: "flush",
    0x09: "getq", 0x0A: "noop", 0x0B: "version", 0x0C: "getk", 0x0D: "getkq",
    0x0E: "append", 0x0F: "prepend", 0x10: "stat", 0x11: "setq", 0x12: "addq",
    0x13: "replaceq", 0x14: "deleteq", 0x15: "incrementq", 0x16: "decrementq",
    0x17: "quitq", 0x18: "flushq", 0x19: "appendq", 0x1A: "prependq",
    0x1B: "verbosity", 0x1C: "touch", 0x1D: "gat", 0x1E: "gatq",
    0x23: "gatk", 0x24: "gatkq",
}


def binary_opcodes(stream):
    """The opcode names of the binary requests in one connection's stream;
    ValueError if a request does not start with the request magic 0x80."""
    names = []
    i = 0
    while i < len(stream):
        if len(stream) - i < 24:
            raise ValueError("%d stray bytes at offset %d: %r" % (len(stream) - i, i, stream[i:i + 24]))
        magic, opcode = stream[i], stream[i + 1]
        if magic != 0x80:
            raise ValueError("not a binary request at offset %d: %r" % (i, stream[i:i + 24]))
        (body,) = struct.unpack_from(">I", stream, i + 8)
        names.append(BINARY_OPCODES.get(opcode, "0x%02x" % opcode))
        i += 24 + body
    return names


META_COMMANDS = ("mg", "ms", "md", "ma", "mn", "me")


def meta_commands(stream):
    """The command names of one connection's stream; ValueError on a line
    that is not a meta command. An ms line's data block is skipped (its
    length is the token after the key)."""
    names = []
    i = 0
    while i < len(stream):
        end = stream.find(b"\r\n", i)
        if end < 0:
            raise ValueError("unterminated line at offset %d: %r" % (i, stream[i:i + 60]))
        tokens = stream[i:end].split()
        name = tokens[0].decode("latin-1") if tokens else ""
        if name not in META_COMMANDS:
            raise ValueError("not a meta command at offset %d: %r" % (i, stream[i:end][:60]))
        names.append(name)
        i = end + 2
        if name == "ms":
            i += int(tokens[2]) + 2
    return names
