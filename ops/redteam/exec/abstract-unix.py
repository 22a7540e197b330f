# check: (.stdout | test("SUCCEEDED") | not) and (.stdout | test("abstract: blocked ECONNREFUSED"))
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0@ABSTRACT@"); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + errno.errorcode.get(e.errno, str(e.errno))
probe("abstract", conn)
probe("netlink", lambda: socket.socket(16, socket.SOCK_RAW, 0) and "SUCCEEDED")
probe("packet", lambda: socket.socket(17, socket.SOCK_RAW, 0) and "SUCCEEDED")
