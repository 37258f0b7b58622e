// Package tokenizer loads, runs, trains and saves Hugging Face tokenizer.json tokenizers.
package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names of a Hugging Face tokenizer directory.
const (
	TokenizerFile     = "tokenizer.json"
	ConfigFile        = "tokenizer_config.json"
	SpecialTokensFile = "special_tokens_map.json"
)

// Tokenizer turns text into token ids and back. It is immutable and safe
// for concurrent use.
//
// It implements the tokenizers pipeline itself, matching Hugging Face's
// ids: models BPE (GPT-2 style byte-level, Llama 3/Qwen style
// Split+ByteLevel, Llama 2/Mistral style with byte fallback), WordPiece
// (BERT), WordLevel and Unigram (T5, ALBERT, XLM-R, DeBERTa-v3, Pegasus);
// normalizers BertNormalizer, Precompiled (SentencePiece's charsmap), Nmt,
// Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip and
// StripAccents; pre-tokenizers BertPreTokenizer, ByteLevel, Metaspace,
// Split, Punctuation, Digits, Whitespace, WhitespaceSplit,
// CharDelimiterSplit and Sequence; post-processors TemplateProcessing,
// BertProcessing, RobertaProcessing, ByteLevel and Sequence (with pairs and
// type ids: EncodePair); decoders WordPiece, ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, BPEDecoder and Sequence. A tokenizer.json with
// any other component fails to load, naming it. The truncation and padding
// settings of tokenizer.json are ignored.
type Tokenizer struct {
	native   *pipeline      // the tokenizers pipeline of tokenizer.json
	fileData []byte         // tokenizer.json as loaded or generated
	special  map[int]bool   // ids of special added tokens
	tokToID  map[string]int // model vocabulary and added tokens
	idToTok  map[int]string // inverse of tokToID
	size     int            // largest id + 1
	prefix   []int          // ids put before the text by Encode(..., true)
	suffix   []int          // ids put after it
	specials [numSpecial]specialToken

	chatTemplate   string
	modelMaxLength int
	addBOS, addEOS *bool
	cleanUp        bool // clean_up_tokenization_spaces of tokenizer_config.json

	config     map[string]json.RawMessage // tokenizer_config.json, nil when absent
	specialMap map[string]json.RawMessage // special_tokens_map.json, nil when absent
	companions map[string][]byte          // CompanionFiles found next to tokenizer.json, by name
	jinja      bool                       // chatTemplate came from chat_template.jinja
}

// CompanionFiles are the files of a tokenizer directory besides
// tokenizer.json and the two configs that transformers, TGI, vLLM or
// llama.cpp read: the sentencepiece model of slow Llama/Gemma tokenizers,
// GPT-2's vocab.json and merges.txt, and the chat template file of
// transformers >= 4.43. Load keeps them and Save writes them again.
var CompanionFiles = []string{SentencePieceFile, VocabFile, MergesFile, "chat_template.jinja"}

// The special tokens a Tokenizer tracks, in their config key order.
const (
	bosIdx = iota
	eosIdx
	unkIdx
	padIdx
	numSpecial
)

var specialKeys = [numSpecial]string{"bos_token", "eos_token", "unk_token", "pad_token"}

type specialToken struct {
	content string
	id      int // -1 when absent
}

// fileJSON is the part of tokenizer.json the package reads.
type fileJSON struct {
	Version       string       `json:"version"`
	AddedTokens   []addedToken `json:"added_tokens"`
	Normalizer    obj          `json:"normalizer"`
	PreTokenizer  obj          `json:"pre_tokenizer"`
	PostProcessor obj          `json:"post_processor"`
	Decoder       obj          `json:"decoder"`
	Model         any          `json:"model"`
}

// LoadFile loads a bare tokenizer.json. Without tokenizer_config.json the
// special tokens are inferred: BOS and EOS are the special tokens the
// post-processor puts before and after the text, and when the tokenizer has
// a single special token (GPT-2's <|endoftext|>) it is both BOS and EOS; UNK
// is the model's unk_token.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", path, unwrapPath(err))
	}
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", path, err)
	}
	t.inferSpecials(nil)
	return t, nil
}

// Load loads the tokenizer of a Hugging Face model directory: tokenizer.json
// plus, when present, tokenizer_config.json and special_tokens_map.json (whose
// entries win, as in transformers) for the special tokens, chat_template
// (also read from chat_template.jinja or chat_template.json),
// model_max_length and add_bos_token/add_eos_token. An explicit
// add_bos_token or add_eos_token replaces the BOS or EOS side of the
// tokenizer.json post-processor, as transformers' LlamaTokenizerFast does.
// Special tokens missing from both files are inferred as in LoadFile.
//
// Without tokenizer.json, the slow tokenizer files are converted as
// transformers converts them: GPT-2's vocab.json and merges.txt
// (convertSlowBPE), else a Llama/Mistral-style SentencePiece BPE
// tokenizer.model (convertSentencePiece); Save then writes tokenizer.json.
func Load(dir string) (*Tokenizer, error) {
	slow := false
	var defaults map[string]json.RawMessage // the slow tokenizer's implied config
	t, err := LoadFile(filepath.Join(dir, TokenizerFile))
	if err != nil {
		// no tokenizer.json: GPT-2-style slow files or a SentencePiece
		// model, converted as transformers converts them (Save then writes
		// tokenizer.json)
		if _, statErr := os.Stat(filepath.Join(dir, TokenizerFile)); !errors.Is(statErr, fs.ErrNotExist) {
			return nil, err
		}
		data, cerr := convertSlowBPE(dir)
		if cerr != nil {
			return nil, cerr
		}
		what := VocabFile + " and " + MergesFile
		if data == nil {
			// a Llama/Mistral-style SentencePiece BPE model
			if data, defaults, cerr = convertSentencePiece(dir); cerr != nil {
				return nil, cerr
			}
			what = SentencePieceFile
		}
		if data == nil {
			return nil, fmt.Errorf("tokenizer: load %s: no such file, nor GPT-2-style %s and %s, nor a SentencePiece %s in %s: save the tokenizer with transformers (tokenizer.save_pretrained) to get tokenizer.json", filepath.Join(dir, TokenizerFile), VocabFile, MergesFile, SentencePieceFile, dir)
		}
		if t, err = fromJSON(data); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: converting %s: %w", dir, what, err)
		}
		slow = true
	}
	if t.config, err = readJSONObject(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, err
	}
	if t.specialMap, err = readJSONObject(filepath.Join(dir, SpecialTokensFile)); err != nil {
		return nil, err
	}
	if slow && t.config == nil && t.specialMap == nil {
		if defaults != nil {
			t.config = defaults
		} else if _, ok := t.tokToID[gpt2Special]; ok {
			t.config = gpt2Defaults()
		}
	}
	if defaults != nil && t.config != nil { // LlamaTokenizer's bos, eos and unk when the configs name none
		for _, key := range specialKeys {
			if _, ok := t.config[key]; !ok && t.specialMap[key] == nil && defaults[key] != nil {
				t.config[key] = defaults[key]
			}
		}
	}
	if err := t.applyConfig(dir); err != nil {
		return nil, err
	}
	return t, nil
}

// readJSONObject reads a JSON object file; a missing file gives nil.
func readJSONObject(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", path, unwrapPath(err))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", path, err)
	}
	if m == nil {
		return nil, fmt.Errorf("tokenizer: load %s: not a JSON object", path)
	}
	return m, nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fromJSON builds a Tokenizer from tokenizer.json bytes.
func fromJSON(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Model == nil {
		return nil, errors.New("no model")
	}
	t := &Tokenizer{
		fileData: data,
		special:  map[int]bool{},
		idToTok:  map[int]string{},
	}
	for i := range t.specials {
		t.specials[i].id = -1
	}
	var err error
	if t.tokToID, err = modelVocab(f.Model); err != nil {
		return nil, err
	}
	for tok, id := range t.tokToID {
		t.idToTok[id] = tok
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has negative id %d", a.Content, a.ID)
		}
		t.tokToID[a.Content] = a.ID
		t.idToTok[a.ID] = a.Content
		if a.Special {
			t.special[a.ID] = true
		}
	}
	for id := range t.idToTok {
		t.size = max(t.size, id+1)
	}

	if t.native, err = buildPipeline(&f, f.AddedTokens); err != nil {
		return nil, err
	}
	t.prefix, t.suffix = t.native.prefix, t.native.suffix
	if m, ok := f.Model.(obj); ok {
		if unk, ok := str(m, "unk_token"); ok {
			if id, ok := t.tokToID[unk]; ok {
				t.specials[unkIdx] = specialToken{content: unk, id: id}
			}
		}
		if u, ok := t.native.model.(*unigramModel); ok && u.unk >= 0 { // Unigram names it by unk_id
			t.specials[unkIdx] = specialToken{content: t.idToTok[u.unk], id: u.unk}
		}
	}
	return t, nil
}

// modelVocab returns the model's token to id map: an object for BPE,
// WordPiece and WordLevel, a list of [token, score] for Unigram.
func modelVocab(model any) (map[string]int, error) {
	m, ok := model.(obj)
	if !ok {
		return nil, errors.New("model is not an object")
	}
	switch v := m["vocab"].(type) {
	case obj:
		out := make(map[string]int, len(v))
		for tok, x := range v {
			f, ok := x.(float64)
			if !ok || f < 0 || f != math.Trunc(f) {
				return nil, fmt.Errorf("model.vocab[%q] is not a token id", tok)
			}
			out[tok] = int(f)
		}
		return out, nil
	case []any:
		out := make(map[string]int, len(v))
		for i, x := range v {
			entry, _ := x.([]any)
			if len(entry) == 0 {
				return nil, fmt.Errorf("model.vocab[%d] is not a [token, score] pair", i)
			}
			tok, ok := entry[0].(string)
			if !ok {
				return nil, fmt.Errorf("model.vocab[%d] token is not a string", i)
			}
			out[tok] = i
		}
		return out, nil
	default:
		return nil, errors.New("model has no vocab")
	}
}

// applyConfig reads the settings of tokenizer_config.json and
// special_tokens_map.json.
func (t *Tokenizer) applyConfig(dir string) error {
	cfgPath := filepath.Join(dir, ConfigFile)
	present := map[string]bool{}
	for i, key := range specialKeys {
		raw, path := t.specialMap[key], filepath.Join(dir, SpecialTokensFile)
		if raw == nil {
			raw, path = t.config[key], cfgPath
		}
		if raw == nil {
			continue
		}
		present[key] = true
		content, err := tokenContent(raw)
		if err != nil {
			return fmt.Errorf("tokenizer: load %s: %s: %w", path, key, err)
		}
		if content == "" {
			t.specials[i] = specialToken{id: -1}
			continue
		}
		id, ok := t.tokToID[content]
		if !ok {
			return fmt.Errorf("tokenizer: load %s: %s %q is not in the vocabulary", path, key, content)
		}
		t.specials[i] = specialToken{content: content, id: id}
	}
	t.inferSpecials(present)

	for _, name := range CompanionFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("tokenizer: load %s: %w", filepath.Join(dir, name), unwrapPath(err))
		}
		if t.companions == nil {
			t.companions = map[string][]byte{}
		}
		t.companions[name] = data
	}
	// As transformers' from_pretrained: chat_template.jinja takes priority
	// over tokenizer_config.json's chat_template.
	if data, ok := t.companions["chat_template.jinja"]; ok {
		t.chatTemplate, t.jinja = string(data), true
	} else if raw := t.config["chat_template"]; raw != nil {
		tmpl, err := chatTemplate(raw)
		if err != nil {
			return fmt.Errorf("tokenizer: load %s: chat_template: %w", cfgPath, err)
		}
		t.chatTemplate = tmpl
	} else if m, err := readJSONObject(filepath.Join(dir, "chat_template.json")); err != nil {
		return err
	} else if m["chat_template"] != nil {
		tmpl, err := chatTemplate(m["chat_template"])
		if err != nil {
			return fmt.Errorf("tokenizer: load %s: chat_template: %w", filepath.Join(dir, "chat_template.json"), err)
		}
		t.chatTemplate = tmpl
	}

	if raw := t.config["model_max_length"]; raw != nil {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil && string(raw) != "null" {
			return fmt.Errorf("tokenizer: load %s: model_max_length: %w", cfgPath, err)
		}
		// transformers writes int(1e30) for "no limit".
		if f > 0 && f < 1<<53 {
			t.modelMaxLength = int(f)
		}
	}
	for key, dst := range map[string]**bool{"add_bos_token": &t.addBOS, "add_eos_token": &t.addEOS} {
		raw := t.config[key]
		if raw == nil || string(raw) == "null" {
			continue
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("tokenizer: load %s: %s: %w", cfgPath, key, err)
		}
		*dst = &b
	}
	if t.addBOS != nil || t.addEOS != nil {
		t.overridePostProcessor()
	}
	if raw := t.config["clean_up_tokenization_spaces"]; raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &t.cleanUp); err != nil {
			return fmt.Errorf("tokenizer: load %s: clean_up_tokenization_spaces: %w", cfgPath, err)
		}
	}
	return nil
}

// overridePostProcessor applies explicit add_bos_token/add_eos_token.
func (t *Tokenizer) overridePostProcessor() {
	if t.addBOS != nil {
		t.prefix = nil
		if *t.addBOS && t.BOS() >= 0 {
			t.prefix = []int{t.BOS()}
		}
	}
	if t.addEOS != nil {
		t.suffix = nil
		if *t.addEOS && t.EOS() >= 0 {
			t.suffix = []int{t.EOS()}
		}
	}
}

// inferSpecials fills BOS and EOS from the post-processor or a lone special
// token, and PAD from a special [PAD] token, skipping the keys in
// present (set, possibly to null, by a config).
func (t *Tokenizer) inferSpecials(present map[string]bool) {
	set := func(idx, id int) {
		if present[specialKeys[idx]] || t.specials[idx].id >= 0 || id < 0 {
			return
		}
		t.specials[idx] = specialToken{content: t.idToTok[id], id: id}
	}
	if len(t.prefix) > 0 {
		set(bosIdx, t.prefix[0])
	}
	if len(t.suffix) > 0 {
		set(eosIdx, t.suffix[len(t.suffix)-1])
	}
	var lone []int
	for id := range t.special {
		if id != t.specials[unkIdx].id {
			lone = append(lone, id)
		}
	}
	if len(lone) == 1 {
		set(bosIdx, lone[0])
		set(eosIdx, lone[0])
	}
	// BERT-style vocabularies have a special [PAD] token, BertTokenizer's
	// default pad_token: without a config naming pad_token it is the pad
	// rather than PAD's EOS fallback ([SEP]). (<pad> is left alone: in
	// Llama-style files transformers leaves pad_token unset.)
	if id, ok := t.tokToID["[PAD]"]; ok && t.special[id] {
		set(padIdx, id)
	}
}

// tokenContent reads a special token given as a string, an AddedToken
// object {"content": ...} or null ("").
func tokenContent(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case obj:
		if s, ok := v["content"].(string); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s is neither a string nor an object with a content string", raw)
}

// chatTemplate reads a template given as a string or as a list of
// {"name", "template"}, taking the one named "default" (else the first).
func chatTemplate(raw json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == nil {
			return "", nil
		}
		return *s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errors.New("neither a string nor a list of {name, template}")
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}

// Encode returns the token ids of text. With addSpecialTokens the
// post-processor's special tokens (Llama's BOS, BERT's CLS/SEP) are added;
// GPT-2 style tokenizers add none. Added tokens written in text (e.g.
// "<|endoftext|>") are always recognised.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) ([]int, error) {
	ids := make([]int, 0, len(text)/3+len(t.prefix)+len(t.suffix))
	if addSpecialTokens {
		ids = append(ids, t.prefix...)
	}
	ids, err := t.encodeText(text, ids)
	if err != nil {
		return nil, err
	}
	if addSpecialTokens {
		ids = append(ids, t.suffix...)
	}
	return ids, nil
}

// encodeText appends the ids of text, without special tokens, to ids.
func (t *Tokenizer) encodeText(text string, ids []int) ([]int, error) {
	n := len(ids)
	ids = t.native.encode(text, ids)
	if t.native.mayFail && slices.Contains(ids[n:], noUnk) {
		return nil, errors.New("tokenizer: encode: the text has a character that no piece of the Unigram model covers, and tokenizer.json's model has no unk_id")
	}
	return ids, nil
}

// EncodePair returns the ids and token type ids of a pair of texts (a
// sentence pair for classification, as BERT's [CLS] a [SEP] b [SEP] with
// type ids 0 for the first part and 1 for the second), as Hugging Face's
// tokenizer(a, b) puts them by the post-processor's pair template. Without
// special tokens the ids are those of a then b, the type ids those the
// template gives each sequence.
func (t *Tokenizer) EncodePair(a, b string, addSpecialTokens bool) (ids, typeIDs []int, err error) {
	if t.native.pairErr != nil {
		return nil, nil, fmt.Errorf("tokenizer: encode pair: post_processor: %w", t.native.pairErr)
	}
	var seqs [2][]int
	for i, s := range []string{a, b} {
		if seqs[i], err = t.encodeText(s, nil); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range t.native.pair {
		part := p.ids
		if p.seq >= 0 {
			part = seqs[p.seq]
		} else if !addSpecialTokens {
			continue
		}
		ids = append(ids, part...)
		for range part {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs, nil
}

// PairTemplate puts the ids of two texts (encoded without special tokens,
// already truncated) into the post-processor's pair template, as
// EncodePair does with special tokens: BERT's [CLS] a [SEP] b [SEP], type
// ids 0 then 1.
func (t *Tokenizer) PairTemplate(a, b []int) (ids, typeIDs []int, err error) {
	if t.native.pairErr != nil {
		return nil, nil, fmt.Errorf("tokenizer: encode pair: post_processor: %w", t.native.pairErr)
	}
	seqs := [2][]int{a, b}
	for _, p := range t.native.pair {
		part := p.ids
		if p.seq >= 0 {
			part = seqs[p.seq]
		}
		ids = append(ids, part...)
		for range part {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs, nil
}

// WithSpecials puts the post-processor's special tokens around the ids of
// one text (BERT's [CLS] ids [SEP]), as Encode with addSpecialTokens does.
func (t *Tokenizer) WithSpecials(ids []int) []int {
	out := make([]int, 0, len(t.prefix)+len(ids)+len(t.suffix))
	return append(append(append(out, t.prefix...), ids...), t.suffix...)
}

// NumSpecialTokens is the number of special tokens the post-processor adds
// to one text (pair false) or to a pair (transformers'
// num_special_tokens_to_add): what truncation to max_length leaves room for.
func (t *Tokenizer) NumSpecialTokens(pair bool) int {
	if !pair {
		return len(t.prefix) + len(t.suffix)
	}
	n := 0
	for _, p := range t.native.pair {
		if p.seq < 0 {
			n += len(p.ids)
		}
	}
	return n
}

// EncodeWithEOS encodes text with eos appended as TRL appends it: the eos
// token's text added to the string (unless text already ends with it)
// before tokenising. When that text does not encode to the eos id (a
// tokenizer whose eos is no added token), the id is appended to the
// encoding of text instead. eos < 0 encodes text alone.
func (t *Tokenizer) EncodeWithEOS(text string, eos int, addSpecialTokens bool) ([]int, error) {
	if eos < 0 {
		return t.Encode(text, addSpecialTokens)
	}
	if s, ok := t.IDToToken(eos); ok {
		full := text
		if !strings.HasSuffix(full, s) {
			full += s
		}
		ids, err := t.Encode(full, addSpecialTokens)
		if err != nil || slices.Contains(ids, eos) {
			return ids, err
		}
	}
	ids, err := t.Encode(text, addSpecialTokens)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 || ids[len(ids)-1] != eos {
		ids = append(ids, eos)
	}
	return ids, nil
}

// Decode returns the text of ids, leaving out special tokens when
// skipSpecialTokens is set, as transformers' tokenizer.decode does: it
// skips ids that have no token (a model's embedding matrix is often padded
// past the vocabulary), and when tokenizer_config.json sets
// clean_up_tokenization_spaces it applies CleanUpTokenization.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) (string, error) {
	s, err := t.decode(ids, skipSpecialTokens)
	if err == nil && t.cleanUp {
		s = CleanUpTokenization(s)
	}
	return s, err
}

// CleanUpTokenizationSpaces reports tokenizer_config.json's
// clean_up_tokenization_spaces (false when absent, transformers' default).
func (t *Tokenizer) CleanUpTokenizationSpaces() bool { return t.cleanUp }

// cleanUpReplacer is transformers' clean_up_tokenization
// (tokenization_utils_base.py), its replacements in its order.
var cleanUpReplacer = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

// CleanUpTokenization removes the spaces before punctuation and English
// contractions that word-level tokenizers leave, as transformers'
// clean_up_tokenization does: each replacement in turn over the whole text.
func CleanUpTokenization(s string) string {
	for _, r := range cleanUpReplacer {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// decode is Decode without the clean-up.
func (t *Tokenizer) decode(ids []int, skipSpecialTokens bool) (string, error) {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		tok, ok := t.idToTok[id]
		if !ok || skipSpecialTokens && t.special[id] {
			continue
		}
		toks = append(toks, tok)
	}
	return t.native.decode(toks), nil
}

// VocabSize returns the number of token ids including added tokens: the
// largest id + 1 (the vocabularies of Hugging Face files are contiguous,
// so this is also len(tokenizer) in transformers).
func (t *Tokenizer) VocabSize() int { return t.size }

// TokenToID returns the id of a token (a vocabulary entry such as "Ġworld",
// not text).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	id, ok := t.tokToID[tok]
	return id, ok
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	tok, ok := t.idToTok[id]
	return tok, ok
}

// IsSpecial reports whether id is a special added token (one Decode skips).
func (t *Tokenizer) IsSpecial(id int) bool { return t.special[id] }

// BOS returns the beginning-of-sequence token id, or -1.
func (t *Tokenizer) BOS() int { return t.specials[bosIdx].id }

// EOS returns the end-of-sequence token id, or -1.
func (t *Tokenizer) EOS() int { return t.specials[eosIdx].id }

// UNK returns the unknown token id, or -1.
func (t *Tokenizer) UNK() int { return t.specials[unkIdx].id }

// PAD returns the padding token id. Without a pad token it falls back to
// EOS, as TRL does (tokenizer.pad_token = tokenizer.eos_token), so it is -1
// only when both are absent.
func (t *Tokenizer) PAD() int {
	if t.specials[padIdx].id >= 0 {
		return t.specials[padIdx].id
	}
	return t.EOS()
}

// Fingerprint is a hash of everything that decides the tokenizer's ids:
// tokenizer.json and the effective tokenizer_config.json and
// special_tokens_map.json (add_bos_token, special tokens, chat template).
func (t *Tokenizer) Fingerprint() (string, error) {
	cfg, err := t.configJSON()
	if err != nil {
		return "", err
	}
	smap, err := t.specialMapJSON()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, b := range [][]byte{t.fileData, cfg, smap} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TemplateSpecials returns the special tokens a chat template sees, as
// transformers passes its special_tokens_map to apply_chat_template:
// bos_token, eos_token, unk_token and pad_token where set.
func (t *Tokenizer) TemplateSpecials() map[string]string {
	m := map[string]string{}
	for i, key := range specialKeys {
		if c := t.specials[i].content; c != "" {
			m[key] = c
		} else if id := t.specials[i].id; id >= 0 {
			m[key] = t.idToTok[id]
		}
	}
	return m
}

// ChatTemplate returns the Jinja chat template, or "".
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// ModelMaxLength returns tokenizer_config.json's model_max_length, or 0
// when it is absent or transformers' "unlimited" sentinel (1e30).
func (t *Tokenizer) ModelMaxLength() int { return t.modelMaxLength }

// Save writes tokenizer.json (the bytes loaded or trained),
// tokenizer_config.json, special_tokens_map.json and the CompanionFiles
// that were loaded to dir, creating it. Settings loaded from config files
// are kept; the effective special tokens, chat template (into
// chat_template.jinja when it came from there, else tokenizer_config.json),
// model_max_length and add_bos_token/add_eos_token are written over them.
func (t *Tokenizer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", dir, err)
	}
	cfg, err := t.configJSON()
	if err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	smap, err := t.specialMapJSON()
	if err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", filepath.Join(dir, SpecialTokensFile), err)
	}
	type file struct {
		name string
		data []byte
	}
	files := []file{{TokenizerFile, t.fileData}, {ConfigFile, cfg}, {SpecialTokensFile, smap}}
	for _, name := range CompanionFiles {
		data, ok := t.companions[name]
		if name == "chat_template.jinja" && t.jinja {
			data, ok = []byte(t.chatTemplate), true
		}
		if ok {
			files = append(files, file{name, data})
		}
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("tokenizer: save %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}

func (t *Tokenizer) configJSON() ([]byte, error) {
	m := map[string]json.RawMessage{}
	for k, v := range t.config {
		m[k] = v
	}
	set := func(key string, v any) error {
		data, err := marshalNoEscape(v)
		if err != nil {
			return err
		}
		m[key] = data
		return nil
	}
	for i, key := range specialKeys {
		sp := t.specials[i]
		if sp.id < 0 {
			if _, ok := m[key]; ok {
				m[key] = json.RawMessage("null")
			}
			continue
		}
		if old, err := tokenContent(m[key]); err == nil && old == sp.content && m[key] != nil {
			continue // keep the loaded form (string or AddedToken object)
		}
		if err := set(key, sp.content); err != nil {
			return nil, err
		}
	}
	if t.chatTemplate != "" && !t.jinja {
		if old, err := chatTemplate(m["chat_template"]); m["chat_template"] == nil || err != nil || old != t.chatTemplate {
			if err := set("chat_template", t.chatTemplate); err != nil {
				return nil, err
			}
		}
	}
	if t.modelMaxLength > 0 {
		if err := set("model_max_length", t.modelMaxLength); err != nil {
			return nil, err
		}
	}
	for key, v := range map[string]*bool{"add_bos_token": t.addBOS, "add_eos_token": t.addEOS} {
		if v != nil {
			if err := set(key, *v); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := m["tokenizer_class"]; !ok {
		if err := set("tokenizer_class", "PreTrainedTokenizerFast"); err != nil {
			return nil, err
		}
	}
	if _, ok := m["clean_up_tokenization_spaces"]; !ok {
		if err := set("clean_up_tokenization_spaces", false); err != nil {
			return nil, err
		}
	}
	return marshalIndentNoEscape(m)
}

func (t *Tokenizer) specialMapJSON() ([]byte, error) {
	m := map[string]json.RawMessage{}
	for k, v := range t.specialMap {
		m[k] = v
	}
	for i, key := range specialKeys {
		sp := t.specials[i]
		if sp.id < 0 {
			delete(m, key)
			continue
		}
		if old, err := tokenContent(m[key]); err == nil && old == sp.content && m[key] != nil {
			continue
		}
		data, err := marshalNoEscape(sp.content)
		if err != nil {
			return nil, err
		}
		m[key] = data
	}
	return marshalIndentNoEscape(m)
}

// marshalNoEscape is json.Marshal without HTML escaping of <, > and &
// (as Python and serde_json write them).
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func marshalIndentNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
