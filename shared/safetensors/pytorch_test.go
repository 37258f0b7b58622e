package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type expectedTensor struct {
	DType  DType   `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Values []any   `json:"values"`
}

func expected(t *testing.T) map[string]expectedTensor {
	b, err := os.ReadFile("testdata/pytorch/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]expectedTensor
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// value returns element i of a tensor as float64.
func value(ten Tensor, i int) float64 {
	switch ten.DType {
	case F32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(ten.Data[4*i:])))
	case BF16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(ten.Data[2*i:])) << 16))
	case F64:
		return math.Float64frombits(binary.LittleEndian.Uint64(ten.Data[8*i:]))
	case I64:
		return float64(int64(binary.LittleEndian.Uint64(ten.Data[8*i:])))
	case BOOL:
		return float64(ten.Data[i])
	}
	panic(ten.DType)
}

func compare(t *testing.T, name string, got Tensor, want expectedTensor) {
	t.Helper()
	wantDT := want.DType
	if wantDT == F16 {
		wantDT = F32 // widened, exactly
	}
	if got.DType != wantDT || !slices.Equal(got.Shape, want.Shape) {
		t.Errorf("%s: %s %v, want %s %v", name, got.DType, got.Shape, wantDT, want.Shape)
		return
	}
	for i, w := range want.Values {
		var wv float64
		switch x := w.(type) {
		case bool:
			if x {
				wv = 1
			}
		case float64:
			wv = x
		}
		if g := value(got, i); g != wv {
			t.Errorf("%s[%d] = %v, want %v", name, i, g, wv)
			return
		}
	}
}

// TestReadPyTorch: state dicts torch.save wrote (zip and legacy formats)
// read back exactly: float32 (a transposed view, two tensors sharing
// storage at an offset), bfloat16, float16, float64, int64 and bool.
func TestReadPyTorch(t *testing.T) {
	e := expected(t)
	for _, file := range []string{"tensors_zip.bin", "tensors_legacy.bin"} {
		f, err := ReadPyTorch(filepath.Join("testdata", "pytorch", file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		n := 0
		for key, want := range e {
			name, ok := strings.CutPrefix(key, "tensors/")
			if !ok {
				continue
			}
			n++
			got, ok := f.Tensors[name]
			if !ok {
				t.Errorf("%s: no %s", file, name)
				continue
			}
			compare(t, file+":"+name, got, want)
		}
		if n != 9 || len(f.Tensors) != n {
			t.Errorf("%s: %d tensors, want %d", file, len(f.Tensors), n)
		}
	}
}

// TestReadModelDirPyTorch: a folder with only pytorch_model.bin is read
// (what transformers wrote before safetensors); corrupt files are errors
// naming the file, never panics.
func TestReadModelDirPyTorch(t *testing.T) {
	f, err := ReadModelDir(filepath.Join("testdata", "pytorch", "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range expected(t) {
		if name, ok := strings.CutPrefix(key, "gpt2/"); ok {
			compare(t, name, f.Tensors[name], want)
		}
	}
	dir := t.TempDir()
	good, _ := os.ReadFile(filepath.Join("testdata", "pytorch", "tensors_zip.bin"))
	for i, bad := range [][]byte{[]byte("not a pickle"), good[:len(good)/2], append(append([]byte{}, good[:100]...), make([]byte, 200)...)} {
		path := filepath.Join(dir, PyTorchFileName)
		os.WriteFile(path, bad, 0o644)
		if _, err := ReadModelDir(dir); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("corrupt file %d: error %v, want one naming %s", i, err, path)
		}
	}
}

// FuzzReadPyTorch: no file makes the pytorch_model.bin reader panic.
func FuzzReadPyTorch(f *testing.F) {
	for _, name := range []string{"tensors_zip.bin", "tensors_legacy.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", "pytorch", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Add([]byte("PK\x03\x04"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "x.bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Skip()
		}
		ReadPyTorch(path) // an error is fine; a panic or hang is not
	})
}
