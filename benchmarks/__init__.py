"""Benchmarks run by ``duygu bench``.

Each ``bench_*.py`` module defines ``run(quick: bool = False) -> list[dict]``; each dict
has ``name``, ``value``, ``unit`` and, where the project set one, ``target`` (text such
as ``">= 100x"``) and ``ok`` (bool). Targets are ratios measured in one run on one
machine, never absolute timings in tests.
"""
