#!/usr/bin/env python3
"""Golden RoPE inverse frequencies for rl's rope_scaling tests.

The formulas of transformers' modeling_rope_utils.py
(_compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
_compute_llama3_parameters, _compute_dynamic_ntk_parameters,
_compute_yarn_parameters, _compute_longrope_parameters, transformers 5's
versions, which take factor from the config and fill
original_max_position_embeddings from the config), written out in plain
Python floats for the
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


def dynamic(theta, dim, factor, max_pos, seq_len):
    seq_len = max(seq_len, max_pos)
    base = theta * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    return default(base, dim)


def yarn(theta, dim, factor, original, beta_fast=32, beta_slow=1, mscale=None, mscale_all_dim=None, truncate=True):
    def get_mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0
    if mscale and mscale_all_dim:
        att = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    else:
        att = get_mscale(factor)
    # the dimension whose wavelength makes `rot` turns over the original length
    def corr(rot):
        return dim * math.log(original / (rot * 2 * math.pi)) / (2 * math.log(theta))
    low, high = corr(beta_fast), corr(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    out = []
    for j, f in enumerate(default(theta, dim)):
        ramp = min(max((j - low) / (high - low), 0.0), 1.0)
        keep = 1 - ramp  # share of the unscaled (extrapolated) frequency
        out.append(f / factor * (1 - keep) + f * keep)
    return out, att


def longrope(theta, dim, ext, factor, original):
    att = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
    return [f / e for f, e in zip(default(theta, dim), ext)], att


def go(name, v):
    print("var %s = []float64{%s}" % (name, ", ".join(repr(x) for x in v)))


go("wantLlama3", llama3(10000.0, 8, 8.0, 1.0, 4.0, 64))
go("wantLinear", linear(10000.0, 8, 4.0))

# dynamic NTK, head_dim 8, max_position_embeddings 32: beyond (seq 48) and within
go("wantDynamic48", dynamic(10000.0, 8, 2.0, 32, 48))
# yarn, head_dim 8: factor 4, original 4096 (dims 0-1 kept, 2 mixed, 3 scaled); and DeepSeek's mscale pair
inv, att = yarn(10000.0, 8, 4.0, 4096)
go("wantYarn", inv)
print("const wantYarnAttention = %r" % att)
inv, att = yarn(10000.0, 8, 4.0, 4096, beta_fast=8, beta_slow=2, mscale=0.707, mscale_all_dim=1.0, truncate=False)
go("wantYarnMscale", inv)
print("const wantYarnMscaleAttention = %r" % att)
# longrope, Phi-4-mini's shape in small: head_dim 8, partial_rotary_factor
# 0.75 (6 channels rotate, 3 pairs), original 4 of 32 positions (factor 8)
short, long_ = [1.0, 1.5, 2.0], [2.0, 4.0, 8.0]
inv, att = longrope(10000.0, 6, short, 32 / 4, 4)
go("wantLongShort", inv)
inv, att = longrope(10000.0, 6, long_, 32 / 4, 4)
go("wantLongLong", inv)
print("const wantLongAttention = %r" % att)
