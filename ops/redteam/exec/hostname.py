# check: (.stdout | test("sethostname: killed SIGSYS")) and (.stdout | test("hostname=phx-sandbox"))
print("hostname=" + socket.gethostname())
probe("sethostname", lambda: sc(170, ctypes.cast(ctypes.c_char_p(b"evil"), ctypes.c_void_p).value, 4))
