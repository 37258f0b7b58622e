package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

type debertaGolden struct {
	InputIDs      [][]int64     `json:"input_ids"`
	AttentionMask [][]int64     `json:"attention_mask"`
	TokenTypeIDs  [][]int64     `json:"token_type_ids"`
	Logits        [][]float64   `json:"logits"`
	Hidden        [][][]float64 `json:"hidden"`
	RelPos        [][]int64     `json:"relative_positions"`
}

func flat64(rows [][]int64) ([]int64, int64, int64) {
	var out []int64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out, int64(len(rows)), int64(len(rows[0]))
}

// TestDebertaV2Golden: the forward pass of the tiny fixtures written by
// tools/goldens/deberta.py (transformers' DeBERTa-v2 math in plain torch:
// v3's log buckets, shared keys and normalised relative embeddings; v2's
// pos_key_proj/pos_query_proj, absolute positions, token types and
// embed_proj) equals its logits and last hidden states to 1e-5, with
// padded rows; the relative positions equal build_relative_position's.
func TestDebertaV2Golden(t *testing.T) {
	for _, name := range []string{"v3", "v2"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "deberta", name)
			var g debertaGolden
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			d, err := LoadDebertaV2(dir, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Free()
			T := len(g.InputIDs[0])
			rp := d.Config.RelativePositions(T)
			for q := range T {
				for k := range T {
					if rp[q*T+k] != g.RelPos[q][k] {
						t.Fatalf("relative position (%d, %d) = %d, want %d", q, k, rp[q*T+k], g.RelPos[q][k])
					}
				}
			}
			tensor.Tidy(func() {
				ids, B, T := flat64(g.InputIDs)
				mask, _, _ := flat64(g.AttentionMask)
				types, _, _ := flat64(g.TokenTypeIDs)
				in := tensor.FromInt64s(ids, B, T)
				m := tensor.FromInt64s(mask, B, T)
				tt := tensor.FromInt64s(types, B, T)
				logits, err := d.Classify(in, m, tt)
				if err != nil {
					t.Fatal(err)
				}
				got := logits.Float32s()
				L := len(g.Logits[0])
				for i, row := range g.Logits {
					for j, want := range row {
						if v := float64(got[i*L+j]); math.Abs(v-want) > 1e-5 {
							t.Errorf("logits[%d][%d] = %v, want %v", i, j, v, want)
						}
					}
				}
				h := d.Forward(in, m, tt).Float32s()
				H := len(g.Hidden[0][0])
				worst := 0.0
				for i := range g.Hidden {
					for p := range g.Hidden[i] {
						if g.AttentionMask[i][p] == 0 {
							continue // padded positions are zeroed attention rows: not compared
						}
						for j, want := range g.Hidden[i][p] {
							worst = max(worst, math.Abs(float64(h[(i*int(T)+p)*H+j])-want))
						}
					}
				}
				t.Logf("largest hidden-state difference %.2g", worst)
				if worst > 1e-5 {
					t.Errorf("hidden states differ by up to %g", worst)
				}
				// padding changes nothing: the shortest row alone
				n := 0
				for _, v := range g.AttentionMask[len(g.AttentionMask)-1] {
					n += int(v)
				}
				last := g.InputIDs[len(g.InputIDs)-1][:n]
				lt := g.TokenTypeIDs[len(g.TokenTypeIDs)-1][:n]
				alone, err := d.Classify(tensor.FromInt64s(last, 1, int64(n)), nil, tensor.FromInt64s(lt, 1, int64(n)))
				if err != nil {
					t.Fatal(err)
				}
				for j, v := range alone.Float32s() {
					if want := g.Logits[len(g.Logits)-1][j]; math.Abs(float64(v)-want) > 1e-5 {
						t.Errorf("unpadded last row: logit %d = %v, want %v", j, v, want)
					}
				}
			})
		})
	}
}

// TestDebertaV2BadCheckpoints: what rl cannot run, or a checkpoint that
// does not match its config, is a clear error naming the field or tensor.
func TestDebertaV2BadCheckpoints(t *testing.T) {
	src := filepath.Join("testdata", "deberta", "v3")
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	weights, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
	cases := []struct {
		name, old, new, want string
	}{
		{"conv layer", `"hidden_act": "gelu"`, `"hidden_act": "gelu", "conv_kernel_size": 3`, "conv_kernel_size 3"},
		{"pos_att_type", `"c2p"`, `"c2x"`, `pos_att_type "c2x"`},
		{"activation", `"hidden_act": "gelu"`, `"hidden_act": "swish"`, `activation "swish"`},
		{"shapes", `"intermediate_size": 32`, `"intermediate_size": 48`, "intermediate.dense.weight has shape [32 16], config wants [48 16]"},
		{"missing", `"share_att_key": true`, `"share_att_key": false`, "missing deberta.encoder.layer.0.attention.self.pos_key_proj.bias"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		if !strings.Contains(string(cfg), c.old) {
			t.Fatalf("%s: fixture has no %s", c.name, c.old)
		}
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), c.old, c.new, 1)), 0o644)
		os.WriteFile(filepath.Join(dir, "model.safetensors"), weights, 0o644)
		d, err := LoadDebertaV2(dir, tensor.CPU)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
		d.Free()
	}
}

// TestDebertaV2LogBuckets: RelativeBucket equals torch's
// make_log_bucket_position (tools/goldens/deberta.py's buckets.json) for
// every distance of a 2048-token input at DeBERTa-v3's sizes and two others.
func TestDebertaV2LogBuckets(t *testing.T) {
	var g struct {
		From    int              `json:"from"`
		Buckets map[string][]int `json:"buckets"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "deberta", "buckets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Buckets) != 3 {
		t.Fatalf("%d tables, want 3", len(g.Buckets))
	}
	for key, want := range g.Buckets {
		c := DefaultDebertaV2Config()
		if _, err := fmt.Sscanf(key, "%d/%d", &c.PositionBuckets, &c.MaxRelativePositions); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, w := range want {
			if got := c.RelativeBucket(g.From + i); got != w {
				if bad++; bad <= 3 {
					t.Errorf("%s: bucket(%d) = %d, want %d", key, g.From+i, got, w)
				}
			}
		}
	}
}
