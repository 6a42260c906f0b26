"""A TCP peer that resets: run in a pod.  usage: rstpeer.py PORT OUTFILE
First connection: sends b"hi" then closes with a RST (SO_LINGER 0).
Second connection: reads until the client's reset and writes what it saw
("reset" or "eof") to OUTFILE.  Exits after 30 s at most."""
import socket
import struct
import sys

port, out = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(8)
ls.settimeout(30)
c, _ = ls.accept()
c.sendall(b"hi")
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
c, _ = ls.accept()
c.settimeout(20)
seen = "timeout"
try:
    while True:
        if not c.recv(65536):
            seen = "eof"
            break
except ConnectionResetError:
    seen = "reset"
except socket.timeout:
    pass
open(out, "w").write(seen)
