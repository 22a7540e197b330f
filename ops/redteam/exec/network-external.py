# check: (.stdout | test("SUCCEEDED") | not) and (.stdout | test("ifaces=lo\n"))
print("ifaces=" + ",".join(l.split(":")[0].strip() for l in open("/proc/self/net/dev").readlines()[2:]))
def conn(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect((host, port)); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + (errno.errorcode.get(e.errno, "") if e.errno else type(e).__name__)
probe("external_1.1.1.1", lambda: conn("1.1.1.1", 80))
probe("metadata_169.254.169.254", lambda: conn("169.254.169.254", 80))
probe("dns", lambda: socket.getaddrinfo("example.com", 80) and "SUCCEEDED")
