package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// SentencePieceFile is the SentencePiece model of slow Llama/Mistral
// tokenizers, which Load converts when a folder has no tokenizer.json.
const SentencePieceFile = "tokenizer.model"

// SentencePiece piece types (sentencepiece_model.proto, SentencePiece.Type).
const (
	spmNormal      = 1
	spmUnknown     = 2
	spmControl     = 3
	spmUserDefined = 4
	spmUnused      = 5
	spmByte        = 6
)

// SentencePiece model types (sentencepiece_model.proto, TrainerSpec.ModelType).
var spmModelTypes = map[int32]string{1: "Unigram", 2: "BPE", 3: "Word", 4: "Char"}

const spmBPE = 2

// spmPiece is a ModelProto.SentencePiece.
type spmPiece struct {
	piece string
	score float32
	typ   int32
}

// spmModel is the part of a SentencePiece ModelProto the converter reads,
// with the proto's defaults.
type spmModel struct {
	pieces         []spmPiece
	hasTrainerSpec bool
	modelType      int32 // trainer_spec.model_type = 3; default Unigram (1)
	unkID          int32 // trainer_spec.unk_id = 40; default 0
	bosID          int32 // trainer_spec.bos_id = 41; default 1
	eosID          int32 // trainer_spec.eos_id = 42; default 2
	padID          int32 // trainer_spec.pad_id = 43; default -1
	unkPiece       string
	byteFallback   bool // trainer_spec.byte_fallback = 35; default false (LlamaConverter turns byte fallback on regardless)
	addDummyPrefix bool // normalizer_spec.add_dummy_prefix = 3; default true
}

// parseSentencePiece reads a serialized ModelProto
// (sentencepiece/src/sentencepiece_model.proto) with protowire: pieces = 1
// {piece = 1, score = 2, type = 3}, trainer_spec = 2 {model_type = 3,
// byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43,
// unk_piece = 45}, normalizer_spec = 3 {add_dummy_prefix = 3}. Other
// fields are skipped.
func parseSentencePiece(b []byte) (*spmModel, error) {
	m := &spmModel{modelType: 1, bosID: 1, eosID: 2, padID: -1, unkPiece: "<unk>", addDummyPrefix: true}
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			p, err := parsePiece(sub)
			if err != nil {
				return fmt.Errorf("pieces[%d]: %w", len(m.pieces), err)
			}
			m.pieces = append(m.pieces, p)
		case num == 2 && typ == protowire.BytesType:
			m.hasTrainerSpec = true
			if err := walkProto(sub, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
				if typ == protowire.VarintType {
					switch num {
					case 3:
						m.modelType = int32(v)
					case 35:
						m.byteFallback = v != 0
					case 40:
						m.unkID = int32(v)
					case 41:
						m.bosID = int32(v)
					case 42:
						m.eosID = int32(v)
					case 43:
						m.padID = int32(v)
					}
				} else if num == 45 && typ == protowire.BytesType {
					m.unkPiece = string(sub)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("trainer_spec: %w", err)
			}
		case num == 3 && typ == protowire.BytesType:
			if err := walkProto(sub, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
				if num == 3 && typ == protowire.VarintType {
					m.addDummyPrefix = v != 0
				}
				return nil
			}); err != nil {
				return fmt.Errorf("normalizer_spec: %w", err)
			}
		case num == 1 || num == 2 || num == 3:
			return fmt.Errorf("field %d has wire type %d, want a length-delimited message", num, typ)
		}
		return nil
	})
	return m, err
}

func parsePiece(b []byte) (spmPiece, error) {
	p := spmPiece{typ: spmNormal}
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			if !utf8.Valid(sub) {
				return fmt.Errorf("piece %q is not valid UTF-8", sub)
			}
			p.piece = string(sub)
		case num == 2 && typ == protowire.Fixed32Type:
			p.score = math.Float32frombits(uint32(v))
		case num == 3 && typ == protowire.VarintType:
			p.typ = int32(v)
		}
		return nil
	})
	return p, err
}

// walkProto calls fn for each field of a serialized message: v holds a
// varint or fixed value, sub a length-delimited one.
func walkProto(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
	for off := 0; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("byte %d: bad field tag: %w", off, protowire.ParseError(n))
		}
		b, off = b[n:], off+n
		var v uint64
		var sub []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			sub, n = protowire.ConsumeBytes(b)
		default: // groups: deprecated, never in a ModelProto
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("byte %d: field %d: %w", off, num, protowire.ParseError(n))
		}
		b, off = b[n:], off+n
		if err := fn(num, typ, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// spmMerges returns the merges of a SentencePiece BPE vocabulary as
// transformers' SentencePieceExtractor.extract(vocab_scores) builds them
// for LlamaConverter (convert_slow_tokenizer.py): every pair of pieces
// whose concatenation is a piece, ordered by the merged piece's score,
// highest first, then by the ids of the left and the right part. The tie
// order is that of the extractor's original loop over all (left, right)
// pairs with a stable sort, which wrote the published Llama-2
// tokenizer.json: its whitespace pieces ("▁▁", "▁▁▁▁", ...) all score
// -1e9 and their merges come last, left part by left part. Unlike that
// loop (whose "if piece_score:" dropped score-0 pieces) no merge is left
// out. Instead of V^2 pairs, each piece is split at its rune boundaries
// and the halves looked up in vocab, as transformers' extractor does now.
func spmMerges(pieces []spmPiece, vocab map[string]int) [][2]string {
	type merge struct {
		l, r  int // ids of the parts
		score float32
	}
	var all []merge
	for _, p := range pieces {
		for i := range p.piece {
			if i == 0 {
				continue
			}
			l, ok := vocab[p.piece[:i]]
			if !ok {
				continue
			}
			if r, ok := vocab[p.piece[i:]]; ok {
				all = append(all, merge{l, r, p.score})
			}
		}
	}
	slices.SortFunc(all, func(a, b merge) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		case a.l != b.l:
			return a.l - b.l
		}
		return a.r - b.r
	})
	out := make([][2]string, len(all))
	for i, m := range all {
		out[i] = [2]string{pieces[m.l].piece, pieces[m.r].piece}
	}
	return out
}

// convertSentencePiece builds the tokenizer.json of a slow Llama-style
// tokenizer (tokenizer.model, and tokenizer_config.json when present) as
// transformers' convert_slow_tokenizer.LlamaConverter (on SpmConverter)
// and LlamaTokenizerFast.update_post_processor do:
//
//   - model: BPE over the pieces in order (id = position), merges from
//     spmMerges, unk_token the unk_id piece, fuse_unk and byte_fallback on;
//   - added tokens: the unknown and control pieces (special) and the
//     user-defined ones (not special), normalized false, plus the config's
//     added_tokens_decoder;
//   - legacy (tokenizer_config.json's legacy, default true): normalizer
//     Prepend("▁") (when add_prefix_space) then Replace(" ", "▁") and no
//     pre-tokenizer; non-legacy: no normalizer, pre-tokenizer
//     Metaspace(prepend_scheme "first" or "never", split false);
//   - decoder Replace("▁", " "), ByteFallback, Fuse, then Strip(" ", 1, 0)
//     when add_prefix_space;
//   - post-processor TemplateProcessing: bos (add_bos_token, default true)
//     $A eos (add_eos_token, default false), pair with a second bos before $B.
//
// add_prefix_space is tokenizer_config.json's when it is a boolean, else
// the model's normalizer_spec.add_dummy_prefix (true for Llama 2). It
// returns nil, nil when dir has no tokenizer.model, and refuses models
// that are not BPE (Unigram: T5, ALBERT, XLNet).
//
// defaults is the tokenizer_config.json that LlamaTokenizer implies without
// one: the model's bos, eos and unk pieces, add_bos_token true and
// add_eos_token false.
func convertSentencePiece(dir string) (data []byte, defaults map[string]json.RawMessage, err error) {
	path := filepath.Join(dir, SentencePieceFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer: load %s: %w", path, unwrapPath(err))
	}
	cfg, err := readJSONObject(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, err
	}
	smap, err := readJSONObject(filepath.Join(dir, SpecialTokensFile))
	if err != nil {
		return nil, nil, err
	}
	if len(smap) > 0 { // its special tokens win, as in transformers
		merged := maps.Clone(cfg)
		if merged == nil {
			merged = map[string]json.RawMessage{}
		}
		for _, key := range specialKeys {
			if raw := smap[key]; raw != nil {
				merged[key] = raw
			}
		}
		cfg = merged
	}
	data, defaults, err = sentencePieceJSON(b, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer: load %s: %w", path, err)
	}
	return data, defaults, nil
}

// sentencePieceJSON converts tokenizer.model bytes given the (possibly nil)
// tokenizer_config.json, and returns the config LlamaTokenizer implies; see
// convertSentencePiece.
func sentencePieceJSON(b []byte, cfg map[string]json.RawMessage) ([]byte, map[string]json.RawMessage, error) {
	data, m, err := spmToJSON(b, cfg)
	if err != nil {
		return nil, nil, err
	}
	defaults := map[string]json.RawMessage{"add_bos_token": json.RawMessage("true"), "add_eos_token": json.RawMessage("false")}
	for key, id := range map[string]int32{"bos_token": m.bosID, "eos_token": m.eosID, "unk_token": m.unkID} {
		if id >= 0 && int(id) < len(m.pieces) {
			q, err := marshalNoEscape(m.pieces[id].piece)
			if err != nil {
				return nil, nil, err
			}
			defaults[key] = q
		}
	}
	return data, defaults, nil
}

// spmToJSON parses and checks the model and builds its tokenizer.json.
func spmToJSON(b []byte, cfg map[string]json.RawMessage) ([]byte, *spmModel, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("empty file, want a SentencePiece model (ModelProto)")
	}
	m, err := parseSentencePiece(b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil, fmt.Errorf("not a SentencePiece model (ModelProto): %w: the file is truncated (%d bytes)", err, len(b))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("not a SentencePiece model (ModelProto): %w", err)
	}
	if !m.hasTrainerSpec || len(m.pieces) == 0 {
		return nil, nil, fmt.Errorf("not a SentencePiece model: %d pieces and no trainer_spec (truncated or another format?)", len(m.pieces))
	}
	if m.modelType != spmBPE {
		name, ok := spmModelTypes[m.modelType]
		if !ok {
			name = "unknown"
		}
		return nil, nil, fmt.Errorf("SentencePiece model type %s (trainer_spec.model_type %d) is not supported yet: only BPE models (Llama 2, Mistral) convert; save the tokenizer with transformers (tokenizer.save_pretrained) to get tokenizer.json", name, m.modelType)
	}
	if m.unkID < 0 || int(m.unkID) >= len(m.pieces) {
		return nil, nil, fmt.Errorf("trainer_spec.unk_id %d is not a piece id (the model has %d pieces)", m.unkID, len(m.pieces))
	}
	vocab := make(map[string]int, len(m.pieces))
	for i, p := range m.pieces {
		if p.piece == "" {
			return nil, nil, fmt.Errorf("pieces[%d] is empty", i)
		}
		if p.score != p.score {
			return nil, nil, fmt.Errorf("pieces[%d] %q has score NaN", i, p.piece)
		}
		if j, dup := vocab[p.piece]; dup {
			return nil, nil, fmt.Errorf("pieces[%d] %q repeats pieces[%d]", i, p.piece, j)
		}
		vocab[p.piece] = i
	}
	unk := m.pieces[m.unkID].piece

	flag := func(key string, def bool) (bool, error) {
		raw := cfg[key]
		if raw == nil || string(raw) == "null" {
			return def, nil
		}
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return false, fmt.Errorf("%s: %s: want true or false, got %s", ConfigFile, key, raw)
		}
		return v, nil
	}
	legacy, err := flag("legacy", true)
	if err != nil {
		return nil, nil, err
	}
	prefixSpace, err := flag("add_prefix_space", m.addDummyPrefix)
	if err != nil {
		return nil, nil, err
	}
	addBOS, err := flag("add_bos_token", true)
	if err != nil {
		return nil, nil, err
	}
	addEOS, err := flag("add_eos_token", false)
	if err != nil {
		return nil, nil, err
	}

	// Added tokens: SentencePiece's unknown, control and user-defined pieces
	// (SpmConverter.tokenizer), then tokenizer_config.json's
	// added_tokens_decoder (transformers >= 4.34), by id.
	byID := map[int]addedToken{}
	for i, p := range m.pieces {
		switch p.typ {
		case spmUnknown, spmControl, spmUserDefined:
			byID[i] = addedToken{ID: i, Content: p.piece, Special: p.typ != spmUserDefined}
		}
	}
	if raw := cfg["added_tokens_decoder"]; raw != nil {
		var dec map[string]addedToken
		if err := json.Unmarshal(raw, &dec); err != nil {
			return nil, nil, fmt.Errorf("%s: added_tokens_decoder: %w", ConfigFile, err)
		}
		for k, a := range dec {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 {
				return nil, nil, fmt.Errorf("%s: added_tokens_decoder key %q is not an id", ConfigFile, k)
			}
			if id < len(m.pieces) && m.pieces[id].piece != a.Content {
				return nil, nil, fmt.Errorf("%s: added_tokens_decoder[%d] is %q but tokenizer.model's piece %d is %q", ConfigFile, id, a.Content, id, m.pieces[id].piece)
			}
			a.ID = id
			byID[id] = a
		}
	}
	added := make([]addedToken, 0, len(byID))
	for _, a := range byID {
		added = append(added, a)
	}
	slices.SortFunc(added, func(a, b addedToken) int { return a.ID - b.ID })
	tokenID := func(s string) (int, bool) {
		if id, ok := vocab[s]; ok {
			return id, true
		}
		for _, a := range added {
			if a.Content == s {
				return a.ID, true
			}
		}
		return 0, false
	}

	// Post-processor (LlamaTokenizerFast.update_post_processor).
	special := func(key string, id int32) (string, int, error) {
		if raw := cfg[key]; raw != nil {
			s, err := tokenContent(raw)
			if err != nil {
				return "", 0, fmt.Errorf("%s: %s: %w", ConfigFile, key, err)
			}
			if s == "" {
				return "", -1, nil
			}
			tid, ok := tokenID(s)
			if !ok {
				return "", 0, fmt.Errorf("%s: %s %q is not in tokenizer.model", ConfigFile, key, s)
			}
			return s, tid, nil
		}
		if id < 0 || int(id) >= len(m.pieces) {
			return "", -1, nil
		}
		return m.pieces[id].piece, int(id), nil
	}
	bos, bosID, err := special("bos_token", m.bosID)
	if err != nil {
		return nil, nil, err
	}
	eos, eosID, err := special("eos_token", m.eosID)
	if err != nil {
		return nil, nil, err
	}
	if addBOS && bosID < 0 {
		return nil, nil, errors.New("add_bos_token is set but the tokenizer has no bos_token")
	}
	if addEOS && eosID < 0 {
		return nil, nil, errors.New("add_eos_token is set but the tokenizer has no eos_token")
	}
	tmplTok := func(tok string, typeID int) map[string]any {
		return map[string]any{"SpecialToken": map[string]any{"id": tok, "type_id": typeID}}
	}
	seq := func(name string, typeID int) map[string]any {
		return map[string]any{"Sequence": map[string]any{"id": name, "type_id": typeID}}
	}
	single, pair := []any{}, []any{}
	specials := map[string]any{}
	if addBOS {
		single = append(single, tmplTok(bos, 0))
		specials[bos] = map[string]any{"id": bos, "ids": []int{bosID}, "tokens": []string{bos}}
	}
	single = append(single, seq("A", 0))
	if addEOS {
		single = append(single, tmplTok(eos, 0))
		specials[eos] = map[string]any{"id": eos, "ids": []int{eosID}, "tokens": []string{eos}}
	}
	pair = append(pair, single...)
	if addBOS {
		pair = append(pair, tmplTok(bos, 1))
	}
	pair = append(pair, seq("B", 1))
	if addEOS {
		pair = append(pair, tmplTok(eos, 1))
	}

	// Normalizer, pre-tokenizer and decoder (LlamaConverter).
	var normalizer, preTokenizer any
	replaceSpace := map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"}
	if legacy {
		var norms []any
		if prefixSpace {
			norms = append(norms, map[string]any{"type": "Prepend", "prepend": "▁"})
		}
		normalizer = map[string]any{"type": "Sequence", "normalizers": append(norms, replaceSpace)}
	} else {
		scheme := "never"
		if prefixSpace {
			scheme = "first"
		}
		preTokenizer = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": false}
	}
	decoders := []any{
		map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
		map[string]any{"type": "ByteFallback"},
		map[string]any{"type": "Fuse"},
	}
	if prefixSpace {
		decoders = append(decoders, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
	}

	// The vocabulary in id order, as tokenizers writes it.
	var vb bytes.Buffer
	vb.WriteByte('{')
	for i, p := range m.pieces {
		if i > 0 {
			vb.WriteByte(',')
		}
		k, err := marshalNoEscape(p.piece)
		if err != nil {
			return nil, nil, err
		}
		vb.Write(k)
		vb.WriteByte(':')
		vb.WriteString(strconv.Itoa(i))
	}
	vb.WriteByte('}')

	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": normalizer, "pre_tokenizer": preTokenizer,
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials},
		"decoder":        map[string]any{"type": "Sequence", "decoders": decoders},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": unk, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": json.RawMessage(vb.Bytes()), "merges": spmMerges(m.pieces, vocab)},
	}
	data, err := marshalNoEscape(tj)
	return data, m, err
}
