# check: .signal == "SIGKILL" and .timed_out == false and .cpu_ms >= 1000 and .duration_ms < 20000
# limits: {"cpu_ms": 1000, "wall_ms": 20000}
# (the CPU limit, not the 20 s wall deadline, ends it: timed_out is false and it ends before 20 s;
# how long 1 s of CPU takes on the wall clock depends on how busy the machine is)
while True:
    pass
