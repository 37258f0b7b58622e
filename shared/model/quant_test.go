package model

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// quantGolden is tools/goldens/nf4.py's output: bitsandbytes' reference
// algorithm run in PyTorch.
type quantGolden struct {
	Shape      []int64 `json:"shape"`
	Weight     string  `json:"weight"`
	DynamicMap string  `json:"dynamic_map"`
	Q4         map[string]struct {
		Packed, Absmax, Qabsmax, Absmax2, Dequant string
		Offset                                    float64
	} `json:"-"`
	Int8 struct{ Q, Rowmax, Dequant string } `json:"int8"`
}

func f32s(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func raw(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readQuantGolden(t *testing.T) (*quantGolden, map[string]map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "quant.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g quantGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	json.Unmarshal(b, &all)
	q4 := map[string]map[string]any{}
	for _, k := range []string{"nf4", "nf4_nested", "fp4", "fp4_nested"} {
		var m map[string]any
		json.Unmarshal(all[k], &m)
		q4[k] = m
	}
	return &g, q4
}

// TestQuantizeMatchesBitsandbytes: NF4 and FP4 (with and without double
// quantisation) and int8 give bitsandbytes' bytes, absmax and dequantised
// values bit for bit, on a weight with a partial last block, an outlier and
// an all-zero row; the dynamic 8-bit map is bitsandbytes'.
func TestQuantizeMatchesBitsandbytes(t *testing.T) {
	g, q4 := readQuantGolden(t)
	w := f32s(t, g.Weight)
	if got, want := dynamicMap(), f32s(t, g.DynamicMap); !slices.Equal(got, want) {
		t.Fatalf("dynamic map differs from bitsandbytes' create_dynamic_map")
	}
	for name, gold := range q4 {
		qt, nested := strings.CutSuffix(name, "_nested")
		q, err := quantizeWeight4(w, qt, nested, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.packed.Bytes(); !slices.Equal(got, raw(t, gold["packed"].(string))) {
			t.Errorf("%s: packed codes differ", name)
		}
		if nested {
			if !slices.Equal(q.qabsmax, raw(t, gold["qabsmax"].(string))) || !slices.Equal(q.absmax2, f32s(t, gold["absmax2"].(string))) || q.offset != float32(gold["offset"].(float64)) {
				t.Errorf("%s: nested absmax differs", name)
			}
		} else if !slices.Equal(q.absmax.Float32s(), f32s(t, gold["absmax"].(string))) {
			t.Errorf("%s: absmax differs", name)
		}
		var dq []float32
		tensor.Tidy(func() { dq = q.dequant().Float32s() })
		want := f32s(t, gold["dequant"].(string))
		diff := 0
		maxErr := 0.0
		for i := range want {
			if dq[i] != want[i] {
				diff++
			}
			maxErr = math.Max(maxErr, math.Abs(float64(dq[i]-w[i])))
		}
		if diff > 0 {
			t.Errorf("%s: %d of %d dequantised values differ from bitsandbytes'", name, diff, len(want))
		}
		// the format's bound: half the widest gap between codes, times the block's absmax (at most 0.9 here)
		if maxErr > 0.9*0.17 {
			t.Errorf("%s: round-trip error %.4g above the format's bound", name, maxErr)
		}
		q.free()
	}
	// int8, row-wise
	var q8 *quant8
	tensor.Tidy(func() { q8 = quantizeWeight8(tensor.FromFloat32s(w, g.Shape...)) })
	gotQ := q8.q.Bytes()
	if !slices.Equal(gotQ, raw(t, g.Int8.Q)) || !slices.Equal(q8.rowmax.Float32s(), f32s(t, g.Int8.Rowmax)) {
		t.Errorf("int8 codes or row absmax differ")
	}
	tensor.Tidy(func() {
		if !slices.Equal(q8.dequant().Reshape(-1).Float32s(), f32s(t, g.Int8.Dequant)) {
			t.Errorf("int8 dequantised values differ")
		}
	})
	q8.q.Free()
	q8.rowmax.Free()
}

// TestQuantizedModel: a quantised base computes with the dequantised
// weights (the same logits as a float model holding them), takes about
// 4/32 (nf4) of the float32 bytes for its projections, trains adapters only,
// refuses to be saved in full or merged, and its adapter saves and loads.
func TestQuantizedModel(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		t.Run(fam, func(t *testing.T) {
			dir := filepath.Join("testdata", "peft", fam, "base")
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			ref, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Free()
			n := m.NumParams()
			if err := m.Quantize(QuantConfig{Bits: 4, QuantType: "nf4", DoubleQuant: true}); err != nil {
				t.Fatal(err)
			}
			if m.NumParams() != n {
				t.Errorf("NumParams %d after quantising, %d before", m.NumParams(), n)
			}
			stored, f32 := m.QuantizedBytes()
			if r := float64(stored) / float64(f32); r > 0.14 {
				t.Errorf("quantised projections take %.3f of their float32 bytes, want about 4.1/32", r)
			}
			// the float model with the dequantised weights written in
			tensor.NoGrad(func() {
				for ph, qw := range m.quant {
					tensor.Tidy(func() { ref.Param(qw.name).Copy_(qw.weight(tensor.Float32)) })
					_ = ph
				}
			})
			if d := maxRelDiff(logitsOf(t, m, false), logitsOf(t, ref, false)); d > 1e-6 {
				t.Errorf("quantised model's logits differ from its dequantised weights' by %.3g", d)
			}
			if err := m.Save(t.TempDir()); err == nil || !strings.Contains(err.Error(), "quantised") {
				t.Errorf("Save of a quantised model: %v, want a refusal", err)
			}
			if err := m.AddLora(LoraConfig{R: 2, Alpha: 4, TargetModules: []string{"all-linear"}}); err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Trainable() {
				if !strings.Contains(p.Name, "lora_") {
					t.Errorf("trainable %s in a quantised model", p.Name)
				}
			}
			tensor.NoGrad(func() {
				for _, p := range m.Trainable() {
					if strings.Contains(p.Name, "lora_B") {
						p.T.Normal_(0, 0.3)
					}
				}
			})
			adapted := logitsOf(t, m, false)
			if err := m.MergeAdapters(); err == nil || !strings.Contains(err.Error(), "peft#2321") {
				t.Errorf("merge into a quantised base: %v, want a refusal", err)
			}
			out := t.TempDir()
			if err := m.SaveAdapter(out); err != nil {
				t.Fatal(err)
			}
			// the adapter on the quantised base loads back to the same logits
			back, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer back.Free()
			if err := back.Quantize(QuantConfig{Bits: 4, QuantType: "nf4", DoubleQuant: true}); err != nil {
				t.Fatal(err)
			}
			if err := back.LoadAdapter(out); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(logitsOf(t, back, false), adapted); d != 0 {
				t.Errorf("adapter reloaded on the quantised base: logits differ by %.3g", d)
			}
		})
	}
}

// TestQuantLinearGradients: the quantised projection that dequantises its
// weight again in backward (tensor.QuantLinear, bitsandbytes' MatMul4Bit)
// gives the loss and every adapter gradient of dequantisation as an
// ordinary autograd op, for nf4 and int8 bases of both families, with and
// without gradient checkpointing.
func TestQuantLinearGradients(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		for _, bits := range []int{4, 8} {
			m, err := Load(filepath.Join("testdata", "peft", fam, "base"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Quantize(QuantConfig{Bits: bits, QuantType: "nf4", DoubleQuant: true}); err != nil {
				t.Fatal(err)
			}
			if err := m.AddLora(LoraConfig{R: 2, Alpha: 4, TargetModules: []string{"all-linear"}}); err != nil {
				t.Fatal(err)
			}
			tensor.NoGrad(func() {
				for _, p := range m.Trainable() {
					p.T.Normal_(0, 0.2) // B nonzero so every adapter has gradients
				}
			})
			m.UnfusedQuant = true
			want, l0 := gradsOf(t, m)
			m.UnfusedQuant = false
			got, l1 := gradsOf(t, m)
			m.GradientCheckpointing = true
			ck, l2 := gradsOf(t, m)
			name := fmt.Sprintf("%s %d-bit", fam, bits)
			for _, l := range []float64{l1, l2} {
				if math.Abs(l-l0) > 1e-5*math.Abs(l0) {
					t.Errorf("%s: loss %g, unfused %g", name, l, l0)
				}
			}
			if len(want) == 0 || len(got) != len(want) || len(ck) != len(want) {
				t.Fatalf("%s: %d / %d gradients, unfused %d", name, len(got), len(ck), len(want))
			}
			for p, g := range want {
				for _, other := range []map[string][]float32{got, ck} {
					worst := 0.0
					for i := range g {
						worst = math.Max(worst, math.Abs(float64(g[i]-other[p][i]))/(1e-3+math.Abs(float64(g[i]))))
					}
					if worst > 1e-4 {
						t.Errorf("%s: %s gradient differs by %.3g (relative)", name, p, worst)
					}
				}
			}
			m.Free()
		}
	}
}

// TestQuantizeWhileLoading: LoadOptions.Quant stores each projection as it
// is read, with the same bytes (codes, absmax, nested absmax, int8 rows)
// as a float load followed by Quantize, in float32 and bfloat16, for
// Llama and GPT-2's Conv1D; the model computes the same logits, and what
// is not a projection stays float.
func TestQuantizeWhileLoading(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		for _, c := range []struct {
			q  QuantConfig
			dt tensor.DType
		}{
			{QuantConfig{Bits: 4, QuantType: "nf4", DoubleQuant: true}, tensor.Float32},
			{QuantConfig{Bits: 4, QuantType: "fp4"}, tensor.BFloat16},
			{QuantConfig{Bits: 8}, tensor.Float32},
		} {
			dir := filepath.Join("testdata", "peft", fam, "base")
			ref, err := Load(dir, LoadOptions{DType: c.dt})
			if err != nil {
				t.Fatal(err)
			}
			if err := ref.Quantize(c.q); err != nil {
				t.Fatal(err)
			}
			q := c.q
			m, err := Load(dir, LoadOptions{DType: c.dt, Quant: &q})
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s %d-bit %s %s", fam, c.q.Bits, c.q.QuantType, c.dt)
			if !m.Quantized() || len(m.quant) != len(ref.quant) {
				t.Fatalf("%s: %d weights quantised while loading, %d by Quantize", name, len(m.quant), len(ref.quant))
			}
			byName := map[string]*quantized{}
			for _, qw := range ref.quant {
				byName[qw.name] = qw
			}
			for _, qw := range m.quant {
				r := byName[qw.name]
				if r == nil || !slices.Equal(qw.shape, r.shape) {
					t.Fatalf("%s: %s quantised while loading, not by Quantize (or another shape)", name, qw.name)
				}
				var got, want [][]byte
				if qw.q4 != nil {
					got = [][]byte{qw.q4.packed.Bytes(), qw.q4.absmax.Bytes(), qw.q4.qabsmax}
					want = [][]byte{r.q4.packed.Bytes(), r.q4.absmax.Bytes(), r.q4.qabsmax}
				} else {
					got = [][]byte{qw.q8.q.Bytes(), qw.q8.rowmax.Bytes()}
					want = [][]byte{r.q8.q.Bytes(), r.q8.rowmax.Bytes()}
				}
				for i := range got {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("%s: %s: stored bytes %d differ from Quantize's", name, qw.name, i)
					}
				}
			}
			if d := maxRelDiff(logitsOf(t, m, false), logitsOf(t, ref, false)); d != 0 {
				t.Errorf("%s: logits differ from Quantize's model by %.3g", name, d)
			}
			for _, p := range m.params {
				if m.quant[p.T] == nil && p.T.Numel() == 0 {
					t.Errorf("%s: %s is empty but not quantised", name, p.Name)
				}
			}
			ref.Free()
			m.Free()
		}
	}
	// a corrupt projection is caught as the mapped file is read
	src := filepath.Join("testdata", "peft", "llama", "base")
	corrupt := t.TempDir()
	f, err := safetensors.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	name := "model.layers.1.mlp.up_proj.weight"
	st := f.Tensors[name]
	st.Data = slices.Clone(st.Data)
	binary.LittleEndian.PutUint32(st.Data[4:], math.Float32bits(float32(math.NaN())))
	f.Tensors[name] = st
	if err := safetensors.WriteFile(filepath.Join(corrupt, "model.safetensors"), f); err != nil {
		t.Fatal(err)
	}
	cj, _ := os.ReadFile(filepath.Join(src, "config.json"))
	os.WriteFile(filepath.Join(corrupt, "config.json"), cj, 0o644)
	q4 := QuantConfig{Bits: 4}
	if _, err := Load(corrupt, LoadOptions{Quant: &q4}); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "non-finite") {
		t.Errorf("a NaN in %s: error %v, want one naming it", name, err)
	}
	bad := QuantConfig{Bits: 3}
	if _, err := Load(filepath.Join("testdata", "peft", "llama", "base"), LoadOptions{Quant: &bad}); err == nil || !strings.Contains(err.Error(), "3 bits") {
		t.Errorf("3 bits: error %v, want one naming the bits", err)
	}
}

// TestLoadShardedMapped: a sharded model.safetensors.index.json checkpoint
// loads through the shards' mappings (safetensors.MapModelDir) to the same
// model as its single-file form, in float and quantised while loading
// (the same logits, exactly), and a NaN in one shard is caught by name.
func TestLoadShardedMapped(t *testing.T) {
	src := filepath.Join("testdata", "peft", "llama", "base")
	f, err := safetensors.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cj, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeSharded := func(f *safetensors.File) string {
		dir := t.TempDir()
		if err := safetensors.WriteSharded(dir, f, 4<<10); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	sharded := writeSharded(f)
	shards, _ := filepath.Glob(filepath.Join(sharded, "model-*-of-*.safetensors"))
	if len(shards) < 3 {
		t.Fatalf("%d shards, want several", len(shards))
	}
	for _, q := range []*QuantConfig{nil, {Bits: 4, QuantType: "nf4", DoubleQuant: true}, {Bits: 8}} {
		want, err := Load(src, LoadOptions{Quant: q})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Load(sharded, LoadOptions{Quant: q})
		if err != nil {
			t.Fatal(err)
		}
		if got.Quantized() != (q != nil) {
			t.Errorf("quant %+v: sharded model quantised %v", q, got.Quantized())
		}
		if d := maxRelDiff(logitsOf(t, got, false), logitsOf(t, want, false)); d != 0 {
			t.Errorf("quant %+v: sharded logits differ from the single file's by %.3g", q, d)
		}
		want.Free()
		got.Free()
	}
	name := "model.layers.1.mlp.up_proj.weight"
	st := f.Tensors[name]
	st.Data = slices.Clone(st.Data)
	binary.LittleEndian.PutUint32(st.Data[4:], math.Float32bits(float32(math.NaN())))
	f.Tensors[name] = st
	corrupt := writeSharded(f)
	for _, q := range []*QuantConfig{nil, {Bits: 4}} {
		if _, err := Load(corrupt, LoadOptions{Quant: q}); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "non-finite") {
			t.Errorf("quant %+v: a NaN in a shard's %s: error %v, want one naming it", q, name, err)
		}
	}
}
