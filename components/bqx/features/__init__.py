"""Feature families: one module each, pure functions of arrays (float64 in, float32 blocks out).

:mod:`bqx.features.registry` maps catalog tables to the family function that computes them.
"""
