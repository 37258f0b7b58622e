package generate

import (
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestRepetitionPenaltyGreedy: the first greedy token with
// repetition_penalty is the argmax of the model's own last logits with
// the prompt's tokens penalised by hand; over the prompts tried the
// penalty changes some choices (the model would repeat a prompt token).
func TestRepetitionPenaltyGreedy(t *testing.T) {
	m := tinyModel(t, "tiny")
	defer m.Free()
	const p = 3.0
	changed := 0
	for a := 0; a < 90; a++ {
		prompt := []int{a, (a * 7) % 97, (a * 13) % 97}
		var logits []float32
		tensor.NoGrad(func() {
			tensor.Tidy(func() {
				ids := make([]int64, len(prompt))
				for i, v := range prompt {
					ids[i] = int64(v)
				}
				h := m.Hidden(&model.Input{IDs: tensor.FromInt64s(ids, 1, int64(len(ids)))})
				logits = m.Logits(h.Narrow(1, int64(len(ids)-1), 1)).Float32s()
			})
		})
		argmax := func(l []float32) int {
			b := 0
			for i, v := range l {
				if v > l[b] {
					b = i
				}
			}
			return b
		}
		plain := argmax(logits)
		pen := append([]float32(nil), logits...)
		seen := map[int]bool{}
		for _, id := range prompt {
			if !seen[id] {
				seen[id] = true
				if pen[id] < 0 {
					pen[id] *= p
				} else {
					pen[id] /= p
				}
			}
		}
		want := argmax(pen)
		res, err := Generate(m, [][]int{prompt}, Config{MaxNewTokens: 1, Temperature: 1, TopP: 1, RepetitionPenalty: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Tokens[0]; got != want {
			t.Errorf("prompt %v: token %d with the penalty, want %d (without: %d)", prompt, got, want, plain)
		}
		if want != plain {
			changed++
		}
	}
	if changed == 0 {
		t.Error("the penalty changed no choice: the test cannot tell it from none")
	}
	t.Logf("the penalty changed %d of 90 first tokens", changed)
}
