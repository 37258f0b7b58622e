#!/usr/bin/env python3
"""Fixtures for rl's LoRA adapters, written the way peft writes them.

Run once with Debian's python3-torch (there is no peft or safetensors
package here, so both formats are written by hand from their specs):

    /usr/bin/python3 tools/goldens/peft_adapter.py

For a tiny Llama (grouped-query attention) and a tiny GPT-2 (Conv1D, so
fan_in_fan_out) it writes, under shared/model/testdata/peft/<family>/:
  base/     config.json + model.safetensors: random weights, transformers' names;
  adapter/  adapter_config.json + adapter_model.safetensors: lora_A (r, in)
            and lora_B (out, r) under peft's keys
            (base_model.model.<module>.lora_A.weight), nonzero B, as after
            training; the llama one uses use_rslora;
  merged/   config.json + model.safetensors: base + the update peft's
            get_delta_weight computes, transpose(B @ A, fan_in_fan_out) *
            scaling, scaling = lora_alpha / r (lora_alpha / sqrt(r) with
            use_rslora): what merge_and_unload writes.
rl's test loads adapter/ onto base/ and merged/ alone, and compares logits.

<family>_dora/ holds the same with use_dora (DoRA, Liu et al. 2024,
arXiv:2402.09353, as peft's tuners/lora/dora.py): the adapter also has
base_model.model.<module>.lora_magnitude_vector [out], initialised by peft
to the row norms of W + scaling * B @ A (get_weight_norm on the (out, in)
weight) and here scaled by random factors around 1, as after training;
merged/ is peft's Linear.merge with DoRA: W' = m / ||W + dW|| * (W + dW),
the factor per output row (per column of a Conv1D weight). In eval (no
dropout) peft's DoraLinearLayer.forward, base + (m/||W+dW|| - 1) x W^T +
m/||W+dW|| * scaling * B A x, equals x W'^T + bias exactly.
"""
import json
import math
import os
import struct

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "model", "testdata", "peft")


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header, raw data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous().to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_model(d, config, sd):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), sd)


def make(family, config, sd, targets, r, alpha, rslora, conv1d, dora=False):
    g = torch.Generator().manual_seed(3 if dora else 1)
    scaling = alpha / math.sqrt(r) if rslora else alpha / r
    adapter, merged = {}, dict(sd)
    modules = sorted({n[: -len(".weight")] for n in sd if n.endswith(".weight") and n.split(".")[-2] in targets})
    for mod in modules:
        w = sd[mod + ".weight"]
        fan_in, fan_out = (w.shape[0], w.shape[1]) if conv1d else (w.shape[1], w.shape[0])
        a = torch.randn(r, fan_in, generator=g) * 0.3
        b = torch.randn(fan_out, r, generator=g) * 0.3
        adapter["base_model.model." + mod + ".lora_A.weight"] = a
        adapter["base_model.model." + mod + ".lora_B.weight"] = b
        delta = (b @ a) * scaling  # (out, in): peft's get_delta_weight
        if conv1d:
            delta = delta.T  # fan_in_fan_out: Conv1D stores (in, out)
        if dora:
            w_out_in = w.T if conv1d else w  # peft's transpose(weight, fan_in_fan_out)
            norm = torch.linalg.norm(w_out_in + (b @ a) * scaling, dim=1)  # get_weight_norm
            mag = norm * (1 + 0.25 * torch.randn(norm.shape[0], generator=g))
            adapter["base_model.model." + mod + ".lora_magnitude_vector"] = mag
            factor = (mag / norm).view(-1, 1)  # dora_factor
            if conv1d:
                factor = factor.T
            merged[mod + ".weight"] = factor * (w + delta)
            continue
        merged[mod + ".weight"] = w + delta
    root = os.path.join(OUT, family)
    save_model(os.path.join(root, "base"), config, sd)
    save_model(os.path.join(root, "merged"), config, merged)
    ad = os.path.join(root, "adapter")
    os.makedirs(ad, exist_ok=True)
    write_safetensors(os.path.join(ad, "adapter_model.safetensors"), adapter)
    cfg = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "base",
        "r": r, "lora_alpha": alpha, "lora_dropout": 0.05, "target_modules": sorted(targets),
        "fan_in_fan_out": conv1d, "bias": "none", "use_rslora": rslora, "use_dora": dora,
        "modules_to_save": None, "init_lora_weights": True, "inference_mode": True,
        "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {},
        "revision": None, "peft_version": "0.17.0",
    }
    with open(os.path.join(ad, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def llama():
    g = torch.Generator().manual_seed(0)
    H, I, V, L, nh, nkv = 16, 24, 29, 2, 2, 1
    hd = H // nh
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": V, "hidden_size": H,
              "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv,
              "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
    sd = {"model.embed_tokens.weight": torch.randn(V, H, generator=g) * 0.5,
          "model.norm.weight": 1 + 0.1 * torch.randn(H, generator=g),
          "lm_head.weight": torch.randn(V, H, generator=g) * 0.3}
    for i in range(L):
        p = "model.layers.%d." % i
        shapes = {"self_attn.q_proj": (nh * hd, H), "self_attn.k_proj": (nkv * hd, H), "self_attn.v_proj": (nkv * hd, H),
                  "self_attn.o_proj": (H, nh * hd), "mlp.gate_proj": (I, H), "mlp.up_proj": (I, H), "mlp.down_proj": (H, I)}
        for n, s in shapes.items():
            sd[p + n + ".weight"] = torch.randn(*s, generator=g) * 0.3
        sd[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(H, generator=g)
        sd[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(H, generator=g)
    make("llama", config, sd, {"q_proj", "v_proj", "down_proj"}, r=4, alpha=8, rslora=True, conv1d=False)
    make("llama_dora", config, sd, {"q_proj", "v_proj", "down_proj"}, r=4, alpha=8, rslora=False, conv1d=False, dora=True)


def gpt2():
    g = torch.Generator().manual_seed(2)
    H, V, L = 16, 23, 2
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_embd": H, "n_layer": L,
              "n_head": 4, "n_positions": 16, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "resid_pdrop": 0.0}
    sd = {"transformer.wte.weight": torch.randn(V, H, generator=g) * 0.5,
          "transformer.wpe.weight": torch.randn(16, H, generator=g) * 0.1,
          "transformer.ln_f.weight": 1 + 0.1 * torch.randn(H, generator=g),
          "transformer.ln_f.bias": 0.1 * torch.randn(H, generator=g)}
    for i in range(L):
        p = "transformer.h.%d." % i
        for n, s in {"attn.c_attn": (H, 3 * H), "attn.c_proj": (H, H), "mlp.c_fc": (H, 4 * H), "mlp.c_proj": (4 * H, H)}.items():
            sd[p + n + ".weight"] = torch.randn(*s, generator=g) * 0.3  # Conv1D: (in, out)
            sd[p + n + ".bias"] = 0.1 * torch.randn(s[1], generator=g)
        for n in ("ln_1", "ln_2"):
            sd[p + n + ".weight"] = 1 + 0.1 * torch.randn(H, generator=g)
            sd[p + n + ".bias"] = 0.1 * torch.randn(H, generator=g)
    make("gpt2", config, sd, {"c_attn", "c_fc"}, r=2, alpha=16, rslora=False, conv1d=True)
    make("gpt2_dora", config, sd, {"c_attn", "c_fc"}, r=2, alpha=16, rslora=False, conv1d=True, dora=True)


llama()
gpt2()
print("wrote", OUT)
