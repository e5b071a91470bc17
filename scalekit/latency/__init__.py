"""Latency: timing a module on this CPU and saying whether to trust it (harness.py), what the
machine can do (machine.py: measured and theoretical peaks), what runs the network (runtimes.py:
eager, optimised, onnxruntime), timing the networks of a report (networks.py), an
inference-optimised copy (optimize.py), and predicted latency: the per-machine table of block
timings (table.py, torch-free), filling it (pieces.py) and reading it (prediction.py).

Nothing here imports torch at module import; the count-only path never imports this package,
and a prediction from a warm table never imports torch at all.
"""
