"""Does L2 close the gap between training and validation accuracy, and at what cost?

Chapter 14's question, as a sweep: the book's regularization experiment (spiral 100x3,
Dense(2, 64) -> ReLU -> Dense(64, 3), Adam(0.02, decay 5e-7), 10001 epochs) with the L2
strength on the hidden layer's weights swept from 0 to 5e-3, with and without the book's
L2 of 5e-4 on its biases, five seeds each: the same runs and numbers as

    purenn sweep --weight-l2 0,1e-4,5e-4,1e-3,5e-3 --bias-l2 0,5e-4 \\
        --learning-rate 0.02 --decay 5e-7 --seeds 5 --out sweep-l2

    python examples/sweep_l2.py [--epochs 10001] [--seeds 5] [--plot sweep_l2.png]
"""

import argparse
import dataclasses

from purenn import experiments, plotting, sweep

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10001)
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--plot", help="write the picture to this PNG (needs matplotlib)")
args = parser.parse_args()

# The book's run; the grid replaces its L2 strengths (5e-4 on weights and biases).
base = dataclasses.replace(experiments.BOOK["regularization"].config, epochs=args.epochs)
grid = {"weight_l2": [0.0, 1e-4, 5e-4, 1e-3, 5e-3], "bias_l2": [0.0, 5e-4]}

# One compiled training program serves all the runs: they differ only in values and seeds.
results = sweep.run_grid(base, grid, seeds=range(args.seeds))

print("weight_l2  bias_l2  train acc      val acc        gap (train - val)")
for cell in sweep.summarize(results):
    m, s = cell.mean, cell.std
    print(f"{cell.values['weight_l2']:<9g}  {cell.values['bias_l2']:<7g}  "
          f"{m['train_accuracy']:.3f} ± {s['train_accuracy']:.3f}  "
          f"{m['val_accuracy']:.3f} ± {s['val_accuracy']:.3f}  "
          f"{m['gap']:.3f} ± {s['gap']:.3f}")
if args.plot:
    plotting.plot_sweep(args.plot, sweep.summarize(results), grid)
