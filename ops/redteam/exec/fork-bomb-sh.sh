# check: .duration_ms < 15000
# limits: {"pids": 16, "wall_ms": 3000}
b() { b | b & }; b
sleep 60
