# check: (.stdout | test("SUCCEEDED") | not) and (.stdout | test("redis: blocked ECONNREFUSED")) and (.stdout | test("kafka: blocked ECONNREFUSED"))
def conn(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port)); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + errno.errorcode.get(e.errno, str(e.errno))
probe("redis", lambda: conn(@REDIS_PORT@))
probe("kafka", lambda: conn(@KAFKA_PORT@))
