# check: true and (.stdout | test("bpf: killed SIGSYS"))
probe("bpf", lambda: sc(321, 0, 0, 0))
