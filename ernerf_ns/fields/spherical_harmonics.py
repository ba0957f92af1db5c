"""Degree-3 real spherical harmonics (16 components) of unit directions, as one small matrix product."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

TCNN_SH_TERMS: tuple[tuple[tuple[float, str], ...], ...] = (
    ((0.28209479177387814, ""),),
    ((-0.48860251190291987, "y"),),
    ((0.48860251190291987, "z"),),
    ((-0.48860251190291987, "x"),),
    ((1.0925484305920792, "xy"),),
    ((-1.0925484305920792, "yz"),),
    ((0.94617469575755997, "zz"), (-0.31539156525251999, "")),
    ((-1.0925484305920792, "xz"),),
    ((0.54627421529603959, "xx"), (-0.54627421529603959, "yy")),
    ((-3 * 0.59004358992664352, "xxy"), (0.59004358992664352, "yyy")),
    ((2.8906114426405538, "xyz"),),
    ((0.45704579946446572, "y"), (-5 * 0.45704579946446572, "yzz")),
    ((5 * 0.3731763325901154, "zzz"), (-3 * 0.3731763325901154, "z")),
    ((0.45704579946446572, "x"), (-5 * 0.45704579946446572, "xzz")),
    ((1.4453057213202769, "xxz"), (-1.4453057213202769, "yyz")),
    ((-0.59004358992664352, "xxx"), (3 * 0.59004358992664352, "xyy")),
)
"""Each component as (coefficient, monomial) terms, in tiny-cuda-nn's convention (Condon-Shortley phase), which
ER-NeRF's colour network was built on."""


def _monomial_index(monomial: str) -> int:
    """Row of a monomial of degree <= 3 among the 64 products f_a·f_b·f_c of f = (1, x, y, z)."""
    a, b, c = sorted("1xyz".index(letter) for letter in monomial.rjust(3, "1"))
    return (a * 4 + b) * 4 + c


def sh_coefficients() -> Float[Tensor, "64 16"]:
    """The matrix taking the 64 products f_a·f_b·f_c to the 16 components."""
    matrix = torch.zeros(64, len(TCNN_SH_TERMS), dtype=torch.float64)
    for component, terms in enumerate(TCNN_SH_TERMS):
        for coefficient, monomial in terms:
            matrix[_monomial_index(monomial), component] += coefficient
    return matrix.float()


class SphericalHarmonics(nn.Module):
    """The 16 degree-3 SH components of unit directions, in tiny-cuda-nn's convention.

    Written as monomials times a constant matrix: five tensor ops whatever the degree, where the component-by-
    component formula takes about sixty small kernels per call (the training step is bound by such launches).
    """

    out_dim = len(TCNN_SH_TERMS)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coefficients", sh_coefficients(), persistent=False)

    def forward(self, directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 16"]:
        # In float32 also under the networks' bf16 autocast, as the component-by-component formula was.
        with torch.autocast(directions.device.type, enabled=False):
            f = torch.cat([torch.ones_like(directions[..., :1]), directions.float()], dim=-1)
            monomials = (f[..., :, None, None] * f[..., None, :, None] * f[..., None, None, :]).flatten(-3)
            return monomials @ self.coefficients
