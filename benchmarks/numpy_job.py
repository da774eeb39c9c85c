"""The book's NumPy code for ``purenn book regularization``, as one whole process.

    python -m benchmarks.numpy_job [--epochs N] [--seed S]

The book's chapter-14 run with its classes (``tests/reference/book.py``, the project's
oracle): the book's ``spiral_data``, 100 samples per class, 3 classes, Dense(2, 64, L2 5e-4
on weights and biases) -> ReLU -> Dense(64, 3) -> softmax + categorical cross-entropy,
Adam(learning_rate=0.02, decay=5e-7), 10001 epochs, full batch, computing every epoch what
the book's loop computes, then the validation pass on 100 x 3 fresh samples. It prints
what ``purenn book regularization --quiet`` prints: the last epoch's line and the
validation line. Every op is float32, as after the book's ``nnfs.init()``.

Nothing here imports JAX or purenn: this is the process a reader of the book runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

L2 = 5e-4
LEARNING_RATE = 0.02
DECAY = 5e-7

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def book_classes():
    """``tests/reference/book.py``: the book's NumPy classes, loaded by path."""
    path = os.path.join(_REPO, "tests", "reference", "book.py")
    spec = importlib.util.spec_from_file_location("_purenn_benchmarks_book", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def spiral_data(samples, classes, dtype):
    """The book's ``spiral_data`` (nnfs), from NumPy's global generator as the book does."""
    X = np.zeros((samples * classes, 2), dtype)
    y = np.zeros(samples * classes, dtype=np.uint8)
    for class_number in range(classes):
        ix = range(samples * class_number, samples * (class_number + 1))
        r = np.linspace(0.0, 1, samples)
        t = (np.linspace(class_number * 4, (class_number + 1) * 4, samples)
             + np.random.randn(samples) * 0.2)
        X[ix] = np.c_[r * np.sin(t * 2.5), r * np.cos(t * 2.5)]
        y[ix] = class_number
    return X, y


def book_epochs(book, X, y, dense1, dense2, optimizer, epochs, *, on_epoch=None):
    """The book's training loop (chapter 14): forward, loss with the regularization
    terms, accuracy, backward, Adam. ``on_epoch(epoch, accuracy, loss, data_loss,
    reg_loss, learning_rate)`` is called every 100th epoch and at the last one, with the
    metrics of that epoch's forward pass (as the book prints them)."""
    activation1 = book.Activation_ReLU()
    loss_activation = book.Activation_Softmax_Loss_CategoricalCrossentropy()
    for epoch in range(epochs):
        dense1.forward(X)
        activation1.forward(dense1.output)
        dense2.forward(activation1.output)
        data_loss = loss_activation.forward(dense2.output, y)
        regularization_loss = (loss_activation.loss.regularization_loss(dense1) +
                               loss_activation.loss.regularization_loss(dense2))
        loss = data_loss + regularization_loss
        predictions = np.argmax(loss_activation.output, axis=1)
        accuracy = np.mean(predictions == y)
        if on_epoch is not None and (not epoch % 100 or epoch == epochs - 1):
            on_epoch(epoch, accuracy, loss, data_loss, regularization_loss,
                     optimizer.current_learning_rate)
        loss_activation.backward(loss_activation.output, y)
        dense2.backward(loss_activation.dinputs)
        activation1.backward(dense2.dinputs)
        dense1.backward(activation1.dinputs)
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.numpy_job",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10001)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    book = book_classes()
    np.random.seed(args.seed)  # nnfs.init()
    X, y = spiral_data(100, 3, np.float32)
    dense1 = book.Layer_Dense(2, 64, weight_regularizer_l2=L2, bias_regularizer_l2=L2)
    dense2 = book.Layer_Dense(64, 3)
    for layer in (dense1, dense2):  # float32 throughout, as after nnfs.init()
        layer.weights, layer.biases = (layer.weights.astype(np.float32),
                                       layer.biases.astype(np.float32))
    optimizer = book.Optimizer_Adam(learning_rate=LEARNING_RATE, decay=DECAY)
    last = []

    def keep(*metrics):
        last[:] = metrics

    book_epochs(book, X, y, dense1, dense2, optimizer, args.epochs, on_epoch=keep)
    epoch, accuracy, loss, data_loss, reg_loss, rate = last
    print(f"epoch: {epoch}, acc: {accuracy:.3f}, loss: {loss:.3f} (data_loss: "
          f"{data_loss:.3f}, reg_loss: {reg_loss:.3f}), lr: {rate}")

    X_val, y_val = spiral_data(100, 3, np.float32)
    activation1 = book.Activation_ReLU()
    loss_activation = book.Activation_Softmax_Loss_CategoricalCrossentropy()
    dense1.forward(X_val)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    val_loss = loss_activation.forward(dense2.output, y_val)
    val_accuracy = np.mean(np.argmax(loss_activation.output, axis=1) == y_val)
    print(f"validation, acc: {val_accuracy:.3f}, loss: {val_loss:.3f}")
    if dense1.weights.dtype != np.float32:
        raise TypeError(f"the weights became {dense1.weights.dtype}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
