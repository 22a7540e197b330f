# check: true and (.stdout | test("process_vm_readv: killed SIGSYS")) and (.stdout | test("process_vm_writev: killed SIGSYS"))
probe("process_vm_readv", lambda: sc(310, 1, 0, 0, 0, 0, 0))
probe("process_vm_writev", lambda: sc(311, 1, 0, 0, 0, 0, 0))
