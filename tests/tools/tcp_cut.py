#!/usr/bin/env python3
"""tcp_cut.py -- a TCP proxy that loses the answer to chosen requests, for failure tests.

    tcp_cut.py PORT_FILE UPSTREAM_PORT MARKER CONTROL_FILE

Listens on a free loopback port (written to PORT_FILE once listening) and forwards every
connection to 127.0.0.1:UPSTREAM_PORT. While CONTROL_FILE exists, a client chunk containing
MARKER is forwarded, the server's answer to it is read and thrown away, and the client's
connection is closed: the server acted, the client never learns it. That is the fault a
network drop or a server restart causes between "the command ran" and "the reply arrived",
and the one a client's resend must survive. CONTROL_FILE holding "once" is removed after the
first cut; anything else cuts until the test removes the file. Every cut appends a line to
CONTROL_FILE.cuts.

Used by tests/integration/test_gateway_resubmit.sh between phx-ingress and Redis.
"""
import os
import socket
import sys
import threading


def cut_wanted(control):
    try:
        with open(control) as f:
            mode = f.read().strip()
    except FileNotFoundError:
        return False
    if mode == "once":
        try:
            os.unlink(control)
        except FileNotFoundError:
            return False  # another connection took the one cut
    return True


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def serve(client, upstream_port, marker, control):
    try:
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        client.close()
        return

    cutting = threading.Event()
    answered = threading.Event()

    def down():  # server -> client
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if cutting.is_set():
                    answered.set()  # the server acted; its answer goes nowhere
                    continue
                client.sendall(data)
        except OSError:
            pass
        close(client, upstream)

    threading.Thread(target=down, daemon=True).start()
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            if marker in data and cut_wanted(control):
                # Let the server act on the request and answer (the answer is swallowed),
                # and only then drop the client: its resend must find the work done.
                cutting.set()
                upstream.sendall(data)
                answered.wait(5)
                with open(control + ".cuts", "a") as f:
                    f.write("cut\n")
                break
            upstream.sendall(data)
    except OSError:
        pass
    close(client, upstream)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: tcp_cut.py PORT_FILE UPSTREAM_PORT MARKER CONTROL_FILE")
    port_file, upstream_port, marker, control = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, upstream_port, marker.encode(), control),
                         daemon=True).start()


if __name__ == "__main__":
    main()
