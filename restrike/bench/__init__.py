"""Benchmarks: one module per ``restrike bench NAME`` (each with a ``register(app)``), sharing
``toolkit`` for traffic, pacing, helper processes and the numbers. Imported only when one runs."""
