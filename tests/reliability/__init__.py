"""Reliability and trust: the fault matrix, fuzzing, the concurrency soak, durability, trust.

``MOFA_WRITE_RELIABILITY=1`` makes a run of this package rewrite the generated
parts of ``docs/reliability.md`` (see conftest.py).
"""
