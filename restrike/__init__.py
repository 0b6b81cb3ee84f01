"""reStrike VTA's top floor: the ``restrike`` command line, the demo and the benchmarks.

Nothing below this package imports it: the court agent and the master run without it.
"""
