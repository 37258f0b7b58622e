package model

import (
	"testing"
)

// FuzzParseConfig: no config.json panics or hangs ParseConfig (n_layer 1e18
// included), and an accepted config survives JSON and Clone, and its size
// is computable.
func FuzzParseConfig(f *testing.F) {
	for _, fam := range families4test() {
		f.Add(mustJSON(fam.cfg))
	}
	for _, s := range []string{
		`{"model_type":"gpt2","vocab_size":23,"n_embd":16,"n_layer":1e18,"n_head":4}`,
		`{"model_type":"gpt2","vocab_size":23,"n_embd":100000,"n_layer":2,"n_head":4}`,
		`{"model_type":"gpt2","vocab_size":23,"n_embd":16,"n_layer":2,"n_head":0}`,
		`{"model_type":"gpt2","vocab_size":-1,"layer_norm_epsilon":-1e-5}`,
		`{"model_type":"llama","vocab_size":29,"hidden_size":16,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3}`,
		`{"model_type":"llama","vocab_size":29,"hidden_size":16,"num_attention_heads":4,"head_dim":-2,"rope_theta":-1}`,
		`{"model_type":"qwen2","id2label":{"0":"a","x":"b"}}`,
		`{"model_type":"gpt2","id2label":{"-3":"a"},"vocab_size":3,"n_embd":4,"n_head":1,"n_layer":1}`,
		`{"model_type":"gpt2","eos_token_id":[1,2],"bos_token_id":"x"}`,
		`{"model_type":"bert"}`, `{}`, `[]`, `{"model_type":`, `null`,
		`{"model_type":"distilbert","dim":16,"n_heads":4,"n_layers":1,"seq_classif_dropout":1.5}`,
		`{"model_type":"roberta","pad_token_id":600,"max_position_embeddings":514,"type_vocab_size":-1}`,
		`{"model_type":"gpt2","vocab_size":1e300,"n_inner":1.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		for _, h := range []Head{LMHead, ScoreHead} {
			if n := NumParamsFor(c, h); !(n > 0) {
				t.Fatalf("NumParamsFor = %g for a valid config", n)
			}
		}
		js, err := c.JSON()
		if err != nil {
			t.Fatalf("JSON of a parsed config: %v", err)
		}
		c2, err := ParseConfig(js)
		if err != nil {
			t.Fatalf("a parsed config does not parse again: %v\n%s", err, js)
		}
		if c2.HiddenSize != c.HiddenSize || c2.NumLayers != c.NumLayers || c2.VocabSize != c.VocabSize || c2.NumHeads != c.NumHeads {
			t.Fatalf("sizes changed on JSON round trip:\n%s", js)
		}
	})
}
