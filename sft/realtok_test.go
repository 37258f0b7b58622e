package sft

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/tokenizer/realtok"
)

func ints32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

func realEncoder(t *testing.T, name string) *Encoder {
	t.Helper()
	tok, err := tokenizer.Load(realtok.Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	return &Encoder{Tok: tok, MaxLength: 4096, CompletionOnly: true, TextField: "text", EOS: tok.EOS()}
}

// TestPromptCompletionJoint: prompt/completion examples are the tokens of
// prompt + completion + eos, as TRL tokenises them, on every real
// tokenizer: with Llama-2's Prepend("▁") normalizer the first completion
// token is the whole text's, not a "▁"-prefixed piece, and a word split
// across the boundary is one token; the prompt's own length masks the loss.
func TestPromptCompletionJoint(t *testing.T) {
	for name, set := range realtok.Goldens(t) {
		e := realEncoder(t, name)
		for n := range set.Count("pair") {
			p, full := set.Find(t, "pair", n, "prompt"), set.Find(t, "pair", n, "full_eos")
			x, err := e.PromptCompletion(p.Prompt, p.Completion)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.IDs, ints32(full.IDsSpecial)) {
				t.Errorf("%s pair %d: ids %v, want %v", name, n, x.IDs, full.IDsSpecial)
			}
			for i, l := range x.Loss {
				if l != (i >= len(p.IDsSpecial)) {
					t.Errorf("%s pair %d: token %d loss %v with a prompt of %d tokens", name, n, i, l, len(p.IDsSpecial))
					break
				}
			}
		}
	}
}

// TestConversationalPromptCompletion: one BOS (the template's), the
// tokens of the whole rendering, and the template's final end-of-turn
// token kept and trained (Llama-3.1's <|eot_id|> is also its eos).
func TestConversationalPromptCompletion(t *testing.T) {
	for name, set := range realtok.Goldens(t) {
		e := realEncoder(t, name)
		for n := range set.Count("chat") {
			p, c := set.Find(t, "chat", n, "prompt"), set.Find(t, "chat", n, "chosen")
			x, err := e.ConversationalPromptCompletion(p.Messages, c.Messages[len(p.Messages):])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.IDs, ints32(c.IDs)) {
				t.Errorf("%s chat %d: ids %v, want %v", name, n, x.IDs, c.IDs)
				continue
			}
			if bos := e.Tok.BOS(); bos >= 0 && x.IDs[0] == int32(bos) && x.IDs[1] == int32(bos) {
				t.Errorf("%s chat %d: double BOS", name, n)
			}
			for i, l := range x.Loss {
				if l != (i >= len(p.IDs)) {
					t.Errorf("%s chat %d: token %d loss %v with a prompt of %d tokens", name, n, i, l, len(p.IDs))
					break
				}
			}
		}
	}
	e := realEncoder(t, "llama3_1")
	c := realtok.Goldens(t)["llama3_1"].Find(t, "chat", 0, "chosen")
	x, err := e.ConversationalPromptCompletion(c.Messages[:1], c.Messages[1:])
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := e.Tok.TokenToID("<|eot_id|>")
	if last := len(x.IDs) - 1; x.IDs[last] != int32(eot) || !x.Loss[last] {
		t.Errorf("llama3_1: last token %d (loss %v), want <|eot_id|> %d trained", x.IDs[last], x.Loss[last], eot)
	}
}

// TestConversationOneEncoding: a messages example is the tokens of the
// whole rendering (no "▁" inserted at turn boundaries for Llama-2), and
// with assistant_only_loss the trained tokens are the assistant turns'.
func TestConversationOneEncoding(t *testing.T) {
	for name, set := range realtok.Goldens(t) {
		e := realEncoder(t, name)
		full := set.Find(t, "messages", 0, "full")
		for _, only := range []bool{false, true} {
			e.AssistantOnlyLoss = only
			x, err := e.Conversation(full.Messages)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.IDs, ints32(full.IDs)) {
				t.Errorf("%s: ids %v, want %v", name, x.IDs, full.IDs)
				continue
			}
			var trained []int
			for i, l := range x.Loss {
				if l {
					trained = append(trained, int(x.IDs[i]))
				}
			}
			if !only {
				if len(trained) != len(x.IDs) {
					t.Errorf("%s: %d of %d tokens trained without assistant_only_loss", name, len(trained), len(x.IDs))
				}
				continue
			}
			text, _ := e.Tok.Decode(trained, false)
			for _, m := range full.Messages {
				if got := strings.Contains(text, m.Content); got != (m.Role == "assistant") {
					t.Errorf("%s: trained text %q: holds %q = %v", name, text, m.Content, got)
				}
			}
		}
	}
}

// TestNoTargetRowsDropped: rows whose prompt fills max_length are dropped
// and counted, as TRL drops fully masked rows; when every row is, the
// error says why.
func TestNoTargetRowsDropped(t *testing.T) {
	e := realEncoder(t, "llama3_1")
	set := realtok.Goldens(t)["llama3_1"]
	p0 := set.Find(t, "pair", 0, "prompt") // a long prompt
	p5 := set.Find(t, "pair", 5, "prompt") // a short one
	e.MaxLength = len(p0.IDsSpecial) - 2
	if len(p5.IDsSpecial)+2 > e.MaxLength {
		t.Fatal("fixture: prompts too close in length")
	}
	d := &datasets.Dataset{Name: "train"}
	for i, p := range []realtok.Case{p0, p5, p0} {
		d.Records = append(d.Records, datasets.Record{"prompt": p.Prompt, "completion": p.Completion})
		d.Sources = append(d.Sources, datasets.Source{File: "x.jsonl", Line: i + 1})
	}
	xs, err := e.EncodeDataset(d, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 1 || len(xs[0].IDs) > e.MaxLength {
		t.Fatalf("kept %d examples, want 1 within max_length", len(xs))
	}
	d.Records, d.Sources = d.Records[:1], d.Sources[:1]
	if _, err := e.EncodeDataset(d, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "all 1 examples dropped") || !strings.Contains(err.Error(), "max_length") {
		t.Errorf("every row dropped: error %v", err)
	}
	// keep_end keeps the completion's end instead
	e.TruncationMode = "keep_end"
	if xs, err = e.EncodeDataset(d, zerolog.Nop()); err != nil || len(xs) != 1 || !xs[0].Loss[len(xs[0].Loss)-1] {
		t.Errorf("keep_end: %d examples, %v", len(xs), err)
	}
}

// TestCacheKeyFollowsTokenizerConfig: the tokenisation cache is keyed by
// what changes the tokens, tokenizer_config.json's add_bos_token included,
// not tokenizer.json alone.
func TestCacheKeyFollowsTokenizerConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(realtok.Dir("llama2"), f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	d := &datasets.Dataset{Name: "train", Records: []datasets.Record{{"text": "hello"}}}
	key := func() string {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		k, err := cacheKey(d, &Encoder{Tok: tok, MaxLength: 16, TextField: "text", EOS: tok.EOS()})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := key()
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `"add_bos_token": true`, `"add_bos_token": false`, 1)), 0o644)
	if after := key(); after == before {
		t.Error("add_bos_token changed but the cache key did not")
	}
}

// TestAlpacaLlama2Boundary: on 300 real Alpaca pairs with the real Llama-2
// tokenizer (Prepend("▁") normalizer), every SFT example is the tokens of
// the whole prompt + completion + eos, as TRL tokenises it; tokenising the
// completion on its own (rl before) gave a different first completion
// token in every pair.
func TestAlpacaLlama2Boundary(t *testing.T) {
	data := filepath.Join(sharedData, "alpaca-subset5000", "alpaca_5000.json")
	tokDir := filepath.Join(sharedData, "llama-tokenizer-hf-internal-testing")
	if _, err := os.Stat(data); err != nil {
		t.Skip("../shared/data not present")
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := datasets.LoadSplit(data, "", datasets.LoadOptions{Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := d.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	pcs, err := nd.PromptCompletions()
	if err != nil || len(pcs) != 300 {
		t.Fatalf("%d pairs, %v", len(pcs), err)
	}
	e := &Encoder{Tok: tok, MaxLength: 1 << 20, CompletionOnly: true, EOS: tok.EOS()}
	joint, apart := 0, 0
	for _, pc := range pcs {
		x, err := e.PromptCompletion(pc.Prompt, pc.Completion)
		if err != nil {
			t.Fatal(err)
		}
		whole, _ := tok.Encode(pc.Prompt+pc.Completion+"</s>", true)
		if slices.Equal(x.IDs, ints32(whole)) {
			joint++
		}
		p, _ := tok.Encode(pc.Prompt, true)
		c, _ := tok.Encode(pc.Completion, false)
		if len(p) < len(whole) && c[0] != whole[len(p)] {
			apart++
		}
	}
	t.Logf("joint tokenisation matches the whole text in %d/300 pairs; the completion tokenised apart starts differently in %d/300", joint, apart)
	if joint != 300 {
		t.Errorf("%d/300 examples are the whole text's tokens", joint)
	}
}
