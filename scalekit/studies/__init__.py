"""Studies over scaled networks, computing only (formatting is report/): the paper's tables
(tables.py), the largest network within a budget (budget.py), sweeps of coefficients (sweeps.py),
and comparing a report with a stored baseline (regression.py). No torch, no latency code."""
