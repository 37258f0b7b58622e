#!/usr/bin/env python3
"""Fixtures for rl's pytorch_model.bin reader, written by torch.save.

Run once with Debian's python3-torch (apt install python3-torch):

    /usr/bin/python3 tools/goldens/pytorch_bin.py

Writes shared/safetensors/testdata/pytorch/:
  tensors_zip.bin, tensors_legacy.bin: a state dict of float32 (one a
      transposed view, two sharing storage), bfloat16, float16, float64,
      int64 and bool tensors, in the zip format (torch >= 1.6) and the
      legacy one;
  gpt2/pytorch_model.bin + config.json: a tiny GPT-2 state dict under
      transformers' names;
  expected.json: every tensor's dtype, shape and values (row-major).
"""
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "safetensors", "testdata", "pytorch")
os.makedirs(os.path.join(OUT, "gpt2"), exist_ok=True)
g = torch.Generator().manual_seed(0)

base = torch.randn(3, 4, generator=g)
sd = {
    "f32": torch.randn(2, 3, generator=g),
    "f32_transposed": base.t(),  # a strided view: stride (1, 4)
    "shared_a": base,
    "shared_b": base[1],  # same storage, offset 4
    "bf16": torch.randn(5, generator=g).to(torch.bfloat16),
    "f16": torch.randn(2, 2, generator=g).to(torch.float16),
    "f64": torch.randn(3, generator=g, dtype=torch.float64),
    "i64": torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3),
    "bool": torch.tensor([True, False, True]),
}
torch.save(sd, os.path.join(OUT, "tensors_zip.bin"))
torch.save(sd, os.path.join(OUT, "tensors_legacy.bin"), _use_new_zipfile_serialization=False)

E, L, H, P, V = 8, 1, 2, 8, 11
gpt2 = {"transformer.wte.weight": torch.randn(V, E, generator=g), "transformer.wpe.weight": torch.randn(P, E, generator=g)}
for i in range(L):
    p = "transformer.h.%d." % i
    for name, shape in [("ln_1.weight", (E,)), ("ln_1.bias", (E,)), ("attn.c_attn.weight", (E, 3 * E)), ("attn.c_attn.bias", (3 * E,)),
                        ("attn.c_proj.weight", (E, E)), ("attn.c_proj.bias", (E,)), ("ln_2.weight", (E,)), ("ln_2.bias", (E,)),
                        ("mlp.c_fc.weight", (E, 4 * E)), ("mlp.c_fc.bias", (4 * E,)), ("mlp.c_proj.weight", (4 * E, E)), ("mlp.c_proj.bias", (E,))]:
        gpt2[p + name] = torch.randn(*shape, generator=g) * 0.2
    gpt2[p + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)  # transformers' old causal buffer
gpt2["transformer.ln_f.weight"] = torch.ones(E)
gpt2["transformer.ln_f.bias"] = torch.zeros(E)
torch.save(gpt2, os.path.join(OUT, "gpt2", "pytorch_model.bin"))
with open(os.path.join(OUT, "gpt2", "config.json"), "w") as f:
    json.dump({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": E, "n_layer": L, "n_head": H, "n_positions": P, "vocab_size": V}, f, indent=2)

names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}
expected = {}
for group, d in (("tensors", sd), ("gpt2", gpt2)):
    for k, t in d.items():
        v = t.contiguous().reshape(-1)
        vals = [bool(x) for x in v.tolist()] if t.dtype == torch.bool else (v.tolist() if t.dtype == torch.int64 else v.double().tolist())
        expected[group + "/" + k] = {"dtype": names[t.dtype], "shape": list(t.shape), "values": vals}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f)
print("wrote", OUT, "torch", torch.__version__)
