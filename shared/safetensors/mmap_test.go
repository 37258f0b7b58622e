package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMapFile: a mapped file has ReadFile's tensors byte for byte, Release
// leaves every tensor's data readable (re-read from the file), and a
// truncated file is refused by name.
func TestMapFile(t *testing.T) {
	big := make([]float32, 5000) // spans whole pages, so Release drops some
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	a, err := FromFloat32s(big, []int64{50, 100}, F32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromFloat32s([]float32{1, -2, 3}, []int64{3}, BF16)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteFile(path, &File{Tensors: map[string]Tensor{"a": a, "b": b}, Metadata: map[string]string{"format": "pt"}}); err != nil {
		t.Fatal(err)
	}
	want, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !slices.Equal(m.Names(), want.Names()) {
		t.Fatalf("mapped names %v, read %v", m.Names(), want.Names())
	}
	for _, n := range want.Names() {
		m.Release(n)
		g, w := m.Tensors[n], want.Tensors[n]
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: mapped %v %v differs from read %v %v", n, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
	raw, _ := os.ReadFile(path)
	cut := filepath.Join(t.TempDir(), "cut.safetensors")
	os.WriteFile(cut, raw[:len(raw)-8], 0o644)
	if _, err := MapFile(cut); err == nil {
		t.Error("a truncated file mapped without error")
	}
	if _, err := MapFile(filepath.Join(t.TempDir(), "none.safetensors")); err == nil {
		t.Error("a missing file mapped without error")
	}
}
