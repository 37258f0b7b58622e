package demo

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/rlsuite/rl/demo/task"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// Gold is a stage's gold metric on held-out prompts, written as gold.json.
type Gold struct {
	Mean       float64 `json:"gold_mean"`
	Std        float64 `json:"gold_std"`
	N          int     `json:"n"`
	WellFormed float64 `json:"well_formed"` // fraction of completions made only of template sentences
	// KLToRef is a Monte-Carlo estimate of KL(policy || reference) per
	// completion: the mean over samples of sum_t log p(y_t) - log q(y_t).
	KLToRef *float64 `json:"kl_to_ref,omitempty"`
	// PromptScores is the mean score of each prompt's samples, in the
	// order of the prompts: rl compare's paired tests pair them across runs.
	PromptScores []float64 `json:"prompt_scores"`
	Samples      []Sample  `json:"samples"`
}

// Sample is one scored completion.
type Sample struct {
	Prompt     string  `json:"prompt"`
	Completion string  `json:"completion"`
	Score      float64 `json:"score"`
}

// EvalOptions controls EvalGold.
type EvalOptions struct {
	SamplesPerPrompt int     // default 2
	MaxNewTokens     int     // default 64
	Temperature      float64 // default 0.7, as PPO's rollouts
	Seed             uint64
	RefDir           string // reference model for kl_to_ref ("" skips it)
}

// EvalGold samples completions of prompts from the model in dir, scores
// them with the task's gold metric, and writes dir/gold.json.
func EvalGold(dir string, prompts []string, o EvalOptions) (g *Gold, err error) {
	defer tensor.Recover(&err, "gold eval "+dir)
	if o.SamplesPerPrompt == 0 {
		o.SamplesPerPrompt = 2
	}
	if o.MaxNewTokens == 0 {
		o.MaxNewTokens = 64
	}
	if o.Temperature == 0 {
		o.Temperature = 0.7
	}
	m, tok, err := checkpoint.Load(dir, model.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer m.Free()
	var ids [][]int
	var texts []string
	for _, p := range prompts {
		v, err := tok.Encode(p, true)
		if err != nil {
			return nil, err
		}
		for range o.SamplesPerPrompt {
			ids = append(ids, v)
			texts = append(texts, p)
		}
	}
	res, err := generate.Generate(m, ids, generate.Config{MaxNewTokens: o.MaxNewTokens, DoSample: true, Temperature: o.Temperature, TopP: 1,
		EOSTokenIDs: m.StopIDs(tok.EOS()), PadTokenID: max(tok.PAD(), 0), Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	g = &Gold{N: len(res), PromptScores: make([]float64, len(prompts))}
	var sum, sq, wf float64
	for i, r := range res {
		c, err := tok.Decode(r.Tokens, true)
		if err != nil {
			return nil, err
		}
		s := task.Score(texts[i], c)
		g.PromptScores[i/o.SamplesPerPrompt] += s / float64(o.SamplesPerPrompt)
		sum += s
		sq += s * s
		if task.Analyze(c).WellFormed() {
			wf++
		}
		g.Samples = append(g.Samples, Sample{Prompt: texts[i], Completion: c, Score: s})
	}
	n := float64(len(res))
	g.Mean = sum / n
	g.Std = math.Sqrt(math.Max(0, sq/n-g.Mean*g.Mean))
	g.WellFormed = wf / n
	if o.RefDir != "" {
		ref, err := model.Load(o.RefDir, model.LoadOptions{})
		if err != nil {
			return nil, err
		}
		defer ref.Free()
		kl := seqKL(m, ref, ids, res, max(tok.PAD(), 0))
		g.KLToRef = &kl
	}
	if len(g.Samples) > 12 {
		g.Samples = g.Samples[:12]
	}
	b, _ := json.MarshalIndent(g, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(dir, "gold.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("gold eval: %w", err)
	}
	return g, nil
}

// seqKL is the mean over samples of sum_t log p(y_t|x,y<t) - log q(y_t|x,y<t)
// at temperature 1, for policy p and reference q.
func seqKL(p, q *model.Model, prompts [][]int, res []generate.Result, pad int) float64 {
	var total float64
	tensor.NoGrad(func() {
		for i := range res {
			if len(res[i].Tokens) == 0 {
				continue
			}
			tensor.Tidy(func() {
				seq := append(append([]int(nil), prompts[i]...), res[i].Tokens...)
				v := make([]int64, len(seq))
				for j, x := range seq {
					v[j] = int64(x)
				}
				L := int64(len(seq))
				P := int64(len(prompts[i]))
				ids := tensor.Int64sOn(v, p.Device, 1, L) // on the models' device (--device cuda)
				next := ids.Narrow(1, P, L-P)
				lp := func(m *model.Model) *tensor.Tensor {
					logits := m.Forward(&model.Input{IDs: ids}).Narrow(1, P-1, L-P)
					return logits.LogSoftmax(-1).Gather(2, next.Unsqueeze(2)).Sum()
				}
				total += lp(p).Sub(lp(q)).ItemF64()
			})
		}
	})
	return total / float64(len(res))
}
