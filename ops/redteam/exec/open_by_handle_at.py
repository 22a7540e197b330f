# check: true and (.stdout | test("open_by_handle_at: killed SIGSYS")) and (.stdout | test("name_to_handle_at: killed SIGSYS"))
probe("open_by_handle_at", lambda: sc(304, -100, 0, 0))
probe("name_to_handle_at", lambda: sc(303, -100, 0, 0, 0, 0))
