"""The book's full-batch training loop (chapters 14-16), in NumPy float64.

``book_train`` runs the classes of ``tests/reference/book.py`` exactly as the book's
training script does, starting from purenn's params, so that a purenn training run can be
compared with it epoch by epoch.
"""

from __future__ import annotations

import numpy as np

from .book import (
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Layer_Dropout,
    Loss_BinaryCrossentropy,
)

HISTORY_KEYS = ("loss", "data_loss", "reg_loss", "accuracy", "learning_rate")


def _dense_params(entry, index):
    if not isinstance(entry, dict) or set(entry) != {"weights", "biases"}:
        raise ValueError(f"params[{index}] must be a dense layer's dict with 'weights' and "
                         f"'biases'; got {type(entry).__name__}")
    return (np.asarray(entry["weights"], dtype=np.float64),
            np.asarray(entry["biases"], dtype=np.float64))


def book_train(X, y, params, optimizer, epochs, *, l2=5e-4, kind="softmax",
               dropout_rate=None, dropout_masks=None):
    """Train the book's two-layer model for ``epochs`` full-batch epochs.

    The model is purenn's ``serial(dense(2, H, weight_l2=l2, bias_l2=l2), relu(),
    [dropout(dropout_rate),] dense(H, C)[, sigmoid()])``: ``kind="softmax"`` ends in the
    combined softmax + categorical cross-entropy (on the logits), ``kind="binary"`` in a
    sigmoid and binary cross-entropy.

    Args:
      X: inputs ``(N, 2)``.
      y: sparse labels ``(N,)`` (or one-hot ``(N, C)``) for softmax; 0/1 targets ``(N, C)``
        (a vector is made a column) for binary.
      params: purenn's params tuple for that model (arrays are read with ``np.asarray``).
      optimizer: one of the book's ``Optimizer_*`` objects (it is mutated).
      epochs: number of epochs, each one forward pass, one backward pass, one update.
      l2: the first dense layer's ``weight_l2`` and ``bias_l2``.
      dropout_rate: the fraction dropped, or None for no dropout layer.
      dropout_masks: with dropout, a callable ``epoch -> 0/1 mask (N, H)`` (e.g. the mask
        purenn drew that epoch); the book divides it by the keep rate.

    Returns:
      ``(history, params)``: ``history`` maps ``loss``, ``data_loss``, ``reg_loss``,
      ``accuracy`` and ``learning_rate`` to arrays of one value per epoch, recorded after
      the forward pass and before the update, as the book prints them;
      ``params`` the trained params in purenn's layout (dicts for dense layers, ``()``
      for the others).
    """
    if kind not in ("softmax", "binary"):
        raise ValueError(f"kind must be 'softmax' or 'binary'; got {kind!r}")
    if (dropout_rate is None) != (dropout_masks is None):
        raise ValueError("dropout_rate and dropout_masks go together: give both or neither")
    dropout = dropout_rate is not None
    second = 3 if dropout else 2
    n_layers = second + 1 + (kind == "binary")
    if not isinstance(params, (tuple, list)) or len(params) != n_layers:
        raise ValueError(f"params must be a tuple of {n_layers} entries for this model")

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if kind == "binary" and y.ndim == 1:
        y = y.reshape(-1, 1)

    weights1, biases1 = _dense_params(params[0], 0)
    weights2, biases2 = _dense_params(params[second], second)
    dense1 = Layer_Dense(*weights1.shape, weight_regularizer_l2=l2, bias_regularizer_l2=l2,
                         weights=weights1, biases=biases1)
    activation1 = Activation_ReLU()
    dropout1 = Layer_Dropout(dropout_rate) if dropout else None
    dense2 = Layer_Dense(*weights2.shape, weights=weights2, biases=biases2)
    if kind == "softmax":
        loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
        loss_function = loss_activation.loss
    else:
        activation2 = Activation_Sigmoid()
        loss_function = Loss_BinaryCrossentropy()

    history = {name: [] for name in HISTORY_KEYS}
    for epoch in range(epochs):
        # Forward.
        dense1.forward(X)
        activation1.forward(dense1.output)
        hidden = activation1.output
        if dropout:
            mask = np.asarray(dropout_masks(epoch), dtype=np.float64)
            dropout1.forward(hidden, mask=mask)
            hidden = dropout1.output
        dense2.forward(hidden)
        if kind == "softmax":
            data_loss = loss_activation.forward(dense2.output, y)
            output = loss_activation.output
        else:
            activation2.forward(dense2.output)
            output = activation2.output
            data_loss = loss_function.calculate(output, y)
        regularization_loss = (loss_function.regularization_loss(dense1) +
                               loss_function.regularization_loss(dense2))
        loss = data_loss + regularization_loss

        if kind == "softmax":
            predictions = np.argmax(output, axis=1)
            labels = np.argmax(y, axis=1) if y.ndim == 2 else y
            accuracy = np.mean(predictions == labels)
        else:
            predictions = (output > 0.5) * 1
            accuracy = np.mean(predictions == y)

        for name, value in zip(HISTORY_KEYS, (loss, data_loss, regularization_loss, accuracy,
                                              optimizer.current_learning_rate)):
            history[name].append(float(value))

        # Backward.
        if kind == "softmax":
            loss_activation.backward(output, y)
            dvalues = loss_activation.dinputs
        else:
            loss_function.backward(output, y)
            activation2.backward(loss_function.dinputs)
            dvalues = activation2.dinputs
        dense2.backward(dvalues)
        dvalues = dense2.dinputs
        if dropout:
            dropout1.backward(dvalues)
            dvalues = dropout1.dinputs
        activation1.backward(dvalues)
        dense1.backward(activation1.dinputs)

        # Update.
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()

    final = [()] * n_layers
    final[0] = {"weights": dense1.weights.copy(), "biases": dense1.biases.copy()}
    final[second] = {"weights": dense2.weights.copy(), "biases": dense2.biases.copy()}
    return {name: np.asarray(values) for name, values in history.items()}, tuple(final)
