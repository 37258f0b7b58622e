package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rlsuite/rl/shared/modeltest/reference"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// llama31Config is config.json as transformers 4.56 writes a Llama-3.1
// model (sizes shrunk; rope_scaling left out, rl refuses it today), with
// both dtype keys as transformers 4.56 also reads them.
const llama31Config = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 4,
  "hidden_act": "silu",
  "hidden_size": 16,
  "initializer_range": 0.02,
  "intermediate_size": 40,
  "max_position_embeddings": 32,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "transformers_version": "4.56.1",
  "use_cache": true,
  "vocab_size": 128256
}`

// llama31Generation is Llama-3.1-Instruct's generation_config.json.
const llama31Generation = `{
  "bos_token_id": 128000,
  "do_sample": true,
  "eos_token_id": [128001, 128008, 128009],
  "temperature": 0.6,
  "top_p": 0.9,
  "transformers_version": "4.56.1"
}`

// writeLlama31 writes a tiny Llama-3.1-style checkpoint with bf16 weights.
func writeLlama31(t *testing.T, cfgJSON string) string {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(cfgJSON), &raw); err != nil {
		t.Fatal(err)
	}
	vocab := int(raw["vocab_size"].(float64))
	ref := reference.Config{ModelType: "llama", VocabSize: vocab, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, Intermediate: 40, MaxPositions: 32, Eps: 1e-5, RopeTheta: 5e5}
	dir := t.TempDir()
	f := &safetensors.File{Metadata: map[string]string{"format": "pt"}, Tensors: map[string]safetensors.Tensor{}}
	for name, rt := range reference.RandomWeights(ref, 3, 0.02) {
		shape := make([]int64, len(rt.Shape))
		for i, d := range rt.Shape {
			shape[i] = int64(d)
		}
		st, err := safetensors.FromFloat32s(rt.Data, shape, safetensors.BF16)
		if err != nil {
			t.Fatal(err)
		}
		f.Tensors[name] = st
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(llama31Generation), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readJSONMap(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestSaveKeepsEveryField loads a checkpoint written the way transformers
// writes Llama-3.1 and saves it: config.json keeps every key and value
// (rl owns only architectures, which it sets from the head, and the dtype,
// which follows the saved weights), the eos list stays a list,
// generation_config.json is the source's, unchanged, and a bf16 source is
// saved in bf16 although trained in float32.
func TestSaveKeepsEveryField(t *testing.T) {
	vocab := 64
	var raw map[string]any
	_ = json.Unmarshal([]byte(llama31Config), &raw)
	raw["vocab_size"] = vocab
	cj, _ := json.Marshal(raw)
	for _, tc := range []struct {
		name     string
		drop     string // dtype key the source lacks
		opts     LoadOptions
		wantSave string
	}{
		{"dtype+torch_dtype, float32 master weights", "", LoadOptions{}, "bfloat16"},
		{"dtype only (transformers >= 4.56)", "torch_dtype", LoadOptions{}, "bfloat16"},
		{"torch_dtype only", "dtype", LoadOptions{}, "bfloat16"},
		{"explicit float32", "", LoadOptions{DType: tensor.Float32}, "float32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := map[string]any{}
			_ = json.Unmarshal(cj, &src)
			src["torch_dtype"] = "bfloat16"
			if tc.drop != "" {
				delete(src, tc.drop)
			}
			b, _ := json.Marshal(src)
			dir := writeLlama31(t, string(b))
			m, err := Load(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.DType != tensor.Float32 {
				t.Errorf("parameters in %s, want float32", m.DType)
			}
			if got := m.Config.StopIDs(); !reflect.DeepEqual(got, []int{128001, 128008, 128009}) {
				t.Errorf("StopIDs = %v", got)
			}
			out := t.TempDir()
			if err := m.Save(out); err != nil {
				t.Fatal(err)
			}
			got := readJSONMap(t, filepath.Join(out, "config.json"))
			want := readJSONMap(t, filepath.Join(dir, "config.json"))
			for _, k := range []string{"dtype", "torch_dtype"} {
				if _, ok := want[k]; ok {
					want[k] = tc.wantSave
				}
			}
			if !reflect.DeepEqual(got, want) {
				for k := range want {
					if !reflect.DeepEqual(got[k], want[k]) {
						t.Errorf("config.json %q = %v, want %v", k, got[k], want[k])
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("config.json has %q = %v, which the source lacks", k, got[k])
					}
				}
			}
			if g, w := readJSONMap(t, filepath.Join(out, "generation_config.json")), readJSONMap(t, filepath.Join(dir, "generation_config.json")); !reflect.DeepEqual(g, w) {
				t.Errorf("generation_config.json = %v, want the source's %v", g, w)
			}
			st, err := safetensors.ReadModelDir(out)
			if err != nil {
				t.Fatal(err)
			}
			for name, ten := range st.Tensors {
				if want := map[string]safetensors.DType{"bfloat16": safetensors.BF16, "float32": safetensors.F32}[tc.wantSave]; ten.DType != want {
					t.Fatalf("%s saved as %s, want %s", name, ten.DType, want)
				}
			}
			// A second round trip is stable.
			m2, err := Load(out, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Free()
			out2 := t.TempDir()
			if err := m2.Save(out2); err != nil {
				t.Fatal(err)
			}
			if a, b := readJSONMap(t, filepath.Join(out, "config.json")), readJSONMap(t, filepath.Join(out2, "config.json")); !reflect.DeepEqual(a, b) {
				t.Errorf("second save differs: %v vs %v", a, b)
			}
		})
	}
}

// TestNewModelGenerationConfig: a model without a source generation_config
// gets transformers' from_model_config one, eos list included, and
// config.json writes torch_dtype only.
func TestNewModelGenerationConfig(t *testing.T) {
	c, err := Preset("tiny-llama", 64)
	if err != nil {
		t.Fatal(err)
	}
	one, two := 1, 2
	c.BOSTokenID, c.EOSTokenID, c.EOSTokenIDs = &one, &two, []int{2, 3}
	m, err := New(c, LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	out := t.TempDir()
	if err := m.Save(out); err != nil {
		t.Fatal(err)
	}
	g := readJSONMap(t, filepath.Join(out, "generation_config.json"))
	want := map[string]any{"_from_model_config": true, "bos_token_id": 1.0, "eos_token_id": []any{2.0, 3.0}}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("generation_config.json = %v, want %v", g, want)
	}
	cj := readJSONMap(t, filepath.Join(out, "config.json"))
	if _, ok := cj["dtype"]; ok || cj["torch_dtype"] != "float32" {
		t.Errorf("config.json dtype %v torch_dtype %v, want torch_dtype float32 only", cj["dtype"], cj["torch_dtype"])
	}
	if !reflect.DeepEqual(cj["eos_token_id"], []any{2.0, 3.0}) {
		t.Errorf("config.json eos_token_id = %v", cj["eos_token_id"])
	}
}

// TestParseDType: the trainers' dtype option, empty by default, leaves
// LoadOptions.DType zero (train in float32, save in the source's dtype).
func TestParseDType(t *testing.T) {
	for s, want := range map[string]tensor.DType{"": 0, "float32": tensor.Float32, "bf16": tensor.BFloat16, "bfloat16": tensor.BFloat16} {
		if got, err := ParseDType(s); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v, want %v", s, got, err, want)
		}
	}
	if _, err := ParseDType("int7"); err == nil {
		t.Error("ParseDType(int7) succeeded")
	}
}
