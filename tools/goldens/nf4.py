#!/usr/bin/env python3
"""Golden values for rl's 4-bit (NF4, FP4) and 8-bit weight quantisation.

Run once with Debian's python3-torch (bitsandbytes is not installable here,
so its reference CPU algorithm is followed step by step from its sources,
bitsandbytes @95f9af3: backends/default/ops.py quantize_4bit,
dequantize_4bit, quantize_blockwise, dequantize_blockwise,
int8_vectorwise_quant; functional.py create_dynamic_map, quantize_4bit's
compress_statistics; backends/utils.py _NF4_QUANT_TABLE, _FP4_QUANT_TABLE):

    /usr/bin/python3 tools/goldens/nf4.py

Writes shared/model/testdata/quant.json: the dynamic 8-bit map, and for a
seeded (40, 70) float32 weight (2800 values: 43 full blocks of 64 and a
remainder of 48, so both paths run; float32 arrays are base64 of their
little-endian bytes) the packed bytes, absmax, the nested
(double-quantised) absmax and the dequantised weights for nf4 and fp4,
with and without double quantisation; and the int8 row-wise quantisation.
"""
import base64
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "model", "testdata", "quant.json")

NF4 = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                    0.7229568362236023, 1.0], dtype=torch.float32)
FP4 = torch.tensor([0.0, 0.0052, 0.6667, 1.0, 0.3333, 0.5, 0.1667, 0.25,
                    0.0, -0.0052, -0.6667, -1.0, -0.3333, -0.5, -0.1667, -0.25], dtype=torch.float32)


def dynamic_map(max_exponent_bits=7, total_bits=8):
    """The signed dynamic 8-bit data type (Dettmers 2015, arXiv:1511.04561):
    for each exponent e, the midpoints of an even split of [0.1, 1] into
    2^e pieces, times 10^(e - 6), both signs; then 0 and 1; sorted."""
    values = []
    free_bits = total_bits - 1
    for e in range(max_exponent_bits):
        edges = torch.linspace(0.1, 1, 2 ** (e + free_bits - max_exponent_bits) + 1, dtype=torch.float32)
        mids = (edges[:-1] + edges[1:]) / 2.0
        scale = 10 ** (-(max_exponent_bits - 1) + e)
        values += (scale * mids).tolist()
        values += (-scale * mids).tolist()
    values += [0, 1.0]
    values += [0] * (256 - len(values))
    return torch.tensor(sorted(values), dtype=torch.float32)


def f32(t):
    return base64.b64encode(t.to(torch.float32).contiguous().numpy().tobytes()).decode()


def blockwise_absmax_scale(flat, blocksize):
    """Per-block absmax (the last, partial block its own) and the values
    scaled into [-1, 1]: full blocks multiply by 1/absmax, the rest divides."""
    n = flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = flat[:full].reshape(full // blocksize, blocksize)
    absmax = blocks.abs().max(dim=-1)[0]
    scaled = torch.clamp(blocks * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / am, -1, 1)])
    return absmax, scaled


def times_blocks(values, absmax, blocksize):
    n = values.numel()
    rem = n % blocksize
    full = n - rem
    out = torch.empty(n, dtype=torch.float32)
    out[:full] = (values[:full].view(-1, blocksize) * absmax[: full // blocksize].view(-1, 1)).reshape(full)
    if rem:
        out[full:] = values[full:] * absmax[full // blocksize]
    return out


def quant_blockwise(x, code, blocksize):
    absmax, scaled = blockwise_absmax_scale(x.reshape(-1).float(), blocksize)
    q = torch.bucketize(scaled, (code[:-1] + code[1:]) / 2, out_int32=True).to(torch.uint8)
    return q, absmax


def dequant_blockwise(q, absmax, code, blocksize):
    return times_blocks(code[q.to(torch.int64)], absmax, blocksize)


def quant4(w, code, blocksize, nested):
    absmax, scaled = blockwise_absmax_scale(w.reshape(-1).float(), blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    order = torch.argsort(code)
    mids = (code[order[:-1]] + code[order[1:]]) / 2
    q = order[torch.bucketize(scaled, mids, out_int32=True).to(torch.int64)].to(torch.uint8)  # NF4: order is the identity
    packed = (q[::2] << 4) | q[1::2]
    out = {"packed": base64.b64encode(packed.numpy().tobytes()).decode(), "absmax": f32(absmax)}
    if nested:
        offset = absmax.mean()
        qabs, absmax2 = quant_blockwise(absmax - offset, dynamic_map(), 256)
        out.update({"offset": offset.item(), "qabsmax": base64.b64encode(qabs.numpy().tobytes()).decode(), "absmax2": f32(absmax2)})
        absmax = dequant_blockwise(qabs, absmax2, dynamic_map(), 256) + offset
    codes = torch.empty(packed.numel() * 2, dtype=torch.int64)
    codes[::2], codes[1::2] = (packed >> 4).to(torch.int64), (packed & 0xF).to(torch.int64)
    n = w.numel()
    out["dequant"] = f32(times_blocks(code[codes][:n], absmax, blocksize))
    return out


def int8_rows(w):
    rowmax = w.abs().max(dim=1).values.float()
    q = torch.round(w * (127.0 / rowmax.unsqueeze(-1))).to(torch.int8)
    return {"q": base64.b64encode(q.reshape(-1).numpy().tobytes()).decode(), "rowmax": f32(rowmax), "dequant": f32((q.float() * (rowmax.unsqueeze(-1) / 127.0)).reshape(-1))}


g = torch.Generator().manual_seed(0)
w = torch.randn(40, 70, generator=g) * 0.05
w[3, 5] = 0.9  # an outlier in one block
w[7] = 0.0  # an all-zero row and block
gold = {"shape": list(w.shape), "weight": f32(w.reshape(-1)), "dynamic_map": f32(dynamic_map())}
for name, code in (("nf4", NF4), ("fp4", FP4)):
    for nested in (False, True):
        gold[name + ("_nested" if nested else "")] = quant4(w, code, 64, nested)
gold["int8"] = int8_rows(w)
with open(OUT, "w") as f:
    json.dump(gold, f)
print("wrote", OUT, os.path.getsize(OUT), "bytes")
