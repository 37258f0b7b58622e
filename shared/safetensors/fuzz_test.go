package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// header builds a safetensors file from a JSON header and data bytes.
func header(js string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(b, js...), data...)
}

// FuzzReadFile: no input panics or hangs ReadFile, and whatever it accepts
// writes back and reads again to the same tensors.
func FuzzReadFile(f *testing.F) {
	good, _ := FromFloat32s([]float32{1, 2, 3, 4}, []int64{2, 2}, F32)
	valid := &File{Metadata: map[string]string{"format": "pt"}, Tensors: map[string]Tensor{"a.weight": good,
		"b": {DType: I64, Shape: []int64{1}, Data: make([]byte, 8)}, "s": {DType: BF16, Shape: []int64{}, Data: make([]byte, 2)}}}
	dir := f.TempDir()
	p := filepath.Join(dir, "valid.safetensors")
	if err := WriteFile(p, valid); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	// corrupt: short, header too long, overlapping, hole, negative shape, overflow, bad dtype, bad JSON
	f.Add([]byte{1, 2, 3})
	f.Add(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, nil))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Add(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, make([]byte, 6)))
	f.Add(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add(header(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil))
	f.Add(header(`{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, nil))
	f.Add(header(`{"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)))
	f.Add(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]`, make([]byte, 4)))
	f.Add(header(`{"__metadata__":{"format":3}}`, nil))
	f.Add(header("{\"\xff\":{}}", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := read(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		for _, n := range got.Names() {
			got.Tensors[n].FirstNonFinite()
			got.Tensors[n].Float32s()
		}
		// write back without WriteFile's fsync (slow on a busy disk)
		hdr, order, err := encodeHeader(got)
		if err != nil {
			t.Fatalf("read a file it cannot write back: %v", err)
		}
		var buf bytes.Buffer
		if err := writeBody(&buf, hdr, order, got); err != nil {
			t.Fatal(err)
		}
		again, err := read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz")
		if err != nil {
			t.Fatalf("cannot read its own output: %v", err)
		}
		for _, n := range got.Names() {
			a, b := got.Tensors[n], again.Tensors[n]
			if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || string(a.Data) != string(b.Data) {
				t.Fatalf("%s changed on write and read", n)
			}
		}
	})
}
