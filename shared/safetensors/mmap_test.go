package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"
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

// TestMapModelDirSharded: a sharded checkpoint maps shard by shard: the
// same tensors and metadata as ReadModelDir, every tensor's Data inside
// its own shard's mapping (so nothing of the float checkpoint is copied
// into Go memory), Release and Close reach the shards, and the index's
// checks (a tensor listed but missing) still apply.
func TestMapModelDirSharded(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSharded(dir, shardTestFile(t), 64); err != nil { // four shards: a | b | c | d e
		t.Fatal(err)
	}
	want, err := ReadModelDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := MapModelDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.shards) != 4 || m.mem != nil {
		t.Fatalf("%d shard mappings (own mapping %v), want 4 and none", len(m.shards), m.mem != nil)
	}
	if !slices.Equal(m.Names(), want.Names()) || m.Metadata["format"] != "pt" {
		t.Fatalf("mapped names %v metadata %v, read %v", m.Names(), m.Metadata, want.Names())
	}
	for _, n := range want.Names() {
		g, w := m.Tensors[n], want.Tensors[n]
		inside := 0
		for _, sh := range m.shards {
			lo, hi := uintptr(unsafe.Pointer(&sh.mem[0])), uintptr(unsafe.Pointer(&sh.mem[len(sh.mem)-1]))
			if p := uintptr(unsafe.Pointer(&g.Data[0])); p >= lo && p <= hi {
				inside++
			}
		}
		if inside != 1 {
			t.Errorf("%s: data lies in %d shard mappings, want 1", n, inside)
		}
		m.Release(n)
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: mapped %v %v differs from read %v %v", n, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, sh := range m.shards {
		if sh.mem != nil {
			t.Error("Close left a shard mapped")
		}
	}
	// a shard that lost a tensor the index lists is refused, naming it
	f, err := ReadFile(filepath.Join(dir, ShardName(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	delete(f.Tensors, "e")
	if err := WriteFile(filepath.Join(dir, ShardName(4, 4)), f); err != nil {
		t.Fatal(err)
	}
	if _, err := MapModelDir(dir); err == nil || !strings.Contains(err.Error(), `"e"`) {
		t.Errorf("a shard without e: error %v, want one naming it", err)
	}
	if _, err := MapModelDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), IndexFileName) {
		t.Errorf("an empty directory: error %v, want one naming the files looked for", err)
	}
}
