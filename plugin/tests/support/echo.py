#!/usr/bin/env python3
"""Request/response over TCP and UDP for the tests: which server answered, and
which source address it saw (masqueraded or not).

  echo.py serve NAME PORT...          answer on every PORT, TCP and UDP, with "NAME <peer ip>"
  echo.py ask tcp|udp HOST PORT SECS  print the answer; exit 1 without one within SECS

`ask` retries until SECS have passed (a refused connection, an unanswered or
refused datagram), so it also waits for a server that is still starting.
"""

import socket
import sys
import threading
import time


def serve_tcp(name, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(4096)
                conn.sendall(("%s %s\n" % (name, peer[0])).encode())
            except OSError:
                pass


def serve_udp(name, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", port))
    while True:
        _, peer = srv.recvfrom(4096)
        srv.sendto(("%s %s\n" % (name, peer[0])).encode(), peer)


def serve(name, ports):
    for port in ports:
        for fn in (serve_tcp, serve_udp):
            threading.Thread(target=fn, args=(name, port), daemon=True).start()
    while True:
        time.sleep(3600)


def ask_once(proto, host, port, timeout):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(b"query\n")
        return s.recv(4096).decode().strip()


def ask(proto, host, port, secs):
    deadline = time.monotonic() + secs
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            answer = ask_once(proto, host, port, min(0.5, max(0.05, deadline - time.monotonic())))
            if answer:
                print(answer)
                return 0
            last = "empty answer"
        except OSError as e:
            last = repr(e)
            time.sleep(0.05)
    print("no answer from %s %s:%d within %ss (last: %s)" % (proto, host, port, secs, last))
    return 1


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2], [int(p) for p in sys.argv[3:]])
    elif sys.argv[1] == "ask":
        sys.exit(ask(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
