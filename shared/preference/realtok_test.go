package preference

import (
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/tokenizer/realtok"
)

func i32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TestConversationalPairsAsTRL: conversational pairs on real tokenizers
// (Llama-3.1, Qwen3, Gemma-3, Llama-2, whose templates write bos_token)
// give exactly the rows TRL builds from apply_chat_template(tokenize=True):
// one BOS, not two; DPO's rows are prompt_ids + the joint encoding past
// the prompt, the reward model's the whole conversation, ORPO's the whole
// conversation with bos/eos ensured.
func TestConversationalPairsAsTRL(t *testing.T) {
	for name, set := range realtok.Goldens(t) {
		tok, err := tokenizer.Load(realtok.Dir(name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range set.Count("chat") {
			p, c, r := set.Find(t, "chat", n, "prompt"), set.Find(t, "chat", n, "chosen"), set.Find(t, "chat", n, "rejected")
			pref := datasets.Preference{
				PromptMessages:   p.Messages,
				ChosenMessages:   c.Messages[len(p.Messages):],
				RejectedMessages: r.Messages[len(p.Messages):],
			}
			for _, style := range []Style{StyleDPO, StyleReward, StyleORPO} {
				enc := &Encoder{Tok: tok, Style: style, TruncationMode: KeepStart, EOS: tok.EOS()}
				got, err := enc.Encode(pref)
				if err != nil {
					t.Fatalf("%s %d: %v", name, n, err)
				}
				for side, full := range []realtok.Case{c, r} {
					row, start := got.Chosen, got.ChosenStart
					if side == 1 {
						row, start = got.Rejected, got.RejectedStart
					}
					var want []int32
					wantStart := len(p.IDs)
					switch style {
					case StyleDPO:
						want = slices.Concat(i32(p.IDs), i32(full.IDs[len(p.IDs):]))
					case StyleReward:
						want = i32(full.IDs)
					case StyleORPO:
						want = i32(full.IDs)
						if bos := tok.BOS(); bos >= 0 && want[0] != int32(bos) {
							want = slices.Insert(want, 0, int32(bos))
							wantStart++
						}
						if want[len(want)-1] != int32(tok.EOS()) {
							want = append(want, int32(tok.EOS()))
						}
					}
					if !slices.Equal(row, want) || (style != StyleReward && start != wantStart) {
						t.Errorf("%s pair %d style %d side %d:\n row %v start %d\nwant %v start %d", name, n, style, side, row, start, want, wantStart)
					}
					if bos := tok.BOS(); bos >= 0 && len(row) > 1 && row[0] == int32(bos) && row[1] == int32(bos) {
						t.Errorf("%s pair %d style %d: double BOS %v", name, n, style, row[:4])
					}
				}
			}
		}
	}
}

// TestPlainPairsJointlyTokenised: plain-text pairs are tokenised as TRL
// does (eos text appended, prompt+completion together with special
// tokens), so a word split across the prompt/completion boundary and
// Llama-2's "▁" normalizer give the tokens of the whole text.
func TestPlainPairsJointlyTokenised(t *testing.T) {
	for name, set := range realtok.Goldens(t) {
		tok, err := tokenizer.Load(realtok.Dir(name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range set.Count("pair") {
			p, full := set.Find(t, "pair", n, "prompt"), set.Find(t, "pair", n, "full_eos")
			pref := datasets.Preference{Prompt: p.Prompt, Chosen: p.Completion, Rejected: p.Completion + " No."}
			enc := &Encoder{Tok: tok, Style: StyleReward, EOS: tok.EOS()}
			got, err := enc.Encode(pref)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Chosen, i32(full.IDsSpecial)) {
				t.Errorf("%s pair %d reward row %v, want %v (tokenizer(prompt+chosen+eos))", name, n, got.Chosen, full.IDsSpecial)
			}
			enc = &Encoder{Tok: tok, Style: StyleDPO, TruncationMode: KeepStart, EOS: tok.EOS()}
			if got, err = enc.Encode(pref); err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(i32(p.IDsSpecial), i32(full.IDsSpecial[min(len(p.IDsSpecial), len(full.IDsSpecial)):]))
			if !slices.Equal(got.Chosen, want) || got.ChosenStart != len(p.IDsSpecial) {
				t.Errorf("%s pair %d DPO row %v start %d, want %v start %d", name, n, got.Chosen, got.ChosenStart, want, len(p.IDsSpecial))
			}
		}
	}
}

// TestImplicitPromptAsTRL: extract_prompt's longest common prefix (backing
// off one space), not a cut at the last "\n\nAssistant:".
func TestImplicitPromptAsTRL(t *testing.T) {
	for _, c := range []struct{ chosen, rejected, prompt string }{
		{"\n\nHuman: hi\n\nAssistant: I'm glad", "\n\nHuman: hi\n\nAssistant: I'm sad", "\n\nHuman: hi\n\nAssistant: I'm"},
		{"Q: 2+2? A: 4", "Q: 2+2? A: 5", "Q: 2+2? A:"},
		{"abc", "abcd", "ab"}, // no mismatch: TRL's loop ends at the last character of the shorter
		{"x", "y", ""},
		{"é1", "é2", "é"},
	} {
		p, ch, rj := datasets.ExtractPrompt(c.chosen, c.rejected)
		if p != c.prompt || p+ch != c.chosen || p+rj != c.rejected {
			t.Errorf("ExtractPrompt(%q, %q) = %q, %q, %q; want prompt %q", c.chosen, c.rejected, p, ch, rj, c.prompt)
		}
	}
}

// TestMismatchCounted: a prompt whose last token merges into the
// completion is counted (TRL warns), and the DPO row keeps the prompt's
// own tokens.
func TestMismatchCounted(t *testing.T) {
	set := realtok.Goldens(t)["llama3_1"]
	tok, err := tokenizer.Load(realtok.Dir("llama3_1"))
	if err != nil {
		t.Fatal(err)
	}
	p := set.Find(t, "pair", 2, "prompt") // "The capital of Fra" + "nce is Paris."
	enc := &Encoder{Tok: tok, Style: StyleDPO, TruncationMode: KeepStart, EOS: tok.EOS()}
	pairs, _, err := enc.EncodeAll([]datasets.Preference{{Prompt: p.Prompt, Chosen: p.Completion, Rejected: "nce?"}}, zerolog.Nop(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if enc.Mismatches != 1 {
		t.Errorf("mismatches %d, want 1", enc.Mismatches)
	}
	if !slices.Equal(pairs[0].PromptIDs(), i32(p.IDsSpecial)) {
		t.Errorf("prompt %v, want %v", pairs[0].PromptIDs(), p.IDsSpecial)
	}
}
