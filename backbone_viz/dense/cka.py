"""Linear centred kernel alignment (CKA; Kornblith et al., 2019): how alike two sets of features are.

Given the same n samples seen by two networks, as features ``x`` (n, p) and ``y`` (n, q), linear CKA is

    CKA(x, y) = ||y_c^T x_c||_F^2 / (||x_c^T x_c||_F ||y_c^T y_c||_F)

with ``x_c``, ``y_c`` centred column by column. It is 1 for the same features, and stays 1 when either side
is rotated (any orthogonal transform) or scaled as a whole, so two networks that learnt the same features in
another order or at another scale still compare equal; it is not invariant to arbitrary invertible linear
maps, which would make every pair of wide layers look alike.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["linear_cka"]


def linear_cka(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Linear CKA between two sets of features of the same samples.

    Args:
        x: (n, p) features, one row per sample.
        y: (n, q) features of the same n samples, in the same order.

    Returns:
        A number in [0, 1]; 1 when ``y`` is ``x`` up to an orthogonal transform and a scale. ``nan`` when
        either side is constant over the samples (no variation to compare).

    Raises:
        ValueError: not 2-D, or not the same number of samples, or fewer than 2.
    """
    a = torch.as_tensor(x).detach().to("cpu", torch.float64)
    b = torch.as_tensor(y).detach().to("cpu", torch.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(
            f"linear_cka takes (n, p) and (n, q) features, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] != b.shape[0] or a.shape[0] < 2:
        raise ValueError(
            f"linear_cka needs the same n >= 2 samples on both sides, got {a.shape[0]} and {b.shape[0]}"
        )
    a = a - a.mean(0, keepdim=True)
    b = b - b.mean(0, keepdim=True)
    # The feature-space form: p x q products, never the n x n kernels (n is tens of thousands of positions).
    cross = torch.linalg.matrix_norm(b.T @ a) ** 2
    norm = torch.linalg.matrix_norm(a.T @ a) * torch.linalg.matrix_norm(b.T @ b)
    if norm == 0:
        return float("nan")
    return float((cross / norm).clamp(0.0, 1.0))
