package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/safetensors"
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

// TestDebertaV2Golden: the forward pass of the tiny fixtures written by
// tools/goldens/deberta.py (transformers' DeBERTa-v2 math in plain torch:
// v3's log buckets, shared keys and normalised relative embeddings; v2's
// pos_key_proj/pos_query_proj, absolute positions, token types and
// embed_proj), loaded as any encoder is (Load), equals its logits and last
// hidden states to 1e-5, with padded rows; the relative positions equal
// build_relative_position's.
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
			m, err := Load(dir, LoadOptions{Head: ScoreHead})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Config.NumLabels != len(g.Logits[0]) || m.Config.Architectures[0] != "DebertaV2ForSequenceClassification" {
				t.Errorf("num_labels %d, architectures %v: want %d labels of a DebertaV2ForSequenceClassification", m.Config.NumLabels, m.Config.Architectures, len(g.Logits[0]))
			}
			T := len(g.InputIDs[0])
			rp := m.Config.RelativePositions(T)
			for q := range T {
				for k := range T {
					if rp[q*T+k] != g.RelPos[q][k] {
						t.Fatalf("relative position (%d, %d) = %d, want %d", q, k, rp[q*T+k], g.RelPos[q][k])
					}
				}
			}
			eg := &encoderGolden{InputIDs: g.InputIDs, AttentionMask: g.AttentionMask, TokenTypeIDs: g.TokenTypeIDs, Hidden: g.Hidden, Logits: g.Logits}
			hidden, logits := encoderForward(t, m, eg, true)
			checkEncoderGolden(t, "deberta "+name, eg, hidden, logits)
			// padding changes nothing: the shortest row alone
			n := 0
			for _, v := range g.AttentionMask[len(g.AttentionMask)-1] {
				n += int(v)
			}
			alone := &encoderGolden{InputIDs: [][]int64{g.InputIDs[len(g.InputIDs)-1][:n]}, AttentionMask: [][]int64{slices.Repeat([]int64{1}, n)},
				TokenTypeIDs: [][]int64{g.TokenTypeIDs[len(g.TokenTypeIDs)-1][:n]}}
			_, l := encoderForward(t, m, alone, true)
			for j, v := range l {
				if want := g.Logits[len(g.Logits)-1][j]; math.Abs(float64(v)-want) > 1e-5 {
					t.Errorf("unpadded last row: logit %d = %v, want %v", j, v, want)
				}
			}
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
		{"activation", `"hidden_act": "gelu"`, `"hidden_act": "swish"`, `hidden_act "swish"`},
		{"pooler size", `"pooler_hidden_size": 16`, `"pooler_hidden_size": 8`, "pooler_hidden_size 8"},
		{"shapes", `"intermediate_size": 32`, `"intermediate_size": 48`, "intermediate.dense.weight has shape [32 16] in the weights, config.json wants [48 16]"},
		{"missing", `"share_att_key": true`, `"share_att_key": false`, "weights lack deberta.encoder.layer.0.attention.self.pos_key_proj.bias"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		if !strings.Contains(string(cfg), c.old) {
			t.Fatalf("%s: fixture has no %s", c.name, c.old)
		}
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), c.old, c.new, 1)), 0o644)
		os.WriteFile(filepath.Join(dir, "model.safetensors"), weights, 0o644)
		m, err := Load(dir, LoadOptions{Head: ScoreHead})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
		m.Free()
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
		c := &Config{}
		if _, err := fmt.Sscanf(key, "%d/%d", &c.DeBERTa.PositionBuckets, &c.DeBERTa.MaxRelativePositions); err != nil {
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

// tinyDeberta is tiny-deberta (DeBERTa-v3's layout) at test sizes: 2
// layers, width 32, 8 buckets over distances up to 32.
func tinyDeberta(t *testing.T, labels int) *Config {
	t.Helper()
	c, err := Preset("tiny-deberta", 16)
	if err != nil {
		t.Fatal(err)
	}
	c.HiddenSize, c.NumLayers, c.NumHeads, c.HeadDim, c.IntermediateSize = 32, 2, 4, 8, 64
	c.DeBERTa.EmbeddingSize, c.DeBERTa.PositionBuckets, c.DeBERTa.MaxRelativePositions = 32, 8, 32
	c.NumLabels = labels
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c.Clone()
}

// TestDebertaV2SaveLoad: a DeBERTa-v2/v3 classifier saves as transformers'
// DebertaV2ForSequenceClassification (architectures, DebertaV2Config's
// fields as the source wrote them, the source's tensor names exactly) and
// loads back to the same logits; the preset's config round-trips too.
func TestDebertaV2SaveLoad(t *testing.T) {
	for _, name := range []string{"v3", "v2"} {
		src := filepath.Join("testdata", "deberta", name)
		m, err := Load(src, LoadOptions{Head: ScoreHead})
		if err != nil {
			t.Fatal(err)
		}
		eg := readEncoderGolden(t, "deberta/"+name)
		_, logits := encoderForward(t, m, eg, true)
		dir := t.TempDir()
		if out := os.Getenv("RL_ENCODER_SAVE_DIR"); out != "" {
			// for `tools/goldens/deberta.py check $RL_ENCODER_SAVE_DIR/deberta-<name> <name>`
			dir = filepath.Join(out, "deberta-"+name)
		}
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		saved, srcCfg := map[string]any{}, map[string]any{}
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if err := json.Unmarshal(b, &saved); err != nil {
			t.Fatal(err)
		}
		b, _ = os.ReadFile(filepath.Join(src, "config.json"))
		_ = json.Unmarshal(b, &srcCfg)
		for k, want := range srcCfg {
			if k == "pos_att_type" {
				if !jsonEqual(saved[k], []string{"p2c", "c2p"}) { // DebertaV2Config's list form
					t.Errorf("%s: saved pos_att_type = %v, want [p2c c2p]", name, saved[k])
				}
				continue
			}
			if !jsonEqual(saved[k], want) {
				t.Errorf("%s: saved config.json %s = %v, want %v", name, k, saved[k], want)
			}
		}
		f, _ := safetensors.ReadModelDir(dir)
		sf, _ := safetensors.ReadModelDir(src)
		if !slices.Equal(f.Names(), sf.Names()) {
			t.Errorf("%s: saved tensors %v, want the source's %v", name, f.Names(), sf.Names())
		}
		back, err := Load(dir, LoadOptions{Head: ScoreHead})
		if err != nil {
			t.Fatal(err)
		}
		_, again := encoderForward(t, back, eg, true)
		if !slices.Equal(logits, again) {
			t.Errorf("%s: reloaded logits %v, want %v", name, again, logits)
		}
		back.Free()
		m.Free()
	}
	c, err := Preset("tiny-deberta", 100)
	if err != nil {
		t.Fatal(err)
	}
	if c.Family() != DeBERTaV2 || !c.Encoder() || !c.DeBERTa.RelativeAttention || c.DeBERTa.PositionBiasedInput ||
		c.attSpan() != 256 || !c.normRel() || !c.DeBERTa.ShareAttKey || len(c.DeBERTa.PosAttType) != 2 {
		t.Errorf("tiny-deberta: %+v, want DeBERTa-v3's layout", c.DeBERTa)
	}
	if !slices.Contains(PresetNames, "tiny-deberta") {
		t.Error("PresetNames lacks tiny-deberta")
	}
	if again := c.Clone(); !reflect.DeepEqual(again.DeBERTa, c.DeBERTa) || again.HeadDim != c.HeadDim {
		t.Errorf("config round trip: %+v, want %+v", again.DeBERTa, c.DeBERTa)
	}
}

// TestDebertaV2Trains: every parameter of a DeBERTa-v3 classifier gets a
// gradient (the relative embeddings and their LayerNorm included), the
// same with gradient checkpointing, and Adam on cross-entropy fits 32 rows
// labelled by word order (is the first word's id above the second's? the
// model has no absolute positions), the loss falling below a third of its
// start.
func TestDebertaV2Trains(t *testing.T) {
	tensor.ManualSeed(3)
	m, err := New(tinyDeberta(t, 2), ScoreHead, 0, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	plain, _ := gradsOf(t, m)
	m.GradientCheckpointing = true
	ck, _ := gradsOf(t, m)
	m.GradientCheckpointing = false
	if len(plain) != len(m.Params()) {
		t.Errorf("%d of %d parameters got a gradient", len(plain), len(m.Params()))
	}
	for name, g := range plain {
		nonzero := slices.ContainsFunc(g, func(v float32) bool { return v != 0 })
		if !nonzero {
			t.Errorf("%s: zero gradient", name)
		}
		for i := range g {
			if d := math.Abs(float64(g[i] - ck[name][i])); d > 1e-5+1e-4*math.Abs(float64(g[i])) {
				t.Errorf("%s: gradient %g with checkpointing, %g without", name, ck[name][i], g[i])
				break
			}
		}
	}

	// the data: [CLS]=1 a b c d [SEP]=2, label a > b; ids 4..15
	const N, T = 32, 6
	ids, labels := make([]int64, N*T), make([]int64, N)
	for i := range N {
		row := []int64{1, int64(4 + (i*7)%12), int64(4 + (i*5+3)%12), int64(4 + (i*3)%12), int64(4 + i%12), 2}
		if row[1] == row[2] {
			row[2] = 4 + (row[2]-3)%12
		}
		copy(ids[i*T:], row)
		if row[1] > row[2] {
			labels[i] = 1
		}
	}
	params := m.Params()
	for _, p := range params {
		p.T.SetRequiresGrad(true)
	}
	mom, vel := make([]*tensor.Tensor, len(params)), make([]*tensor.Tensor, len(params))
	for i, p := range params {
		mom[i] = tensor.ZerosOn(p.T.Shape(), tensor.Float32, tensor.CPU).Keep()
		vel[i] = tensor.ZerosOn(p.T.Shape(), tensor.Float32, tensor.CPU).Keep()
	}
	defer func() {
		for i := range mom {
			mom[i].Free()
			vel[i].Free()
		}
	}()
	const lr, b1, b2 = 3e-3, 0.9, 0.999
	var first, last float64
	for step := 1; step <= 80; step++ {
		tensor.Tidy(func() {
			for _, p := range params {
				p.T.ZeroGrad()
			}
			in := &Input{IDs: tensor.FromInt64s(ids, N, T), AttentionMask: tensor.Ones([]int64{N, T}, tensor.Int64, tensor.CPU), Train: true}
			logits := m.ScoresFor(in, m.Hidden(in)).Select(1, 0)
			loss, err := ClassificationLoss(SingleLabel, logits, tensor.FromInt64s(labels, N))
			if err != nil {
				t.Fatal(err)
			}
			last = loss.Item()
			if step == 1 {
				first = last
			}
			loss.Backward()
			tensor.NoGrad(func() {
				for i, p := range params {
					g := p.T.Grad()
					mom[i].Lerp_(g, 1-b1)
					vel[i].MulScalar_(b2)
					vel[i].Addcmul_(g.MulScalar(1-b2), g)
					mh := mom[i].DivScalar(1 - math.Pow(b1, float64(step)))
					vh := vel[i].DivScalar(1 - math.Pow(b2, float64(step))).Sqrt().AddScalar(1e-8)
					p.T.Sub_(mh.Div(vh).MulScalar(lr))
				}
			})
		})
	}
	t.Logf("cross-entropy %.4f -> %.4f in 80 steps", first, last)
	if !(last < first/3) {
		t.Errorf("loss %.4f -> %.4f: want it below a third of the start", first, last)
	}
}

// TestLoadBaseDeberta: a pretraining checkpoint as microsoft/deberta-v3-*
// publishes it (no pooler or classifier; the MLM head lm_predictions.*, the
// discriminator's mask_predictions.*, and absolute position_embeddings
// that position_biased_input false does not use) loads as a classifier
// with a new ContextPooler and classifier, as from_pretrained does: the
// body's hidden states are the fixture's, the head N(0,
// initializer_range) with zero biases.
func TestLoadBaseDeberta(t *testing.T) {
	src := filepath.Join("testdata", "deberta", "v3")
	f, err := safetensors.ReadModelDir(src)
	if err != nil {
		t.Fatal(err)
	}
	out := &safetensors.File{Tensors: map[string]safetensors.Tensor{}}
	for _, n := range f.Names() {
		if !strings.HasPrefix(n, "pooler.") && !strings.HasPrefix(n, "classifier.") {
			out.Tensors[n] = f.Tensors[n]
		}
	}
	out.Tensors["lm_predictions.lm_head.dense.weight"] = f.Tensors["pooler.dense.weight"]
	out.Tensors["mask_predictions.classifier.bias"] = f.Tensors["classifier.bias"]
	out.Tensors["deberta.embeddings.position_embeddings.weight"] = f.Tensors["deberta.embeddings.word_embeddings.weight"]
	dir := t.TempDir()
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), out); err != nil {
		t.Fatal(err)
	}
	writeBaseConfig(t, src, dir, "DebertaV2ForMaskedLM")
	m, err := Load(dir, LoadOptions{Head: ScoreHead, NumLabels: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	eg := readEncoderGolden(t, "deberta/v3")
	eg.Logits = [][]float64{}
	hidden, logits := encoderForward(t, m, eg, true)
	checkEncoderGolden(t, "base deberta", eg, hidden, nil)
	if len(logits) != 3*3 || m.Config.Architectures[0] != "DebertaV2ForSequenceClassification" || m.Param("deberta.embeddings.position_embeddings.weight") != nil {
		t.Errorf("logits %v, architectures %v: want 3 labels of a DebertaV2ForSequenceClassification without position embeddings", logits, m.Config.Architectures)
	}
	checkFreshHead(t, m, "pooler.dense")
	checkFreshHead(t, m, "classifier")
}
