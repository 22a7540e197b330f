# check: true and (.stdout | test("perf_event_open: killed SIGSYS"))
probe("perf_event_open", lambda: sc(298, 0, 0, -1, -1, 0))
