"""Tiny DeBERTa-v2 fixtures and their logits, for shared/model's deberta.go.

    /usr/bin/python3 tools/goldens/deberta.py
    /usr/bin/python3 tools/goldens/deberta.py check DIR NAME  # read a checkpoint rl saved

`check DIR NAME` reads the config.json and model.safetensors rl saved in DIR
(RL_ENCODER_SAVE_DIR=/tmp/x go test -run TestDebertaV2SaveLoad ./shared/model
writes /tmp/x/deberta-v3 and /tmp/x/deberta-v2) with this script's names and
math, and compares its logits on fixture NAME's inputs (v3, v2).

Debian's python3-torch (1.13) has no transformers, so this implements the
math of transformers' models/deberta_v2/modeling_deberta_v2.py directly
(DebertaV2Embeddings, DisentangledSelfAttention with build_relative_position
and make_log_bucket_position, XSoftmax, DebertaV2Layer, DebertaV2Encoder's
rel_embeddings LayerNorm, ContextPooler, DebertaV2ForSequenceClassification
in eval mode), in its own (B*heads) layout, on random weights with
transformers' tensor names. Writes shared/model/testdata/deberta/NAME/
(config.json, model.safetensors, expected.json: input_ids, attention_mask,
token_type_ids, logits (B, num_labels), hidden (B, T, H) of the last layer):
  v3: DeBERTa-v3's layout (position_buckets, share_att_key, norm_rel_ebd
      layer_norm, no absolute positions, no token types), num_labels 1
      (a regression head, as encoder reward models);
  v2: pos_key_proj/pos_query_proj (share_att_key false), no buckets,
      absolute positions, token types, embedding_size != hidden_size
      (embed_proj), "p2c|c2p" as a string, 3 labels.
Each batch pads rows on the right with pad_token_id 0 and a zero mask.
buckets.json: make_log_bucket_position of every distance -2047..2047 for
(position_buckets, max_relative_positions) 256/512, 128/512 and 8/32.
"""
import json
import math
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "model", "testdata", "deberta")


def write_safetensors(path, tensors):
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


def log_bucket(rel, bucket_size, max_position):
    # make_log_bucket_position
    sign = torch.sign(rel)
    mid = bucket_size // 2
    abs_pos = torch.where((rel < mid) & (rel > -mid), torch.tensor(mid - 1).type_as(rel), torch.abs(rel))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, rel.type_as(log_pos), log_pos * sign)


def rel_position(T, buckets, max_pos):
    # build_relative_position(T, T)
    ids = torch.arange(T)
    rel = ids[:, None] - ids[None, :]
    if buckets > 0 and max_pos > 0:
        rel = log_bucket(rel, buckets, max_pos)
    return rel.to(torch.long)


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def ln(x, sd, name, eps):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], sd[name + ".weight"], sd[name + ".bias"], eps)


def lin(x, sd, name):
    return x @ sd[name + ".weight"].T + sd[name + ".bias"]


def forward(cfg, sd, ids, mask, types):
    B, T = ids.shape
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // nh
    eps = cfg["layer_norm_eps"]
    pat = cfg["pos_att_type"]
    if isinstance(pat, str):
        pat = [x.strip() for x in pat.lower().split("|")]
    p = "deberta."
    x = sd[p + "embeddings.word_embeddings.weight"][ids]
    if cfg.get("position_biased_input", True):
        x = x + sd[p + "embeddings.position_embeddings.weight"][torch.arange(T)][None]
    if cfg.get("type_vocab_size", 0) > 0:
        x = x + sd[p + "embeddings.token_type_embeddings.weight"][types]
    if cfg.get("embedding_size", H) != H:
        x = x @ sd[p + "embeddings.embed_proj.weight"].T
    x = ln(x, sd, p + "embeddings.LayerNorm", eps)
    x = x * mask[:, :, None].float()
    att_mask = (mask[:, None, None, :] * mask[:, None, :, None]).bool()  # (B, 1, T, T)
    buckets = cfg.get("position_buckets", -1)
    max_rel = cfg.get("max_relative_positions", -1)
    if max_rel < 1:
        max_rel = cfg["max_position_embeddings"]
    span = buckets if buckets > 0 else max_rel
    rel = sd[p + "encoder.rel_embeddings.weight"]
    if "layer_norm" in cfg.get("norm_rel_ebd", "none"):
        rel = ln(rel, sd, p + "encoder.LayerNorm", eps)
    rel = rel[: 2 * span]
    relpos = rel_position(T, buckets, max_rel)
    sf = 1 + len(pat)

    def split(t):  # (B, T, H) -> (B*nh, T, d)
        return t.view(t.shape[0], t.shape[1], nh, d).permute(0, 2, 1, 3).reshape(-1, t.shape[1], d)

    for i in range(cfg["num_hidden_layers"]):
        q_ = p + "encoder.layer.%d.attention.self." % i
        q, k, v = split(lin(x, sd, q_ + "query_proj")), split(lin(x, sd, q_ + "key_proj")), split(lin(x, sd, q_ + "value_proj"))
        scale = torch.sqrt(torch.tensor(d, dtype=torch.float) * sf)
        s = torch.bmm(q, k.transpose(-1, -2)) / scale
        share = cfg.get("share_att_key", False)
        if "c2p" in pat:
            pk = split(lin(rel[None], sd, q_ + ("key_proj" if share else "pos_key_proj"))).repeat(B, 1, 1)
            c2p = torch.bmm(q, pk.transpose(-1, -2))
            idx = torch.clamp(relpos + span, 0, 2 * span - 1)
            s = s + torch.gather(c2p, -1, idx.expand(B * nh, T, T)) / scale
        if "p2c" in pat:
            pq = split(lin(rel[None], sd, q_ + ("query_proj" if share else "pos_query_proj"))).repeat(B, 1, 1)
            p2c = torch.bmm(k, pq.transpose(-1, -2))
            idx = torch.clamp(-relpos + span, 0, 2 * span - 1)
            s = s + torch.gather(p2c, -1, idx.expand(B * nh, T, T)).transpose(-1, -2) / scale
        s = s.view(B, nh, T, T)
        s = s.masked_fill(~att_mask, torch.finfo(s.dtype).min)
        prob = torch.softmax(s, -1).masked_fill(~att_mask, 0)
        ctx = torch.bmm(prob.view(B * nh, T, T), v).view(B, nh, T, d).permute(0, 2, 1, 3).reshape(B, T, H)
        o_ = p + "encoder.layer.%d." % i
        h = ln(lin(ctx, sd, o_ + "attention.output.dense") + x, sd, o_ + "attention.output.LayerNorm", eps)
        x = ln(lin(gelu(lin(h, sd, o_ + "intermediate.dense")), sd, o_ + "output.dense") + h, sd, o_ + "output.LayerNorm", eps)
    pooled = gelu(lin(x[:, 0], sd, "pooler.dense"))
    return x, lin(pooled, sd, "classifier")


def weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    E = cfg.get("embedding_size", H)
    nl = len(cfg.get("id2label", {"0": 0, "1": 1}))
    sd = {}

    def w(name, *shape, std=0.2):
        sd[name] = torch.randn(*shape, generator=g) * std

    def norm(name, n):  # non-trivial norms: exercise weight and bias
        sd[name + ".weight"] = 1 + 0.1 * torch.randn(n, generator=g)
        sd[name + ".bias"] = 0.1 * torch.randn(n, generator=g)

    def linear(name, o, i, bias=True):
        w(name + ".weight", o, i)
        if bias:
            w(name + ".bias", o, std=0.05)

    p = "deberta."
    w(p + "embeddings.word_embeddings.weight", V, E, std=1.0)
    if cfg.get("position_biased_input", True):
        w(p + "embeddings.position_embeddings.weight", cfg["max_position_embeddings"], E, std=1.0)
    if cfg.get("type_vocab_size", 0) > 0:
        w(p + "embeddings.token_type_embeddings.weight", cfg["type_vocab_size"], E, std=1.0)
    if E != H:
        w(p + "embeddings.embed_proj.weight", H, E)
    norm(p + "embeddings.LayerNorm", H)
    pat = cfg["pos_att_type"]
    for i in range(cfg["num_hidden_layers"]):
        q_ = p + "encoder.layer.%d." % i
        for n in ("query_proj", "key_proj", "value_proj"):
            linear(q_ + "attention.self." + n, H, H)
        if not cfg.get("share_att_key", False):
            if "c2p" in pat:
                linear(q_ + "attention.self.pos_key_proj", H, H)
            if "p2c" in pat:
                linear(q_ + "attention.self.pos_query_proj", H, H)
        linear(q_ + "attention.output.dense", H, H)
        norm(q_ + "attention.output.LayerNorm", H)
        linear(q_ + "intermediate.dense", I, H)
        linear(q_ + "output.dense", H, I)
        norm(q_ + "output.LayerNorm", H)
    buckets = cfg.get("position_buckets", -1)
    max_rel = cfg.get("max_relative_positions", -1)
    if max_rel < 1:
        max_rel = cfg["max_position_embeddings"]
    w(p + "encoder.rel_embeddings.weight", 2 * (buckets if buckets > 0 else max_rel), H, std=1.0)
    if "layer_norm" in cfg.get("norm_rel_ebd", "none"):
        norm(p + "encoder.LayerNorm", H)
    linear("pooler.dense", H, H)
    linear("classifier", nl, H)
    return sd


BASE = {
    "model_type": "deberta-v2", "architectures": ["DebertaV2ForSequenceClassification"],
    "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 32, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-7,
    "pad_token_id": 0, "pooler_hidden_act": "gelu", "pooler_dropout": 0, "relative_attention": True,
    "torch_dtype": "float32",
}
CONFIGS = {
    "v3": dict(BASE, max_position_embeddings=64, position_buckets=8, max_relative_positions=32,
               pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
               position_biased_input=False, type_vocab_size=0, pooler_hidden_size=16,
               id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}),
    "v2": dict(BASE, max_position_embeddings=24, max_relative_positions=-1, pos_att_type="p2c|c2p",
               share_att_key=False, position_biased_input=True, type_vocab_size=2, embedding_size=12,
               id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2}),
}
LENGTHS = [13, 9, 5]  # rows padded to 13; |q - k| up to 12 > mid: log buckets

# v3 is also a complete reward-model folder for reward.LoadScorer: a
# DeBERTa-v3-style Unigram tokenizer.json (WhitespaceSplit + Metaspace,
# the [CLS] A [SEP] B [SEP] template) whose pieces are whole words, and
# rows shaped as tokenizer(prompt, completion) encodes them.
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two three four five six seven "
         "eight nine zero").split()
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]


def tokenizer_json():
    seq = lambda n, t: {"Sequence": {"id": n, "type_id": t}}
    sep = lambda t: {"SpecialToken": {"id": "[SEP]", "type_id": t}}
    cls = {"SpecialToken": {"id": "[CLS]", "type_id": 0}}
    meta = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True, "prepend_scheme": "always"}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(SPECIALS)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"String": "``"}, "content": '"'},
            {"type": "Replace", "pattern": {"String": "''"}, "content": '"'}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, meta]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [cls, seq("A", 0), sep(0)],
            "pair": [cls, seq("A", 0), sep(0), seq("B", 1), sep(1)],
            "special_tokens": {t: {"id": t, "ids": [SPECIALS.index(t)], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": meta,
        "model": {"type": "Unigram", "unk_id": 3, "byte_fallback": False,
                  "vocab": [[t, 0.0] for t in SPECIALS] + [["\u2581" + w, -5.0 - 0.01 * i] for i, w in enumerate(WORDS)]},
    }


def pair_row(n, g, vocab):
    a = (n - 3) // 2
    b = n - 3 - a
    w = lambda k: torch.randint(len(SPECIALS), vocab, (k,), generator=g).tolist()
    return [1] + w(a) + [2] + w(b) + [2], [0] * (a + 2) + [1] * (b + 1)

def check(d, name):
    """Read a DeBERTa-v2 checkpoint rl saved (config.json, model.safetensors)
    as transformers' DebertaV2ForSequenceClassification would: its keys must
    be exactly those this script names for the config, and its logits on
    fixture NAME's inputs equal the fixture's."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "deberta-v2" and cfg["architectures"] == ["DebertaV2ForSequenceClassification"], cfg
    from encoders import read_safetensors  # the loader of the other encoders' check

    sd = read_safetensors(os.path.join(d, "model.safetensors"))
    want = set(weights(cfg, 0))
    assert want == set(sd), ("keys differ", sorted(want ^ set(sd)))
    with open(os.path.join(OUT, name, "expected.json")) as f:
        gold = json.load(f)
    ids, mask, tt = (torch.tensor(gold[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    with torch.no_grad():
        _, logits = forward(cfg, sd, ids, mask, tt)
    diff = (logits - torch.tensor(gold["logits"])).abs().max().item()
    print(f"{d}: architectures {cfg['architectures']} id2label {cfg['id2label']}: {len(sd)} keys as transformers names them; max |logits - golden| = {diff:.3g}")
    return diff


def make_all():
    torch.manual_seed(0)
    for seed, (name, cfg) in enumerate(sorted(CONFIGS.items())):
        sd = weights(cfg, 100 + seed)
        g = torch.Generator().manual_seed(200 + seed)
        T = max(LENGTHS)
        ids = torch.zeros(len(LENGTHS), T, dtype=torch.long)
        mask = torch.zeros(len(LENGTHS), T, dtype=torch.long)
        types = torch.zeros(len(LENGTHS), T, dtype=torch.long)
        for b, n in enumerate(LENGTHS):
            if name == "v3":
                row, tt = pair_row(n, g, cfg["vocab_size"])
                ids[b, :n] = torch.tensor(row)
            else:
                ids[b, :n] = torch.randint(1, cfg["vocab_size"], (n,), generator=g)
                types[b, n // 2 : n] = 1
            mask[b, :n] = 1
        with torch.no_grad():
            hidden, logits = forward(cfg, sd, ids, mask, types)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(d, "model.safetensors"), sd)
        if name == "v3":
            assert len(SPECIALS) + len(WORDS) == cfg["vocab_size"]
            with open(os.path.join(d, "tokenizer.json"), "w") as f:
                json.dump(tokenizer_json(), f, indent=1, ensure_ascii=False)
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "DebertaV2Tokenizer", "pad_token": "[PAD]", "cls_token": "[CLS]",
                           "sep_token": "[SEP]", "unk_token": "[UNK]",
                           "model_max_length": 512}, f, indent=1)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": types.tolist(),
                       "logits": logits.tolist(), "hidden": hidden.tolist(),
                       "relative_positions": rel_position(T, cfg.get("position_buckets", -1),
                                                         cfg.get("max_relative_positions", -1)).tolist()}, f)
        print(name, "logits", logits.tolist())

    # make_log_bucket_position at DeBERTa-v3's sizes (position_buckets 256 and
    # max_relative_positions 512, as -1 resolves with max_position_embeddings
    # 512), and two others, for every distance of a 2048-token input
    table = {}
    for buckets, max_pos in [(256, 512), (128, 512), (8, 32)]:
        rel = torch.arange(-2047, 2048)
        table["%d/%d" % (buckets, max_pos)] = log_bucket(rel, buckets, max_pos).to(torch.long).tolist()
    with open(os.path.join(OUT, "buckets.json"), "w") as f:
        json.dump({"from": -2047, "buckets": table}, f)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3]) < 1e-5 else 1)
    make_all()
