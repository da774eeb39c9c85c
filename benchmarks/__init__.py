"""Side-by-side timing of purenn, through its public API, against plain JAX autodiff, the
book's NumPy code and, when installed, Flax + Optax and PyTorch.

Run ``python -m benchmarks`` (``--quick`` for a smoke test, ``--help`` for the options);
``docs/benchmarks.md`` holds the latest report, dated, with the machine it ran on.
"""
