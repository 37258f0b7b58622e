package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shardTestFile has tensors of 40, 40, 100, 8 and 8 bytes (in name order).
func shardTestFile(t *testing.T) *File {
	t.Helper()
	return &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors: map[string]Tensor{
			"a": mustT(t, F32, []int64{10}, []byte(strings.Repeat("a", 40))),
			"b": mustT(t, BF16, []int64{4, 5}, []byte(strings.Repeat("b", 40))),
			"c": mustT(t, U8, []int64{100}, []byte(strings.Repeat("c", 100))),
			"d": mustT(t, I64, []int64{1}, []byte(strings.Repeat("d", 8))),
			"e": mustT(t, F64, []int64{}, []byte(strings.Repeat("e", 8))),
		},
	}
}

func TestWriteShardedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := shardTestFile(t)

	// 196 bytes > 64: a | b | c (alone, larger than the limit) | d e.
	if err := WriteSharded(dir, want, 64); err != nil {
		t.Fatalf("WriteSharded: %v", err)
	}
	wantFiles := []string{"config.json", "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", "model.safetensors.index.json"}
	if got := listNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("files = %v, want %v", got, wantFiles)
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("index: %v\n%s", err, raw)
	}
	if got, want := idx.Metadata["total_size"], int64(196); got != want {
		t.Errorf("total_size = %d, want %d", got, want)
	}
	wantMap := map[string]string{
		"a": "model-00001-of-00004.safetensors",
		"b": "model-00002-of-00004.safetensors",
		"c": "model-00003-of-00004.safetensors",
		"d": "model-00004-of-00004.safetensors",
		"e": "model-00004-of-00004.safetensors",
	}
	for k, v := range wantMap {
		if idx.WeightMap[k] != v {
			t.Errorf("weight_map[%q] = %q, want %q", k, idx.WeightMap[k], v)
		}
	}
	if len(idx.WeightMap) != len(wantMap) {
		t.Errorf("weight_map = %v, want %v", idx.WeightMap, wantMap)
	}
	if !strings.HasPrefix(string(raw), "{\n  \"metadata\": {\n    \"total_size\": 196\n  },\n  \"weight_map\": {\n    \"a\": ") {
		t.Errorf("index layout differs from transformers' (indent 2, sorted keys):\n%s", raw)
	}
	got, err := ReadModelDir(dir)
	if err != nil {
		t.Fatalf("ReadModelDir: %v", err)
	}
	equalFiles(t, got, want)

	// Rewriting below the limit switches to one file and removes the shards.
	if err := WriteSharded(dir, want, 1000); err != nil {
		t.Fatalf("WriteSharded single: %v", err)
	}
	if got, want := listNames(t, dir), []string{"config.json", "model.safetensors"}; !slices.Equal(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
	got, err = ReadModelDir(dir)
	if err != nil {
		t.Fatalf("ReadModelDir single: %v", err)
	}
	equalFiles(t, got, want)

	// And back to two shards: the single file and the old shards go away.
	if err := WriteSharded(dir, want, 128); err != nil {
		t.Fatalf("WriteSharded 2: %v", err)
	}
	wantFiles = []string{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"}
	if got := listNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("files = %v, want %v", got, wantFiles)
	}
	got, err = ReadModelDir(dir)
	if err != nil {
		t.Fatalf("ReadModelDir 2 shards: %v", err)
	}
	equalFiles(t, got, want)
}

func TestWriteShardedErrors(t *testing.T) {
	dir := t.TempDir()
	for _, max := range []int64{0, -1} {
		err := WriteSharded(dir, shardTestFile(t), max)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("WriteSharded(max=%d) error = %v, want one naming %s", max, err, dir)
		}
	}
	bad := &File{Tensors: map[string]Tensor{"x": {DType: F32, Shape: []int64{1}}}}
	if err := WriteSharded(dir, bad, 10); err == nil || !strings.Contains(err.Error(), `tensor "x"`) {
		t.Errorf("WriteSharded(bad tensor) error = %v, want one naming tensor x", err)
	}
	if got := listNames(t, dir); len(got) != 0 {
		t.Errorf("dir = %v after failed writes, want empty", got)
	}
}

func TestReadModelDirErrors(t *testing.T) {
	shard := func(i, n int) string { return ShardName(i, n) }
	tests := []struct {
		name  string
		index func(m map[string]string) any // builds the index from the real weight_map
		want  []string
	}{
		{"no model files", nil, []string{"none of model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json exists"}},
		{"invalid index JSON", func(map[string]string) any { return []byte(`{"weight_map":`) }, []string{IndexFileName, "invalid index JSON"}},
		{"missing weight_map", func(map[string]string) any { return map[string]any{"metadata": map[string]any{}} }, []string{IndexFileName, "missing weight_map"}},
		{"name not in shard", func(m map[string]string) any {
			m["ghost"] = shard(1, 2)
			return map[string]any{"weight_map": m}
		}, []string{shard(1, 2), `tensor "ghost"`, "not found"}},
		{"missing shard file", func(m map[string]string) any {
			m["ghost"] = shard(3, 3)
			return map[string]any{"weight_map": m}
		}, []string{shard(3, 3)}},
		{"shard path escapes dir", func(m map[string]string) any {
			m["a"] = "../" + shard(1, 2)
			return map[string]any{"weight_map": m}
		}, []string{IndexFileName, `tensor "a"`, "not a plain file name"}},
		{"tensor not listed", func(m map[string]string) any {
			delete(m, "a")
			return map[string]any{"weight_map": m}
		}, []string{shard(1, 2), `tensor "a"`, "not listed"}},
		{"tensor mapped to other shard", func(m map[string]string) any {
			m["a"] = shard(2, 2)
			return map[string]any{"weight_map": m}
		}, []string{`tensor "a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.index != nil {
				if err := WriteSharded(dir, shardTestFile(t), 128); err != nil {
					t.Fatal(err)
				}
				var idx struct {
					WeightMap map[string]string `json:"weight_map"`
				}
				raw, _ := os.ReadFile(filepath.Join(dir, IndexFileName))
				if err := json.Unmarshal(raw, &idx); err != nil {
					t.Fatal(err)
				}
				v := tt.index(idx.WeightMap)
				out, ok := v.([]byte) // raw bytes are written as is
				if !ok {
					var err error
					if out, err = json.Marshal(v); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, IndexFileName), out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := ReadModelDir(dir)
			if err == nil {
				t.Fatalf("ReadModelDir = %v, nil error; want error", f)
			}
			t.Log(err)
			for _, s := range append([]string{dir}, tt.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestReadModelDirPrefersSingleFile(t *testing.T) {
	dir := t.TempDir()
	f := shardTestFile(t)
	if err := WriteSharded(dir, f, 128); err != nil {
		t.Fatal(err)
	}
	single := &File{Tensors: map[string]Tensor{"only": mustT(t, U8, []int64{1}, []byte{1})}}
	if err := WriteFile(filepath.Join(dir, SingleFileName), single); err != nil {
		t.Fatal(err)
	}
	got, err := ReadModelDir(dir)
	if err != nil {
		t.Fatalf("ReadModelDir: %v", err)
	}
	if names := got.Names(); !slices.Equal(names, []string{"only"}) {
		t.Errorf("names = %v, want [only]", names)
	}
}
