"""Side-by-side timing of purenn against plain JAX autodiff, the book's NumPy code and,
when installed, Flax+Optax and PyTorch.

Run ``python -m benchmarks`` (``--quick`` for tiny sizes, ``--help`` for the options).
Everything is measured in one process, contenders interleaved, medians over repetitions;
see ``docs/benchmarks.md`` for the latest results and how to read them.
"""
