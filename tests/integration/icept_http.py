#!/usr/bin/python3
"""HTTP/1.1 ends for the intercept tests, run inside lab namespaces.

    icept_http.py serve PORT NAME LOG
        A keep-alive server on 127.0.0.1:PORT: every request is answered
        "NAME METHOD PATH BODYLEN\n" (bodies fixed or chunked are read
        whole) and appended to LOG as that line.  SIGTERM stops it.

    icept_http.py client URL PLAN
        PLAN is JSON: a list of connections, each a list of requests
        {"path", "headers": {...}, "body": null | "fixed" | "chunked",
        "size": N}.  Each connection is one keep-alive connection; the
        answers' bodies are printed as one JSON list of lists, in order.
        A request that gets no answer is recorded as "ERROR: why".
"""
import http.client
import json
import socketserver
import sys
import time
import urllib.parse


def read_chunked(rfile):
    n = 0
    while True:
        line = rfile.readline(1024)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return n
        n += len(rfile.read(size))
        rfile.readline(16)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                h = self.rfile.readline(65536)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, v = h.decode("latin-1").split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                n = read_chunked(self.rfile)
            else:
                n = len(self.rfile.read(int(headers.get("content-length", "0"))))
            answer = "%s %s %s %d" % (self.server.name, method, urllib.parse.urlsplit(target).path, n)
            with open(self.server.log, "a") as f:
                f.write(answer + "\n")
            body = (answer + "\n").encode()
            close = headers.get("connection", "").lower() == "close"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                             % (len(body), b"Connection: close\r\n" if close else b"") + body)
            self.wfile.flush()
            if close:
                return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port, name, log):
    srv = Server(("127.0.0.1", int(port)), Handler)
    srv.name, srv.log = name, log
    open(log, "w").close()
    srv.serve_forever()


def chunks(size):
    left = size
    while left > 0:
        n = min(left, 1000)
        left -= n
        yield b"x" * n


def client(url, plan):
    u = urllib.parse.urlsplit(url)
    out = []
    for conn_plan in json.loads(plan):
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
        got = []
        for req in conn_plan:
            body, hdrs = None, dict(req.get("headers", {}))
            kind, size = req.get("body"), req.get("size", 0)
            try:
                if kind == "fixed":
                    conn.request("POST", req["path"], body=b"y" * size, headers=hdrs)
                elif kind == "chunked":
                    conn.request("POST", req["path"], body=chunks(size), headers=hdrs, encode_chunked=True)
                else:
                    conn.request("GET", req["path"], headers=hdrs)
                r = conn.getresponse()
                got.append(r.read().decode("latin-1").strip())
            except Exception as e:  # the tests count these
                got.append("ERROR: %s" % e)
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
        conn.close()
        out.append(got)
    print(json.dumps(out))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
