package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Slow (Python-only) tokenizer files that Load converts when a folder has
// no tokenizer.json.
const (
	VocabFile  = "vocab.json"
	MergesFile = "merges.txt"
)

// gpt2Special is GPT2Tokenizer's default bos, eos and unk token.
const gpt2Special = "<|endoftext|>"

// gpt2Defaults is the tokenizer_config GPT2Tokenizer implies without one.
func gpt2Defaults() map[string]json.RawMessage {
	q := json.RawMessage(`"` + gpt2Special + `"`)
	return map[string]json.RawMessage{"bos_token": q, "eos_token": q, "unk_token": q, "add_bos_token": json.RawMessage("false")}
}

// convertSlowBPE builds the tokenizer.json of a GPT-2-style slow tokenizer
// (vocab.json + merges.txt, and tokenizer_config.json when present) as
// transformers' convert_slow_tokenizer.GPT2Converter does: a byte-level
// BPE with ByteLevel pre-tokenizer (add_prefix_space from the config) and
// decoder, TemplateProcessing with the bos when add_bos_token, else the
// ByteLevel post-processor; the config's added tokens (or its special
// tokens found in the vocabulary) as added tokens. It returns nil, nil when
// dir has no vocab.json and merges.txt.
//
// GPT2Tokenizer's own defaults (bos, eos and unk "<|endoftext|>") apply
// when the folder has no tokenizer_config.json and no special_tokens_map.json.
func convertSlowBPE(dir string) ([]byte, error) {
	vb, err := os.ReadFile(filepath.Join(dir, VocabFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", filepath.Join(dir, VocabFile), unwrapPath(err))
	}
	mf, err := os.Open(filepath.Join(dir, MergesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", filepath.Join(dir, MergesFile), unwrapPath(err))
	}
	defer mf.Close()
	var vocab map[string]int
	if err := json.Unmarshal(vb, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: want a JSON object of token ids: %w", filepath.Join(dir, VocabFile), err)
	}
	var merges []string
	sc := bufio.NewScanner(mf)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if line == 1 && strings.HasPrefix(s, "#version") || s == "" {
			continue
		}
		if len(strings.Split(s, " ")) != 2 {
			return nil, fmt.Errorf("tokenizer: load %s:%d: want two tokens separated by a space, got %q", filepath.Join(dir, MergesFile), line, s)
		}
		merges = append(merges, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", filepath.Join(dir, MergesFile), err)
	}
	cfg, err := readJSONObject(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	smap, err := readJSONObject(filepath.Join(dir, SpecialTokensFile))
	if err != nil {
		return nil, err
	}
	flag := func(key string) bool {
		var b bool
		json.Unmarshal(cfg[key], &b)
		return b
	}
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var addedTokens []added
	if raw := cfg["added_tokens_decoder"]; raw != nil {
		var dec map[string]added
		if err := json.Unmarshal(raw, &dec); err != nil {
			return nil, fmt.Errorf("tokenizer: load %s: added_tokens_decoder: %w", filepath.Join(dir, ConfigFile), err)
		}
		for k, a := range dec {
			if _, err := fmt.Sscan(k, &a.ID); err != nil {
				return nil, fmt.Errorf("tokenizer: load %s: added_tokens_decoder key %q is not an id", filepath.Join(dir, ConfigFile), k)
			}
			addedTokens = append(addedTokens, a)
		}
	} else {
		if cfg == nil && smap == nil {
			if _, ok := vocab[gpt2Special]; ok {
				addedTokens = append(addedTokens, added{ID: vocab[gpt2Special], Content: gpt2Special, Normalized: true, Special: true})
			}
		}
		seen := map[string]bool{gpt2Special: len(addedTokens) > 0}
		for _, key := range specialKeys {
			raw := smap[key]
			if raw == nil {
				raw = cfg[key]
			}
			c, err := tokenContent(raw)
			if err != nil || c == "" || seen[c] {
				continue
			}
			if id, ok := vocab[c]; ok {
				seen[c] = true
				addedTokens = append(addedTokens, added{ID: id, Content: c, Normalized: true, Special: true})
			}
		}
	}
	for i := range addedTokens { // sorted by id, as tokenizers writes them
		for j := i + 1; j < len(addedTokens); j++ {
			if addedTokens[j].ID < addedTokens[i].ID {
				addedTokens[i], addedTokens[j] = addedTokens[j], addedTokens[i]
			}
		}
	}
	byteLevel := func(prefix bool, trim bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": trim, "use_regex": true}
	}
	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": addedTokens, "normalizer": nil,
		"pre_tokenizer":  byteLevel(flag("add_prefix_space"), true),
		"post_processor": byteLevel(true, false),
		"decoder":        byteLevel(true, true),
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "",
			"fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	if flag("add_bos_token") {
		bos, err := tokenContent(cfg["bos_token"])
		if id, ok := vocab[bos]; err == nil && ok {
			tj["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
				"pair":           []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
				"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []int{id}, "tokens": []string{bos}}}}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tj); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
