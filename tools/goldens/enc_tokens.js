// enc_tokens.js makes the goldens of shared/tokenizer's WordPiece, Unigram
// and WordLevel tests: token ids, type ids of pairs and decoded text from
// Hugging Face's Rust tokenizers (the npm package "tokenizers") on a few
// thousand varied strings, for
//
//   - the real bert-base-uncased tokenizer.json (WordPiece, BertNormalizer,
//     BertPreTokenizer, TemplateProcessing, WordPiece decoder), kept whole;
//   - a real Pegasus tokenizer.json (that of a published Pegasus fine-tune:
//     Unigram over 96,103 pieces, Precompiled charsmap of SentencePiece's
//     nmt_nfkc rules as in T5/ALBERT/XLM-R, WhitespaceSplit + Metaspace),
//     kept whole (its truncation is set to null here) and gzipped;
//   - variants that swap in the other normalizers, pre-tokenizers, decoders
//     and models these families use (their JSON is stored in the goldens, so
//     the Go test applies the same change to the same real file);
//   - pegasus-deberta-v3: DeBERTa-v3's pipeline (DebertaV2Converter's
//     Strip + Precompiled + Replace, Metaspace, [CLS] A [SEP] B [SEP]) over
//     the real Pegasus model, since no real DeBERTa-v3, XLM-R or T5
//     tokenizer.json could be had (npm registry, Go modules, shared/data);
//   - unigram-small: Pegasus' first 6000 pieces plus the 256 <0xXX> byte
//     pieces, byte_fallback on, Metaspace prepend_scheme first (a fixture
//     written by this script, gzipped).
//
//   NODE_PATH=/tmp/npmtok/node_modules node tools/goldens/enc_tokens.js \
//     bert-base-uncased/tokenizer.json pegasus/tokenizer.json \
//     /path/to/shared/data shared/tokenizer/testdata/real
//
// The inputs: bert-base-uncased's tokenizer.json and the Pegasus
// tokenizer.json (both as published with their models; the test reads
// the copies under testdata/real); shared/data gives real English sentences (MRPC,
// Alpaca); the rest of the strings are written out below or drawn with a
// fixed seed from pools of accented, Korean, kana, CJK, emoji, punctuation,
// control and whitespace characters.
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { Tokenizer } = require("tokenizers");

const [bertPath, pegasusPath, dataDir, outDir] = process.argv.slice(2);

// mulberry32: a small seeded PRNG, so the strings are the same each run.
let seed = 17;
function rand() {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const fixed = [
  "", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "a", "A", ".", "...", "!?", "##", "##a", "a##b",
  "Hello world", " Hello world ", "Hello  world", "hello,world", "HELLO WORLD!", "Hello\tworld\nagain",
  "The quick brown fox jumps over the lazy dog.", "I can't believe it's not butter!", "don't do not won't",
  "naïve café résumé", "Crème brûlée à la mode", "São Paulo, Ñandú, Ångström, Øresund", "Ærøskøbing",
  "Straße", "İstanbul", "ΣΊΣΥΦΟΣ", "Ελληνικά", "Привет, мир!", "Ёлка", "عربي", "עברית", "हिन्दी", "ภาษาไทย",
  "안녕하세요", "한국어 텍스트입니다.", "가나다라마바사", "ひらがな", "カタカナ", "ｶﾀｶﾅ", "日本語のテキスト。", "漢字",
  "中文文本，标点符号！", "繁體中文", "𠀀𠀁", "𪚥", "Ⅻ ① ② ⑴", "ﬁ ﬂ ﬀ", "ＡＢＣ１２３", "x²+y³", "½ ¼ ¾", "™ © ®",
  "😀", "🤗 emoji 🤗", "👨‍👩‍👧‍👦", "👍🏽", "🇫🇷🇯🇵", "🥲 🫠 🪿", "❤️", "a\u0301", "e\u0300\u0301", "\u0301",
  "\u200b zero\u200bwidth", "\u200d", "\ufeffbom", "\u0000null", "ctrl\u0001\u0002\u001f", "\u007fdel", "\ufffd",
  "\u00ad soft hyphen", "tab\t\t\ttabs", "many      spaces", "\n\n\n", " \n \t ", "trailing   ", "   leading",
  "email@example.com", "https://huggingface.co/bert-base-uncased?x=1&y=2", "#hashtag @mention $100 50% ^_^",
  "3.14159 2,718 1e-10 -42 +7", "12345678901234567890", "2024-01-01T00:00:00Z", "(a) [b] {c} <d>", "«quoted» “smart” ‘single’",
  "— – - ‐", "…", "¿Qué? ¡Sí!", "C++ C# F# .NET", "snake_case camelCase kebab-case", "a/b\\c|d", "`code` ~tilde~",
  "[CLS] [SEP] [MASK] [PAD] [UNK]", "[CLS]text[SEP]", "hello [MASK] world", "[mask]", "<pad></s><unk>", "<mask_1> <mask_2>",
  "a".repeat(99), "a".repeat(100), "a".repeat(101), "x".repeat(250), "supercalifragilisticexpialidocious",
  "pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism", "ab".repeat(60),
  "é".repeat(101), "한".repeat(120), "日本".repeat(70), "😀".repeat(30), "word ".repeat(200),
  "Ⓐⓑⓒ", "ℌℍℎ", "㍿ ㌔", "\u2028line\u2029para", "\u0085nel", "\u000bvt\u000cff",
];

const pools = {
  ascii: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  punct: "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’—–…·•§¶†‡‰′″‹›€£¥¢©®™°±×÷",
  accent: "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿĀāĂăĄąĆćČčĎďĒēĘęĚěĞğĪīİıŁłŃńŇňŌōŐőŒœŘřŚśŞşŠšŢţŤťŪūŮůŰűŸŹźŻżŽžǎǐǒǔ",
  combining: "\u0300\u0301\u0302\u0303\u0308\u030a\u0327\u0328\u0331",
  greekcyr: "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΣΩάέήίόύώабвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗ",
  korean: "가각간갈감강개거건걸검게겨결고공과관교구국군그근글기김나남내너네노누는니다단달당대더도동두드들디라람랑래러레로루르를리마만말매머면명모무문물미바반발방배버번벌베보복본부북분불비사산살상새서선설성세소속손수순스시신실심아안알암앙애야약양어언얼엄에여역연열영예오온올와완왕외요용우운울원위유은을음의이인일임자작잘장재저전점정제조종주중지진집차찬참창채처천철청체초총최추출치카크타태터토통투트파판패퍼편평포표프피하학한할함합해했행향허현형호화확환회효후휴흐흥희힘",
  kana: "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポャュョッー",
  cjk: "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴",
  emoji: ["😀", "😂", "🥲", "🤗", "👍", "👍🏽", "❤️", "🔥", "🎉", "🇫🇷", "👨‍👩‍👧", "🫠", "🪿", "⭐", "☕", "✅", "🚀"],
  space: [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "\r\n", "   "],
  odd: ["\u0000", "\u0001", "\u001f", "\u007f", "\u200b", "\u200d", "\ufeff", "\ufffd", "\u00ad", "\u2028", "\ue000", "\ud800\udc00", "\u0378", "\u0085"],
};

function randomWord() {
  const r = rand();
  const n = 1 + Math.floor(rand() * (rand() < 0.1 ? 40 : 8));
  let s = "";
  for (let i = 0; i < n; i++) {
    if (r < 0.30) s += pick(pools.ascii);
    else if (r < 0.42) s += pick(rand() < 0.7 ? pools.ascii : pools.accent);
    else if (r < 0.48) s += pick(pools.ascii) + (rand() < 0.3 ? pick(pools.combining) : "");
    else if (r < 0.55) s += pick(pools.greekcyr);
    else if (r < 0.64) s += pick(pools.korean);
    else if (r < 0.72) s += pick(pools.kana);
    else if (r < 0.80) s += pick(pools.cjk);
    else if (r < 0.86) s += pick(pools.punct);
    else if (r < 0.91) s += pick(pools.emoji);
    else if (r < 0.95) s += pick(pools.odd);
    else s += pick(pools.ascii + pools.punct + pools.accent + pools.kana);
  }
  return s;
}

function randomString() {
  const words = Math.floor(rand() * 12);
  let s = rand() < 0.1 ? pick(pools.space) : "";
  for (let i = 0; i < words; i++) {
    if (i > 0) s += rand() < 0.8 ? " " : pick(pools.space);
    s += randomWord();
  }
  if (rand() < 0.1) s += pick(pools.space);
  return s;
}

// Real English: MRPC sentences and Alpaca instructions/outputs.
const real = [];
const mrpc = fs.readFileSync(path.join(dataDir, "glue-mrpc", "train.tsv"), "utf8").split("\n").slice(1);
for (const line of mrpc.slice(0, 400)) {
  const f = line.split("\t");
  if (f.length >= 5) real.push(f[3], f[4]);
}
const alpaca = JSON.parse(fs.readFileSync(path.join(dataDir, "alpaca-subset5000", "alpaca_5000.json"), "utf8"));
for (const ex of alpaca.slice(0, 500)) {
  real.push(ex.instruction);
  if (ex.input) real.push(ex.input);
  if (ex.output && ex.output.length < 2000) real.push(ex.output);
}

const texts = [...new Set([...fixed, ...real, ...Array.from({ length: 1500 }, randomString)])];
const pairs = [];
for (let i = 0; i < 300; i++) pairs.push([pick(texts), pick(texts)]);
for (let i = 0; i + 1 < real.length && pairs.length < 450; i += 2) pairs.push([real[i], real[i + 1]]);

const bert = JSON.parse(fs.readFileSync(bertPath, "utf8"));
const pegasus = JSON.parse(fs.readFileSync(pegasusPath, "utf8"));
pegasus.truncation = null; // the Go tokenizer ignores truncation; the goldens are of whole texts

// Variants: each replaces some top-level sections of a base file (and may
// set fields of its model). The Go test applies the same patches.
const variants = [
  { name: "bert-base-uncased", base: "bert", patch: {} },
  { name: "bert-cased-normalizer", base: "bert", patch: {
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: false, strip_accents: null, lowercase: false },
  } },
  { name: "bert-strip-no-lower", base: "bert", patch: {
    normalizer: { type: "BertNormalizer", clean_text: false, handle_chinese_chars: true, strip_accents: true, lowercase: false },
    decoder: { type: "WordPiece", prefix: "##", cleanup: false },
  } },
  { name: "bert-sequence", base: "bert", patch: {
    normalizer: { type: "Sequence", normalizers: [
      { type: "NFD" }, { type: "Lowercase" }, { type: "StripAccents" },
      { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Strip", strip_left: true, strip_right: true },
    ] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "WhitespaceSplit" }, { type: "Punctuation", behavior: "Isolated" }, { type: "Digits", individual_digits: true },
    ] },
    post_processor: { type: "BertProcessing", sep: ["[SEP]", 102], cls: ["[CLS]", 101] },
  }, model: { max_input_chars_per_word: 12 } },
  { name: "bert-nfkc-split", base: "bert", patch: {
    normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "CharDelimiterSplit", delimiter: "-" }, { type: "Whitespace" },
      { type: "Punctuation", behavior: "Contiguous" },
      { type: "Split", pattern: { Regex: "[0-9]+" }, behavior: "MergedWithPrevious", invert: false },
    ] },
    post_processor: null, decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  }, model: { continuing_subword_prefix: "##" } },
  { name: "bert-wordlevel", base: "bert", patch: {
    normalizer: { type: "Lowercase" },
    pre_tokenizer: { type: "Whitespace" },
    decoder: null,
  }, model: { type: "WordLevel", continuing_subword_prefix: null, max_input_chars_per_word: null } },
  { name: "pegasus", base: "pegasus", patch: {} },
  { name: "pegasus-metaspace-first", base: "pegasus", patch: {
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
    decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
  } },
  { name: "pegasus-nfkc-punct", base: "pegasus", patch: {
    normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Replace", pattern: { Regex: " {2,}" }, content: " " }] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true }, { type: "Punctuation", behavior: "MergedWithNext" },
    ] },
  } },
  { name: "pegasus-nmt-roberta", base: "pegasus", patch: {
    normalizer: { type: "Sequence", normalizers: [{ type: "Nmt" }, { type: "NFKC" }, { type: "Replace", pattern: { Regex: " {2,}" }, content: " " }, { type: "Lowercase" }] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Metaspace", replacement: "▁", add_prefix_space: true }, { type: "Digits", individual_digits: true }, { type: "Punctuation" },
    ] },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", 1], cls: ["<pad>", 0], trim_offsets: true, add_prefix_space: true },
  } },
  { name: "unigram-small", base: "unigram-small", patch: {} },
  // DeBERTa-v3's pipeline as transformers' DebertaV2Converter writes it
  // (do_lower_case and split_by_punct false, as microsoft/deberta-v3-*):
  // Strip, the Precompiled charsmap, Replace(" {2,}", " "); Metaspace
  // alone (prepend_scheme always); the [CLS] A [SEP] B [SEP] template with
  // type ids 0 then 1; Metaspace decoding. Over the real Pegasus Unigram
  // model and charsmap (no DeBERTa-v3 tokenizer.json could be had here);
  // [CLS] and [SEP] take Pegasus' special ids 2 and 3.
  { name: "pegasus-deberta-v3", base: "pegasus", patch: {
    normalizer: { type: "Sequence", normalizers: [
      { type: "Strip", strip_left: true, strip_right: true }, ...pegasus.normalizer.normalizers,
    ] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true }] },
    post_processor: { type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } } },
    decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
  } },
];

function clean(o) {
  // JSON.parse(JSON.stringify()) drops undefined; nulls in model fields mean "remove"
  for (const k of Object.keys(o)) if (o[k] === null) delete o[k];
  return o;
}

function build(v, bases) {
  const j = JSON.parse(JSON.stringify(bases[v.base]));
  for (const [k, val] of Object.entries(v.patch)) j[k] = val;
  if (v.model) {
    Object.assign(j.model, v.model);
    clean(j.model);
    if (j.model.type === "WordLevel") delete j.model.max_input_chars_per_word;
  }
  return j;
}

// unigram-small: Pegasus' first 6000 pieces plus the byte pieces.
const small = JSON.parse(JSON.stringify(pegasus));
small.truncation = null;
small.model.vocab = pegasus.model.vocab.slice(0, 6000);
for (let b = 0; b < 256; b++) small.model.vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, -20.0]);
small.model.byte_fallback = true;
small.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true };
small.decoder = { type: "Sequence", decoders: [
  { type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
  { type: "Strip", content: " ", start: 1, stop: 0 },
] };
fs.mkdirSync(path.join(outDir, "unigram-small"), { recursive: true });
fs.writeFileSync(path.join(outDir, "unigram-small", "tokenizer.json.gz"), zlib.gzipSync(JSON.stringify(small), { level: 9 }));

const bases = { bert, pegasus, "unigram-small": small };

(async () => {
  const out = { texts, pairs, variants: [] };
  for (const v of variants) {
    const j = build(v, bases);
    const tok = Tokenizer.fromString(JSON.stringify(j));
    // The real files get every text and pair; the variants every third
    // text and pair (the goldens stay under 2 MB).
    const stride = v.name === "pegasus" || v.name === "bert-base-uncased" ? 1 : 3;
    const cases = [];
    for (let i = 0; i < texts.length; i += stride) {
      const t = texts[i];
      const enc = await tok.encode(t, null, { addSpecialTokens: true });
      const ids = enc.getIds();
      const c = { i, ids, dec: await tok.decode(ids, true) };
      const decs = await tok.decode(ids, false); // stored only when it differs
      if (decs !== c.dec) c.decs = decs;
      if (stride === 1) c.plain = (await tok.encode(t, null, { addSpecialTokens: false })).getIds();
      cases.push(c);
    }
    const pcases = [];
    for (let i = 0; i < pairs.length; i += stride) {
      const [a, b] = pairs[i];
      const enc = await tok.encode(a, b, { addSpecialTokens: true });
      pcases.push({ i, ids: enc.getIds(), types: enc.getTypeIds() });
    }
    out.variants.push({ name: v.name, base: v.base, patch: v.patch, model: v.model || null, cases, pairs: pcases });
    console.error(v.name, cases.length, "texts", pcases.length, "pairs");
  }
  fs.writeFileSync(path.join(outDir, "enc_goldens.json.gz"), zlib.gzipSync(JSON.stringify(out), { level: 9 }));
})();
