#!/usr/bin/env python3
"""Golden RoPE inverse frequencies for rl's rope_scaling tests.

The formulas of transformers' modeling_rope_utils.py
(_compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
_compute_llama3_parameters), written out in plain Python floats for the
tiny configs of shared/model's tests. Prints Go slices to paste into
shared/model/rope_test.go.
"""
import math


def default(theta, dim):
    return [1.0 / theta ** (j / dim) for j in range(0, dim, 2)]


def linear(theta, dim, factor):
    return [f / factor for f in default(theta, dim)]


def llama3(theta, dim, factor, low, high, old_ctx):
    out = []
    low_wl, high_wl = old_ctx / low, old_ctx / high
    for f in default(theta, dim):
        wl = 2 * math.pi / f
        g = f / factor if wl > low_wl else f
        if not (wl < high_wl) and not (wl > low_wl):
            s = (old_ctx / wl - low) / (high - low)
            g = (1 - s) * g / factor + s * g
        out.append(g)
    return out


def go(name, v):
    print("var %s = []float64{%s}" % (name, ", ".join(repr(x) for x in v)))


go("wantLlama3", llama3(10000.0, 8, 8.0, 1.0, 4.0, 64))
go("wantLinear", linear(10000.0, 8, 4.0))
