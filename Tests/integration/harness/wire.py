"""Raw frames on a Unix socket, for tests that speak as a client the shims
are not: an unprivileged process, or a directory client."""
import socket
import struct
import subprocess

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

_CLIENT = (
    "import socket,struct,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(bytes.fromhex(sys.argv[2]))\n"
    "n=struct.unpack('>I', s.recv(4, socket.MSG_WAITALL))[0]; sys.stdout.write(s.recv(n, socket.MSG_WAITALL).hex())\n")


def frame(msg_type, *fields):
    """A wire-protocol frame (docs/protocol.md) with string fields."""
    body = bytes([1, msg_type])
    for f in fields:
        b = f.encode()
        body += struct.pack(">H", len(b)) + b
    return struct.pack(">I", len(body)) + body


def exchange(socket_path, data: bytes) -> bytes:
    """Sends `data` (a whole frame) and returns the body of the one reply frame."""
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(socket_path))
        c.sendall(data)
        n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
        return c.recv(n, socket.MSG_WAITALL)


def as_nobody(socket_path, data: bytes) -> bytes:
    """`exchange`, from a process running as uid 65534."""
    out = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", _CLIENT, str(socket_path), data.hex()],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return bytes.fromhex(out.stdout)
