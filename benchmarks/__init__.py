"""The benchmark suite: the budgets of design section 4, measured (``python -m benchmarks``).

Outside the package and the test run; ``tests/test_benchmarks_smoke.py`` runs it at tiny sizes.
Results: a table on stdout, JSON in ``benchmarks/results.json``; the last full run with the
machine it ran on is in ``docs/benchmarks.md``.
"""
