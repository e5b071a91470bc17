"""Latency: timing a module on this CPU (harness.py), what the machine can do (machine.py),
timing the networks of a report (networks.py), and an inference-optimised copy (optimize.py).

Nothing here imports torch at module import; the count-only path never imports this package.
"""
