package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// encoderGolden is tools/goldens/encoders.py's golden.json: inputs and
// transformers' outputs computed by an independent implementation of its
// BERT, DistilBERT and RoBERTa math.
type encoderGolden struct {
	InputIDs      [][]int64     `json:"input_ids"`
	AttentionMask [][]int64     `json:"attention_mask"`
	TokenTypeIDs  [][]int64     `json:"token_type_ids"`
	Hidden        [][][]float64 `json:"hidden"`
	Logits        [][]float64   `json:"logits"`
}

func readEncoderGolden(t *testing.T, family string) *encoderGolden {
	t.Helper()
	if strings.HasPrefix(family, "deberta/") { // tools/goldens/deberta.py's expected.json
		var g debertaGolden
		b, err := os.ReadFile(filepath.Join("testdata", family, "expected.json"))
		if err == nil {
			err = json.Unmarshal(b, &g)
		}
		if err != nil {
			t.Fatal(err)
		}
		return &encoderGolden{InputIDs: g.InputIDs, AttentionMask: g.AttentionMask, TokenTypeIDs: g.TokenTypeIDs, Hidden: g.Hidden, Logits: g.Logits}
	}
	b, err := os.ReadFile(filepath.Join("testdata", family, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g encoderGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func flat(rows [][]int64) ([]int64, int64, int64) {
	var out []int64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out, int64(len(rows)), int64(len(rows[0]))
}

// encoderForward runs g's inputs through m: the hidden states (B, T, H)
// and the logits read at position 0, as the families' heads read them.
func encoderForward(t *testing.T, m *Model, g *encoderGolden, typeIDs bool) (hidden, logits []float32) {
	t.Helper()
	tensor.Tidy(func() {
		ids, B, T := flat(g.InputIDs)
		mask, _, _ := flat(g.AttentionMask)
		in := &Input{IDs: tensor.FromInt64s(ids, B, T), AttentionMask: tensor.FromInt64s(mask, B, T)}
		if typeIDs {
			tt, _, _ := flat(g.TokenTypeIDs)
			in.TokenTypeIDs = tensor.FromInt64s(tt, B, T)
		}
		var h *tensor.Tensor
		tensor.NoGrad(func() { h = m.Hidden(in) })
		hidden = h.Float32s()
		logits = m.Scores(h.Select(1, 0)).Float32s()
	})
	return hidden, logits
}

// checkEncoderGolden compares the hidden states at real tokens (pads'
// states are not defined the same way: rl counts their positions from
// the mask) and the logits with the golden values, to 1e-5.
func checkEncoderGolden(t *testing.T, what string, g *encoderGolden, hidden, logits []float32) {
	t.Helper()
	const tol = 1e-5
	H := len(g.Hidden[0][0])
	worst := 0.0
	for b, row := range g.Hidden {
		T := len(row)
		for i, want := range row {
			if g.AttentionMask[b][i] == 0 {
				continue
			}
			for j, w := range want {
				worst = max(worst, math.Abs(float64(hidden[(b*T+i)*H+j])-w))
			}
		}
	}
	if worst > tol {
		t.Errorf("%s: hidden states differ from transformers' math by %.3g (tolerance %g)", what, worst, tol)
	}
	if len(g.Logits) == 0 {
		return
	}
	K := len(g.Logits[0])
	for b, want := range g.Logits {
		for k, w := range want {
			if d := math.Abs(float64(logits[b*K+k]) - w); d > tol {
				t.Errorf("%s: logits[%d][%d] = %.7f, want %.7f", what, b, k, logits[b*K+k], w)
			}
		}
	}
}

// TestEncodersMatchTransformers loads the checkpoints tools/goldens/
// encoders.py wrote with transformers' names (BERT as a pytorch_model.bin
// with its position_ids buffer) and compares the forward, with padding and
// token_type_ids, with the script's independent computation; then saves
// each, checks the names, config fields and architectures transformers
// needs, and that the saved copy gives the same logits.
func TestEncodersMatchTransformers(t *testing.T) {
	for _, tc := range []struct {
		family, arch string
		labels       int
		id2label     string
		typeIDs      bool
	}{
		{"bert", "BertForSequenceClassification", 3, "pos", true},
		{"distilbert", "DistilBertForSequenceClassification", 2, "acceptable", false},
		{"roberta", "RobertaForSequenceClassification", 1, "LABEL_0", false},
	} {
		t.Run(tc.family, func(t *testing.T) {
			g := readEncoderGolden(t, tc.family)
			src := filepath.Join("testdata", tc.family)
			m, err := Load(src, LoadOptions{Head: ScoreHead})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Config.NumLabels != tc.labels || m.Config.ID2Label[tc.labels-1] != tc.id2label {
				t.Errorf("num_labels %d id2label %v, want %d labels ending in %s", m.Config.NumLabels, m.Config.ID2Label, tc.labels, tc.id2label)
			}
			hidden, logits := encoderForward(t, m, g, tc.typeIDs)
			checkEncoderGolden(t, tc.family, g, hidden, logits)
			if tc.family == "roberta" {
				// a pair's type ids (RobertaProcessing gives the second
				// text 1s) do not reach RoBERTa's single type embedding
				ones := *g
				ones.TokenTypeIDs = [][]int64{{0, 0, 0, 1, 1, 1, 1}, {0, 0, 1, 1, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0}}
				_, l1 := encoderForward(t, m, &ones, true)
				if !slices.Equal(l1, logits) {
					t.Errorf("roberta with type ids 1: logits %v, want %v", l1, logits)
				}
			}

			dir := t.TempDir()
			if out := os.Getenv("RL_ENCODER_SAVE_DIR"); out != "" {
				// for `tools/goldens/encoders.py check $RL_ENCODER_SAVE_DIR/<family>`
				dir = filepath.Join(out, tc.family)
			}
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			cfg := map[string]any{}
			b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			srcCfg := map[string]any{}
			b, _ = os.ReadFile(filepath.Join(src, "config.json"))
			_ = json.Unmarshal(b, &srcCfg)
			for _, k := range []string{"model_type", "vocab_size", "max_position_embeddings", "pad_token_id", "id2label", "label2id",
				"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "type_vocab_size", "layer_norm_eps",
				"hidden_act", "hidden_dropout_prob", "problem_type", "dim", "n_layers", "n_heads", "hidden_dim", "activation", "seq_classif_dropout"} {
				if w, ok := srcCfg[k]; ok && !jsonEqual(cfg[k], w) {
					t.Errorf("saved config.json %s = %v, want %v", k, cfg[k], w)
				}
			}
			if a, _ := cfg["architectures"].([]any); len(a) != 1 || a[0] != tc.arch {
				t.Errorf("architectures = %v, want [%s]", cfg["architectures"], tc.arch)
			}
			f, err := safetensors.ReadModelDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := paramShapes(m.Config, ScoreHead)
			got := f.Names()
			if len(got) != len(want) {
				t.Errorf("saved %d tensors, want %d", len(got), len(want))
			}
			for _, n := range got {
				if _, ok := want[n]; !ok {
					t.Errorf("saved an unexpected tensor %s", n)
				}
			}
			m2, err := Load(dir, LoadOptions{Head: ScoreHead})
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Free()
			_, logits2 := encoderForward(t, m2, g, tc.typeIDs)
			if !slices.Equal(logits, logits2) {
				t.Errorf("reloaded logits %v, want %v", logits2, logits)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestEncoderPaddingInvariant: a row's logits do not depend on the pads
// after it (bidirectional attention masks them), nor on left pads
// (absolute positions count real tokens; DeBERTa's relative distances do
// not change), and a row read alone equals the same row in a batch.
func TestEncoderPaddingInvariant(t *testing.T) {
	for _, family := range []string{"bert", "distilbert", "roberta", "deberta/v2", "deberta/v3"} {
		m, err := Load(filepath.Join("testdata", family), LoadOptions{Head: ScoreHead})
		if err != nil {
			t.Fatal(err)
		}
		pad := int64(*m.Config.PadTokenID)
		row := []int64{5, 17, 23}
		if family == "roberta" {
			row = []int64{0, 17, 2}
		}
		score := func(ids, mask []int64) []float32 {
			var out []float32
			tensor.Tidy(func() {
				T := int64(len(ids))
				in := &Input{IDs: tensor.FromInt64s(ids, 1, T), AttentionMask: tensor.FromInt64s(mask, 1, T)}
				var sc *tensor.Tensor
				tensor.NoGrad(func() { sc = m.Scores(m.Hidden(in)) })
				at := m.Config.ScoreIndex(len(ids)-1, func(i int) int64 { return ids[i] })
				out = sc.Select(1, int64(at)).Float32s()
			})
			return out
		}
		alone := score(row, []int64{1, 1, 1})
		right := score(append(slices.Clone(row), pad, pad), []int64{1, 1, 1, 0, 0})
		left := score(append([]int64{pad, pad}, row...), []int64{0, 0, 1, 1, 1})
		for name, got := range map[string][]float32{"right-padded": right, "left-padded": left} {
			for k := range alone {
				if math.Abs(float64(got[k]-alone[k])) > 1e-5 {
					t.Errorf("%s %s: scores %v, alone %v", family, name, got, alone)
				}
			}
		}
		m.Free()
	}
}

// TestEncoderRefusals: encoders have no LM head and no KV cache, and
// unsupported config fields are named.
func TestEncoderRefusals(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bert"), LoadOptions{Head: LMHead})
	if err == nil || !strings.Contains(err.Error(), "no LM head") {
		t.Errorf("bert with an LM head: %v, want a refusal", err)
	}
	c, err := Preset("tiny-bert", 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(c, LMHead, 0, tensor.CPU); err == nil || !strings.Contains(err.Error(), "no LM head") {
		t.Errorf("New(bert, LMHead): %v, want a refusal", err)
	}
	for js, want := range map[string]string{
		`{"model_type":"bert","position_embedding_type":"relative_key"}`: "position_embedding_type",
		`{"model_type":"bert","hidden_act":"swish"}`:                     "hidden_act",
		`{"model_type":"bert","is_decoder":true}`:                        "is_decoder",
		`{"model_type":"bert","hidden_size":30}`:                         "hidden_size 30 is not a multiple",
		`{"model_type":"distilbert","dim":30}`:                           "dim 30 is not a multiple",
		`{"model_type":"roberta","problem_type":"ranking"}`:              "problem_type",
		`{"model_type":"bert","pad_token_id":40000}`:                     "pad_token_id",
	} {
		if _, err := ParseConfig([]byte(js)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", js, err, want)
		}
	}
	m, err := New(c.withLabels(2), ScoreHead, 0, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	err = func() (err error) {
		defer tensor.Recover(&err, "forward")
		tensor.Tidy(func() {
			cache := m.NewKVCache()
			m.Hidden(&Input{IDs: tensor.FromInt64s([]int64{2, 3}, 1, 2), Cache: cache})
		})
		return nil
	}()
	if err == nil || !strings.Contains(err.Error(), "KV cache") {
		t.Errorf("encoder forward with a cache: %v, want a refusal", err)
	}
}

func (c *Config) withLabels(k int) *Config {
	n := c.Clone()
	n.NumLabels = k
	return n
}

// TestClassificationLoss checks the three problem types against values
// computed by hand from their formulas.
func TestClassificationLoss(t *testing.T) {
	logits := []float32{2, 0, -1, 0.5, 1, 1} // (2, 3)
	var got [3]float64
	tensor.Tidy(func() {
		x := tensor.FromFloat32s(logits, 2, 3)
		ce, err := ClassificationLoss(SingleLabel, x, tensor.FromInt64s([]int64{0, 2}, 2))
		if err != nil {
			t.Fatal(err)
		}
		bce, _ := ClassificationLoss(MultiLabel, x, tensor.FromFloat32s([]float32{1, 0, 0, 0, 1, 1}, 2, 3))
		mse, _ := ClassificationLoss(Regression, tensor.FromFloat32s([]float32{0.5, -1}, 2, 1), tensor.FromFloat32s([]float32{1, 1}, 2))
		got = [3]float64{ce.Item(), bce.Item(), mse.Item()}
	})
	lse := func(v ...float64) float64 {
		s := 0.0
		for _, x := range v {
			s += math.Exp(x)
		}
		return math.Log(s)
	}
	sp := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	want := [3]float64{
		((lse(2, 0, -1) - 2) + (lse(0.5, 1, 1) - 1)) / 2,
		// BCE with logits: y=1 -> softplus(-x), y=0 -> softplus(x)
		(sp(-2) + sp(0) + sp(-1) + sp(0.5) + sp(-1) + sp(-1)) / 6,
		(0.25 + 4) / 2,
	}
	for i, name := range []string{"cross-entropy", "BCE", "MSE"} {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("%s = %.7f, want %.7f", name, got[i], want[i])
		}
	}
	if _, err := ClassificationLoss("ranking", nil, nil); err == nil {
		t.Error("an unknown problem type gave no error")
	}
	c := &Config{NumLabels: 1}
	if p := c.ResolveProblemType(true); p != Regression {
		t.Errorf("num_labels 1: %s, want regression", p)
	}
	c.NumLabels = 3
	if p := c.ResolveProblemType(true); p != SingleLabel {
		t.Errorf("integer labels: %s, want single_label_classification", p)
	}
	if p := c.ResolveProblemType(false); p != MultiLabel {
		t.Errorf("float labels: %s, want multi_label_classification", p)
	}
}

// TestEncoderLora: peft's default targets per family (bert and roberta
// query,value; distilbert q_lin,v_lin; deberta-v2 query_proj,value_proj),
// the classifier trained in full (DeBERTa's pooler stays frozen: peft's
// modules_to_save for sequence classification is the classifier)
// (modules_to_save, RoBERTa's classifier.dense and out_proj included), and
// fresh adapters leave the scores unchanged.
func TestEncoderLora(t *testing.T) {
	for _, tc := range []struct {
		family string
		head   []string
	}{
		{"bert", []string{"classifier.bias", "classifier.weight"}},
		{"distilbert", []string{"classifier.bias", "classifier.weight"}},
		{"roberta", []string{"classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"}},
		{"deberta/v2", []string{"classifier.bias", "classifier.weight"}},
	} {
		m, err := Load(filepath.Join("testdata", tc.family), LoadOptions{Head: ScoreHead})
		if err != nil {
			t.Fatal(err)
		}
		g := readEncoderGolden(t, tc.family)
		types := tc.family == "bert" || tc.family == "deberta/v2"
		_, before := encoderForward(t, m, g, types)
		if err := m.AddLora(LoraConfig{R: 4, Alpha: 8}); err != nil {
			t.Fatal(err)
		}
		var adapted, saved []string
		for _, p := range m.Trainable() {
			n := strings.TrimPrefix(p.Name, "base_model.model.")
			if strings.Contains(n, ".lora_A.") {
				adapted = append(adapted, n[strings.LastIndex(n[:strings.Index(n, ".lora_A.")], ".")+1:strings.Index(n, ".lora_A.")])
			} else if !strings.Contains(n, ".lora_B.") {
				saved = append(saved, n)
			}
		}
		slices.Sort(saved)
		wantTargets := map[string][]string{"bert": {"query", "value"}, "roberta": {"query", "value"}, "distilbert": {"q_lin", "v_lin"},
			"deberta/v2": {"query_proj", "value_proj"}}[tc.family]
		if len(adapted) != 2*m.Config.NumLayers {
			t.Errorf("%s: adapted %v, want %v in each of %d layers", tc.family, adapted, wantTargets, m.Config.NumLayers)
		}
		for _, a := range adapted {
			if !slices.Contains(wantTargets, a) {
				t.Errorf("%s: adapted %s, want only %v", tc.family, a, wantTargets)
			}
		}
		if !slices.Equal(saved, tc.head) {
			t.Errorf("%s: modules_to_save parameters %v, want %v", tc.family, saved, tc.head)
		}
		_, after := encoderForward(t, m, g, types)
		for i := range before {
			if math.Abs(float64(after[i]-before[i])) > 1e-6 {
				t.Fatalf("%s: fresh adapters changed the scores: %v -> %v", tc.family, before, after)
			}
		}
		// as after training: B and the head changed; saved as peft and
		// loaded onto the base, the scores are the same
		tensor.NoGrad(func() {
			for _, p := range m.Trainable() {
				if !strings.Contains(p.Name, "lora_A") {
					p.T.Normal_(0, 0.3)
				}
			}
		})
		_, trained := encoderForward(t, m, g, types)
		dir := t.TempDir()
		if err := m.SaveAdapter(dir); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir, LoadOptions{Head: ScoreHead, BaseModel: filepath.Join("testdata", tc.family)})
		if err != nil {
			t.Fatal(err)
		}
		_, reloaded := encoderForward(t, back, g, types)
		if !slices.Equal(trained, reloaded) || slices.Equal(trained, before) {
			t.Errorf("%s: adapter saved and loaded: scores %v, before saving %v (fresh %v)", tc.family, reloaded, trained, before)
		}
		back.Free()
		m.Free()
	}
}

// TestLoadBaseEncoder: a pretraining checkpoint, as bert-base-uncased's
// files are (legacy LayerNorm.gamma/beta names, the MLM head cls.*, no
// classifier), loads as a classifier with a new head, as from_pretrained
// does: the body's hidden states are the fixture's, the classifier is
// drawn N(0, initializer_range) with zero bias.
func TestLoadBaseEncoder(t *testing.T) {
	f, err := safetensors.ReadModelDir(filepath.Join("testdata", "bert"))
	if err != nil {
		t.Fatal(err)
	}
	out := &safetensors.File{Tensors: map[string]safetensors.Tensor{}}
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "classifier.") {
			continue
		}
		name := strings.Replace(strings.Replace(n, "LayerNorm.weight", "LayerNorm.gamma", 1), "LayerNorm.bias", "LayerNorm.beta", 1)
		out.Tensors[name] = f.Tensors[n]
	}
	out.Tensors["cls.predictions.bias"] = f.Tensors["classifier.bias"]
	dir := t.TempDir()
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), out); err != nil {
		t.Fatal(err)
	}
	writeBaseConfig(t, filepath.Join("testdata", "bert"), dir, "BertForPreTraining")
	m, err := Load(dir, LoadOptions{Head: ScoreHead, NumLabels: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	g := readEncoderGolden(t, "bert")
	hidden, logits := encoderForward(t, m, g, true)
	checkEncoderGolden(t, "base bert", &encoderGolden{InputIDs: g.InputIDs, AttentionMask: g.AttentionMask, Hidden: g.Hidden, Logits: [][]float64{}}, hidden, nil)
	if len(logits) != 3*4 || m.Config.Architectures[0] != "BertForSequenceClassification" {
		t.Errorf("logits %v, architectures %v: want 4 labels of a BertForSequenceClassification", logits, m.Config.Architectures)
	}
	checkFreshHead(t, m, "classifier")
}

// writeBaseConfig writes src's config.json into dir as a pretraining
// checkpoint has it: no id2label or label2id, architectures [arch].
func writeBaseConfig(t *testing.T, src, dir, arch string) {
	t.Helper()
	var c map[string]any
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		t.Fatal(err)
	}
	delete(c, "id2label")
	delete(c, "label2id")
	c["architectures"] = []string{arch}
	b, _ = json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkFreshHead: module was initialised as from_pretrained initialises a
// new head (BERT's and DeBERTa's _init_weights): weight N(0,
// initializer_range 0.02), bias zero.
func checkFreshHead(t *testing.T, m *Model, module string) {
	t.Helper()
	w, b := m.Param(module+".weight").Float32s(), m.Param(module+".bias").Float32s()
	var ss float64
	for _, v := range w {
		ss += float64(v) * float64(v)
	}
	if std := math.Sqrt(ss / float64(len(w))); std < 0.01 || std > 0.03 || slices.Max(b) != 0 || slices.Min(b) != 0 {
		t.Errorf("new %s: std %.4f (want about initializer_range 0.02), bias %v", module, std, b)
	}
}
