# check: .signal == "SIGKILL" and .timed_out == false and .cpu_ms >= 1000 and .duration_ms < 8000
# limits: {"cpu_ms": 1000, "wall_ms": 20000}
while True:
    pass
