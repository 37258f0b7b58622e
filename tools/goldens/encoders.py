#!/usr/bin/env python3
"""Fixtures and golden outputs for rl's encoder families (BERT, DistilBERT,
RoBERTa), computed with transformers' math written out in plain torch.

Run with Debian's python3-torch (no transformers package here):

    /usr/bin/python3 tools/goldens/encoders.py            # write the fixtures
    /usr/bin/python3 tools/goldens/encoders.py check DIR  # read a checkpoint rl saved

The forward passes follow transformers' modeling_bert.py (BertEmbeddings,
BertSelfAttention with the additive extended mask (1 - mask) * finfo.min,
BertSelfOutput, BertIntermediate, BertOutput, BertPooler,
BertForSequenceClassification), modeling_distilbert.py (Embeddings,
MultiHeadSelfAttention, FFN, TransformerBlock,
DistilBertForSequenceClassification) and modeling_roberta.py
(create_position_ids_from_input_ids, RobertaClassificationHead), in eval
mode (no dropout). For each family it writes shared/model/testdata/<family>/:
  config.json    as transformers writes it (architectures, id2label, label2id)
  weights        random, transformers' key names: BERT as pytorch_model.bin
                 (torch.save of the state dict, with the position_ids buffer),
                 the others as model.safetensors (written by hand from the spec)
  golden.json    input_ids (right padded), attention_mask, token_type_ids,
                 hidden (B, T, H) last hidden states and logits (B, K)

`check DIR` reads config.json and model.safetensors (or pytorch_model.bin)
from DIR by the same key names, runs the golden inputs of DIR's family and
prints the largest difference from golden.json's logits: the round trip
rl save -> this loader.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "model", "testdata")

H, L, NH, I, V, P = 32, 2, 4, 48, 60, 20


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


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info["shape"])
    return out


def ext_mask(mask):
    """get_extended_attention_mask: (B, 1, 1, T), 0 for keys, finfo.min for pads."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def attention(q, k, v, mask, nh):
    B, T, Hd = q.shape
    d = Hd // nh
    sh = lambda x: x.view(B, T, nh, d).transpose(1, 2)
    q, k, v = sh(q), sh(k), sh(v)
    s = q @ k.transpose(-1, -2) / math.sqrt(d) + ext_mask(mask)
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, Hd)


def lin(sd, name, x):
    return F.linear(x, sd[name + ".weight"], sd[name + ".bias"])


def ln(sd, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps)


def bert_hidden(sd, cfg, ids, mask, tt, pre):
    eps = cfg["layer_norm_eps"]
    if pre == "roberta.":
        pad = cfg["pad_token_id"]
        m = ids.ne(pad).int()
        pos = (torch.cumsum(m, 1) * m).long() + pad  # create_position_ids_from_input_ids
    else:
        pos = torch.arange(ids.shape[1])[None].expand_as(ids)  # BertEmbeddings' position_ids
    x = sd[pre + "embeddings.word_embeddings.weight"][ids] + sd[pre + "embeddings.position_embeddings.weight"][pos]
    x = x + sd[pre + "embeddings.token_type_embeddings.weight"][tt]
    x = ln(sd, pre + "embeddings.LayerNorm", x, eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"{pre}encoder.layer.{i}."
        a = attention(lin(sd, p + "attention.self.query", x), lin(sd, p + "attention.self.key", x),
                      lin(sd, p + "attention.self.value", x), mask, cfg["num_attention_heads"])
        a = ln(sd, p + "attention.output.LayerNorm", lin(sd, p + "attention.output.dense", a) + x, eps)
        h = F.gelu(lin(sd, p + "intermediate.dense", a))
        x = ln(sd, p + "output.LayerNorm", lin(sd, p + "output.dense", h) + a, eps)
    return x


def distil_hidden(sd, cfg, ids, mask):
    pos = torch.arange(ids.shape[1])[None].expand_as(ids)
    x = sd["distilbert.embeddings.word_embeddings.weight"][ids] + sd["distilbert.embeddings.position_embeddings.weight"][pos]
    x = ln(sd, "distilbert.embeddings.LayerNorm", x, 1e-12)
    for i in range(cfg["n_layers"]):
        p = f"distilbert.transformer.layer.{i}."
        B, T, Hd = x.shape
        nh = cfg["n_heads"]
        d = Hd // nh
        sh = lambda t: t.view(B, T, nh, d).transpose(1, 2)
        q = sh(lin(sd, p + "attention.q_lin", x)) / math.sqrt(d)  # MultiHeadSelfAttention scales q first
        k, v = sh(lin(sd, p + "attention.k_lin", x)), sh(lin(sd, p + "attention.v_lin", x))
        s = (q @ k.transpose(2, 3)).masked_fill((mask == 0)[:, None, None, :], torch.finfo(torch.float32).min)
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, Hd)
        sa = ln(sd, p + "sa_layer_norm", lin(sd, p + "attention.out_lin", a) + x, 1e-12)
        f = lin(sd, p + "ffn.lin2", F.gelu(lin(sd, p + "ffn.lin1", sa)))
        x = ln(sd, p + "output_layer_norm", f + sa, 1e-12)
    return x


def forward(family, sd, cfg, ids, mask, tt):
    if family == "bert":
        h = bert_hidden(sd, cfg, ids, mask, tt, "bert.")
        pooled = torch.tanh(lin(sd, "bert.pooler.dense", h[:, 0]))
        return h, lin(sd, "classifier", pooled)
    if family == "roberta":
        h = bert_hidden(sd, cfg, ids, mask, tt, "roberta.")
        return h, lin(sd, "classifier.out_proj", torch.tanh(lin(sd, "classifier.dense", h[:, 0])))
    h = distil_hidden(sd, cfg, ids, mask)
    return h, lin(sd, "classifier", F.relu(lin(sd, "pre_classifier", h[:, 0])))


def shapes(family, K):
    s = {}
    if family in ("bert", "roberta"):
        pre = family + "."
        s[pre + "embeddings.word_embeddings.weight"] = (V, H)
        s[pre + "embeddings.position_embeddings.weight"] = (P, H)
        s[pre + "embeddings.token_type_embeddings.weight"] = (2 if family == "bert" else 1, H)
        s[pre + "embeddings.LayerNorm.weight"] = (H,)
        s[pre + "embeddings.LayerNorm.bias"] = (H,)
        for i in range(L):
            p = f"{pre}encoder.layer.{i}."
            for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
                s[p + n + ".weight"], s[p + n + ".bias"] = (H, H), (H,)
            s[p + "intermediate.dense.weight"], s[p + "intermediate.dense.bias"] = (I, H), (I,)
            s[p + "output.dense.weight"], s[p + "output.dense.bias"] = (H, I), (H,)
            for n in ("attention.output.LayerNorm", "output.LayerNorm"):
                s[p + n + ".weight"], s[p + n + ".bias"] = (H,), (H,)
        if family == "bert":
            s["bert.pooler.dense.weight"], s["bert.pooler.dense.bias"] = (H, H), (H,)
            s["classifier.weight"], s["classifier.bias"] = (K, H), (K,)
        else:
            s["classifier.dense.weight"], s["classifier.dense.bias"] = (H, H), (H,)
            s["classifier.out_proj.weight"], s["classifier.out_proj.bias"] = (K, H), (K,)
        return s
    s["distilbert.embeddings.word_embeddings.weight"] = (V, H)
    s["distilbert.embeddings.position_embeddings.weight"] = (P, H)
    s["distilbert.embeddings.LayerNorm.weight"] = (H,)
    s["distilbert.embeddings.LayerNorm.bias"] = (H,)
    for i in range(L):
        p = f"distilbert.transformer.layer.{i}."
        for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
            s[p + "attention." + n + ".weight"], s[p + "attention." + n + ".bias"] = (H, H), (H,)
        s[p + "ffn.lin1.weight"], s[p + "ffn.lin1.bias"] = (I, H), (I,)
        s[p + "ffn.lin2.weight"], s[p + "ffn.lin2.bias"] = (H, I), (H,)
        for n in ("sa_layer_norm", "output_layer_norm"):
            s[p + n + ".weight"], s[p + n + ".bias"] = (H,), (H,)
    s["pre_classifier.weight"], s["pre_classifier.bias"] = (H, H), (H,)
    s["classifier.weight"], s["classifier.bias"] = (K, H), (K,)
    return s


def configs():
    bert = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": V,
            "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": P, "type_vocab_size": 2, "initializer_range": 0.02,
            "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
            "classifier_dropout": None, "id2label": {"0": "neg", "1": "neu", "2": "pos"},
            "label2id": {"neg": 0, "neu": 1, "pos": 2}, "torch_dtype": "float32", "transformers_version": "4.46.0"}
    distil = {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
              "vocab_size": V, "max_position_embeddings": P, "sinusoidal_pos_embds": False, "n_layers": L,
              "n_heads": NH, "dim": H, "hidden_dim": I, "dropout": 0.1, "attention_dropout": 0.1,
              "activation": "gelu", "initializer_range": 0.02, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
              "pad_token_id": 0, "id2label": {"0": "unacceptable", "1": "acceptable"},
              "label2id": {"unacceptable": 0, "acceptable": 1}, "torch_dtype": "float32", "transformers_version": "4.46.0"}
    roberta = {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta", "vocab_size": V,
               "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I,
               "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
               "max_position_embeddings": P, "type_vocab_size": 1, "initializer_range": 0.02,
               "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
               "position_embedding_type": "absolute", "classifier_dropout": None, "problem_type": "regression",
               "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "torch_dtype": "float32",
               "transformers_version": "4.46.0"}
    return {"bert": (bert, 3), "distilbert": (distil, 2), "roberta": (roberta, 1)}


def inputs(family, pad):
    # three rows right-padded to 7: lengths 7, 4, 2; bert's second text has type id 1
    rows = [[5, 17, 23, 8, 41, 9, 12], [5, 30, 11, 6], [5, 44]]
    if family == "roberta":
        rows = [[0, 17, 23, 8, 41, 9, 2], [0, 30, 11, 2], [0, 2]]
    T = 7
    ids = torch.full((3, T), pad, dtype=torch.long)
    mask = torch.zeros(3, T, dtype=torch.long)
    tt = torch.zeros(3, T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    if family == "bert":
        tt[0, 4:7] = 1
        tt[1, 2:4] = 1
    return ids, mask, tt


def make(family, cfg, K):
    g = torch.Generator().manual_seed({"bert": 1, "distilbert": 2, "roberta": 3}[family])
    sd = {}
    for name, shape in sorted(shapes(family, K).items()):
        t = torch.randn(*shape, generator=g) * 0.2
        if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            t = 1 + t
        sd[name] = t
    pad = cfg["pad_token_id"]
    ids, mask, tt = inputs(family, pad)
    with torch.no_grad():
        h, logits = forward(family, sd, cfg, ids, mask, tt)
    d = os.path.join(OUT, family)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if family == "bert":
        full = dict(sd)
        full["bert.embeddings.position_ids"] = torch.arange(P)[None]  # the buffer older transformers saved
        torch.save(full, os.path.join(d, "pytorch_model.bin"))
    else:
        write_safetensors(os.path.join(d, "model.safetensors"), sd)
    gold = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": tt.tolist(),
            "hidden": [[[round(v, 7) for v in t] for t in row] for row in h.tolist()],
            "logits": [[round(v, 7) for v in row] for row in logits.tolist()]}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(gold, f)
    print(family, "logits", logits.tolist())


def check(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    family = cfg["model_type"]
    st = os.path.join(d, "model.safetensors")
    sd = read_safetensors(st) if os.path.exists(st) else torch.load(os.path.join(d, "pytorch_model.bin"))
    want = set(shapes(family, len(cfg["id2label"])))
    got = set(k for k in sd if not k.endswith("position_ids"))
    assert want == got, ("keys differ", sorted(want ^ got))
    with open(os.path.join(OUT, family, "golden.json")) as f:
        gold = json.load(f)
    ids, mask, tt = (torch.tensor(gold[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    with torch.no_grad():
        _, logits = forward(family, sd, cfg, ids, mask, tt)
    diff = (logits - torch.tensor(gold["logits"])).abs().max().item()
    print(f"{d}: {family} architectures {cfg['architectures']} id2label {cfg['id2label']}: {len(got)} keys as transformers names them; max |logits - golden| = {diff:.3g}")
    return diff


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2]) < 1e-5 else 1)
    for fam, (cfg, K) in configs().items():
        make(fam, cfg, K)
