"""A blocking TLS 1.3 client socket for tests of the manager (stdlib only).

The manager's certificate is self-signed: like the daemon, the client pins
its SHA-256 (the fingerprint= of token files) instead of validating a chain.
Built on ssl.SSLObject over a plain socket so that a test can half-close
(send close_notify, then a TCP FIN, and keep reading) the way the daemon
does: SSLSocket.unwrap() would wait for the peer's close_notify.

    s = TLSSocket.connect(("127.0.0.1", port), fingerprint="sha256:...")
    s.sendall(b"..."); s.recv(n); s.shutdown(socket.SHUT_WR); s.close()

Its methods mirror the socket methods the tests use, so a test can take a
plain socket or a TLSSocket alike.
"""
import hashlib
import socket
import ssl


class PinMismatch(Exception):
    pass


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below replaces chain validation
    return ctx


class TLSSocket:
    def __init__(self, sock, fingerprint, ctx=None, timeout=5.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (ctx or client_context()).wrap_bio(self.inc, self.out, server_side=False)
        self._io(self.obj.do_handshake)
        der = self.obj.getpeercert(binary_form=True)
        self.fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()
        if fingerprint is not None and self.fingerprint != fingerprint.lower():
            self.sock.close()
            raise PinMismatch("manager presented %s, expected %s" % (self.fingerprint, fingerprint))

    @classmethod
    def connect(cls, addr, fingerprint, timeout=5.0, ctx=None):
        return cls(socket.create_connection(addr, timeout=timeout), fingerprint, ctx, timeout)

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _io(self, fn, *args):
        """Runs an SSLObject call, moving records until it completes."""
        while True:
            try:
                r = fn(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    self.inc.write_eof()
                else:
                    self.inc.write(data)

    # ---- the socket API the tests use ----

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def fileno(self):
        return self.sock.fileno()

    def sendall(self, data):
        view = memoryview(data)
        while view:
            n = self.obj.write(view[:1 << 16])
            self._flush()
            view = view[n:]

    def send(self, data):
        self.sendall(data)
        return len(data)

    def recv(self, n):
        """Bytes, or b"" on close_notify.  A TCP EOF without close_notify is
        a truncation, never an EOF: ConnectionResetError, as for a RST."""
        try:
            return self._io(self.obj.read, n)
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLEOFError as e:
            raise ConnectionResetError("TLS: EOF without close_notify") from e

    def shutdown(self, how):
        """SHUT_WR: close_notify, then a FIN; reading goes on."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            try:
                self.obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass  # our close_notify is out; theirs may come later
            self._flush()
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()
