package rollout

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// TestRewardModelOwnTokenizer (TRL's reward_processing_classes): a reward
// model saved with a tokenizer that is not the policy's (another
// vocabulary, another size, a chat template) is loaded with it, and its
// score of each completion equals a forward of the reward model alone over
// the text TRL builds (prompt + completion; for a conversational prompt the
// messages and the completion rendered with the reward tokenizer's
// template) encoded by the reward tokenizer without special tokens, read
// at the text's last token; rows of different lengths (right padding) do
// not change each other's scores. A reward model with the policy's
// tokenizer keeps reading the policy's ids.
func TestRewardModelOwnTokenizer(t *testing.T) {
	train := func(corpus []string, n int, tmpl string) *tokenizer.Tokenizer {
		tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: n, ChatTemplate: tmpl})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	policyTok := train([]string{"review one: good bad", "review two: fine meh poor", "okay good good"}, 280, "")
	const tmpl = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
	rewardTok := train([]string{"the quick brown fox", "good reviews are good", "<user>hello\n<assistant>fine"}, 300, tmpl)
	if checkpoint.FingerprintOf(policyTok) == checkpoint.FingerprintOf(rewardTok) {
		t.Fatal("the two tokenizers are the same: the test cannot tell")
	}
	dir := t.TempDir()
	tensor.ManualSeed(5)
	mk := func(vocab int, head model.Head) *model.Model {
		cfg, err := model.Preset("tiny", vocab)
		if err != nil {
			t.Fatal(err)
		}
		cfg.NumLayers, cfg.NumLabels = 1, 1
		m, err := model.New(cfg, head, tensor.Float32, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	policy := mk(policyTok.VocabSize(), model.LMHead)
	defer policy.Free()
	policyDir := filepath.Join(dir, "policy")
	if err := checkpoint.Save(policyDir, policy, policyTok); err != nil {
		t.Fatal(err)
	}
	rm := mk(rewardTok.VocabSize()+7, model.ScoreHead)
	rmDir := filepath.Join(dir, "rm")
	err := checkpoint.Save(rmDir, rm, rewardTok)
	rm.Free()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRewards([]string{rmDir}, "reward_funcs", policy, policyTok, policyDir, model.LoadOptions{DType: tensor.Float32, Head: model.ScoreHead})
	if err != nil {
		t.Fatal(err)
	}
	defer FreeRewards(rs)
	r := rs[0]
	if r.Tok == nil {
		t.Fatal("the reward model's own tokenizer was not loaded")
	}
	enc := func(tok *tokenizer.Tokenizer, s string) []int {
		ids, err := tok.Encode(s, false)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	text := &Prompt{Text: "review one:", IDs: enc(policyTok, "review one:")}
	chat := &Prompt{Text: "<rendered by the policy's template>", IDs: enc(policyTok, "hello"), Messages: []datasets.Message{{Role: "user", Content: "hello"}}}
	cs := []*Completion{
		{Prompt: text, Text: " good bad"},
		{Prompt: text, Text: " good reviews are good, the quick brown fox"},
		{Prompt: chat, Text: "fine"},
	}
	for _, c := range cs {
		c.IDs = enc(policyTok, c.Text)
	}
	wantText := []string{"review one: good bad", "review one: good reviews are good, the quick brown fox", "<user>hello\n<assistant>fine\n"}
	got, err := r.Score(cs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if s, _ := textFor(rewardTok, c); s != wantText[i] {
			t.Errorf("row %d: the reward model reads %q, want %q", i, s, wantText[i])
		}
		// the reference: the reward model alone on that one text
		ids := enc(rewardTok, wantText[i])
		var want float64
		tensor.NoGrad(func() {
			tensor.Tidy(func() {
				x := make([]int64, len(ids))
				for j, v := range ids {
					x[j] = int64(v)
				}
				sc := r.Model.Scores(r.Model.Hidden(&model.Input{IDs: tensor.FromInt64s(x, 1, int64(len(x)))}))
				want = sc.Narrow(1, int64(len(x)-1), 1).Float64s()[0]
			})
		})
		if math.Abs(got[i]-want) > 1e-5 {
			t.Errorf("row %d: score %.6f, want %.6f (the reward model alone on %q)", i, got[i], want, wantText[i])
		}
	}

	// the policy's own tokenizer: no re-encoding
	rm2Dir := filepath.Join(dir, "rm-shared")
	rm2 := mk(policyTok.VocabSize(), model.ScoreHead)
	err = checkpoint.Save(rm2Dir, rm2, policyTok)
	rm2.Free()
	if err != nil {
		t.Fatal(err)
	}
	rs2, err := LoadRewards([]string{rm2Dir}, "reward_funcs", policy, policyTok, policyDir, model.LoadOptions{DType: tensor.Float32, Head: model.ScoreHead})
	if err != nil {
		t.Fatal(err)
	}
	defer FreeRewards(rs2)
	if rs2[0].Tok != nil {
		t.Error("a reward model with the policy's tokenizer got a tokenizer of its own")
	}
}

// TestEncoderRewardModel: an encoder reward model (a one-layer tiny-bert,
// and tiny-deberta, with the real bert-base-uncased tokenizer) scores each completion as
// rl score and rl reward read it: the pair [CLS] prompt [SEP] completion
// [SEP] with type ids 0 then 1 (a conversational prompt: its last
// message; no prompt: the completion alone), the head on [CLS]; batched
// rows of different lengths (right padding, masked) score as each alone.
// It is re-encoded even when it shares the policy's tokenizer.
func TestEncoderRewardModel(t *testing.T) {
	bertDir := filepath.Join("..", "tokenizer", "testdata", "real", "bert-base-uncased")
	bertTok, err := tokenizer.Load(bertDir)
	if err != nil {
		t.Skipf("no bert-base-uncased tokenizer fixture: %v", err)
	}
	policyTok, err := tokenizer.Train(slices.Values([]string{"review one: good bad", "okay good"}), tokenizer.TrainOptions{VocabSize: 280})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tensor.ManualSeed(7)
	pc, _ := model.Preset("tiny", policyTok.VocabSize())
	pc.NumLayers = 1
	policy, err := model.New(pc, model.LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Free()
	policyDir := filepath.Join(dir, "policy")
	if err := checkpoint.Save(policyDir, policy, policyTok); err != nil {
		t.Fatal(err)
	}
	for _, preset := range []string{"tiny-bert", "tiny-deberta"} {
		t.Run(preset, func(t *testing.T) {
			rc, err := model.Preset(preset, (bertTok.VocabSize()+63)/64*64)
			if err != nil {
				t.Fatal(err)
			}
			rc.NumLayers, rc.NumLabels = 1, 1
			rc.FitTokenizer(bertTok.PAD())
			rm, err := model.New(rc, model.ScoreHead, tensor.Float32, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			rmDir := filepath.Join(dir, preset+"-rm")
			err = checkpoint.Save(rmDir, rm, bertTok)
			rm.Free()
			if err != nil {
				t.Fatal(err)
			}
			rs, err := LoadRewards([]string{rmDir}, "reward_funcs", policy, policyTok, policyDir, model.LoadOptions{DType: tensor.Float32, Head: model.ScoreHead})
			if err != nil {
				t.Fatal(err)
			}
			defer FreeRewards(rs)
			r := rs[0]
			if r.Tok == nil || !r.Model.Config.Encoder() {
				t.Fatal("the encoder reward model was not loaded with its tokenizer")
			}
			text := &Prompt{Text: "Is the film good?"}
			chat := &Prompt{Text: "<rendered>", Messages: []datasets.Message{{Role: "user", Content: "Was it fun?"}}}
			cs := []*Completion{
				{Prompt: text, Text: "Yes, a very good film with a fine cast and a great ending."},
				{Prompt: chat, Text: "No."},
				{Prompt: &Prompt{}, Text: "Plain text."},
			}
			got, err := r.Score(cs, 0)
			if err != nil {
				t.Fatal(err)
			}
			pairs := [][2]string{{"Is the film good?", cs[0].Text}, {"Was it fun?", "No."}, {"", "Plain text."}}
			for i, p := range pairs {
				var ids, types []int
				if p[0] == "" {
					ids, _ = bertTok.Encode(p[1], true)
					types = make([]int, len(ids))
				} else {
					ids, types, _ = bertTok.EncodePair(p[0], p[1], true)
				}
				if ids[0] != 101 || ids[len(ids)-1] != 102 || (p[0] != "" && types[len(types)-1] != 1) {
					t.Fatalf("row %d: %v %v is not [CLS] .. [SEP] with type ids", i, ids, types)
				}
				x, tt := make([]int64, len(ids)), make([]int64, len(ids))
				for j := range ids {
					x[j], tt[j] = int64(ids[j]), int64(types[j])
				}
				var want float64
				tensor.NoGrad(func() {
					tensor.Tidy(func() {
						in := &model.Input{IDs: tensor.FromInt64s(x, 1, int64(len(x))), TokenTypeIDs: tensor.FromInt64s(tt, 1, int64(len(x)))}
						h := r.Model.Hidden(in)
						want = r.Model.ScoresFor(in, h.Narrow(1, 0, 1).Squeeze(1)).Float64s()[0]
					})
				})
				if math.Abs(got[i]-want) > 1e-5 {
					t.Errorf("row %d: score %.6f, want %.6f (the reward model alone on %q)", i, got[i], want, p)
				}
			}
			if math.Abs(got[0]-got[1]) < 1e-6 {
				t.Errorf("rows score alike (%v): the test cannot tell", got)
			}
			// a policy with the same (BERT) tokenizer: still the pair encoding
			pc2, _ := model.Preset("tiny", rc.VocabSize)
			pc2.NumLayers = 1
			p2, err := model.New(pc2, model.LMHead, tensor.Float32, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer p2.Free()
			p2Dir := filepath.Join(dir, preset+"-policy-bert")
			if err := checkpoint.Save(p2Dir, p2, bertTok); err != nil {
				t.Fatal(err)
			}
			rs2, err := LoadRewards([]string{rmDir}, "reward_funcs", p2, bertTok, p2Dir, model.LoadOptions{DType: tensor.Float32, Head: model.ScoreHead})
			if err != nil {
				t.Fatal(err)
			}
			defer FreeRewards(rs2)
			if rs2[0].Tok == nil {
				t.Fatal("an encoder reward model sharing the policy's tokenizer reads the policy's left-padded ids")
			}
			got2, err := rs2[0].Score(cs, 0)
			if err != nil || !slices.EqualFunc(got, got2, func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }) {
				t.Errorf("shared tokenizer: %v %v, want %v", got2, err, got)
			}
		})
	}
}
