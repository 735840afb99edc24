"""Fit `Settings.reader_evidence`: how the model's reading and retrieval's evidence combine
into the probability that a retrieved chunk answers.

A logistic regression over the rows of `rag.query.reading.evidence` (bias, the model's
logit, the closest sentence's similarity, the share of question words held), one row per
retrieved chunk of each validation question: a chunk that holds a gold answer of its own
question is a positive; every other chunk, and every chunk retrieved for a question the
index cannot answer, is a negative. Fitted by Newton's method, with a small ridge on
everything but the bias so that a feature the data cannot tell apart stays near 0.
"""

from __future__ import annotations

import numpy as np

from rag.query.reading import believe

RIDGE = 1.0  # the penalty RIDGE / 2 * |w|^2 on the non-bias weights (a unit Gaussian prior)


def fit(features: np.ndarray, labels: np.ndarray, steps: int = 50) -> tuple[float, ...]:
    """Weights ``w`` maximising the likelihood of ``labels`` under ``sigmoid(features @ w)``
    (first column: the bias), ridge-penalised; stops when a step changes no weight by
    more than 1e-9."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ridge = np.full(x.shape[1], RIDGE)
    ridge[0] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = believe(x, w)  # the probability the answer path will compute
        gradient = x.T @ (p - y) + ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(ridge) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return tuple(float(v) for v in w)
