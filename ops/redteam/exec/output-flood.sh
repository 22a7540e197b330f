# check: .truncated == true and (.stdout | length) <= 16384 and .duration_ms < 5000
# limits: {"output_kb": 16}
yes phoenix
