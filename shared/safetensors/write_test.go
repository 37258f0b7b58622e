package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mustT builds a tensor from raw little-endian bytes, failing the test if the
// byte count does not fit the shape.
func mustT(t *testing.T, dt DType, shape []int64, data []byte) Tensor {
	t.Helper()
	want, ok := byteSize(dt, shape)
	if !ok || int64(len(data)) != want {
		t.Fatalf("bad test tensor %s %v with %d bytes", dt, shape, len(data))
	}
	return Tensor{DType: dt, Shape: shape, Data: data}
}

func u32le(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func u16le(vs ...uint16) []byte {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func u64le(vs ...uint64) []byte {
	b := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return b
}

// sampleFile has one tensor of every dtype plus scalar and zero-size tensors,
// with awkward bit patterns (NaN payloads, -0, subnormals, integer extremes).
func sampleFile(t *testing.T) *File {
	t.Helper()
	return &File{
		Metadata: map[string]string{"format": "pt", "note": "π \"quoted\"\n"},
		Tensors: map[string]Tensor{
			"f32":   mustT(t, F32, []int64{2, 3}, u32le(0x3F800000, 0x80000000, 0x7FC00001, 0xFF800000, 0x00000001, 0x3EAAAAAB)),
			"f64":   mustT(t, F64, []int64{2}, u64le(math.Float64bits(math.Pi), 0x7FF8000000000123)),
			"bf16":  mustT(t, BF16, []int64{3, 1}, u16le(0x3F80, 0x7FC1, 0x8001)),
			"f16":   mustT(t, F16, []int64{4}, u16le(0x3C00, 0x7E01, 0x0001, 0xFBFF)),
			"i64":   mustT(t, I64, []int64{3}, u64le(1<<63, 1<<63-1, 0xFFFFFFFFFFFFFFFF)),
			"u64":   mustT(t, U64, []int64{1}, u64le(0xFFFFFFFFFFFFFFFF)),
			"i32":   mustT(t, I32, []int64{1, 1, 2}, u32le(0x80000000, 5)),
			"u32":   mustT(t, U32, []int64{1}, u32le(0xFFFFFFFF)),
			"i16":   mustT(t, I16, []int64{2}, u16le(0x8000, 0x7FFF)),
			"u16":   mustT(t, U16, []int64{1}, u16le(0xFFFF)),
			"i8":    mustT(t, I8, []int64{3}, []byte{0x80, 0x7F, 0xFF}),
			"u8":    mustT(t, U8, []int64{2}, []byte{0, 255}),
			"bool":  mustT(t, BOOL, []int64{3}, []byte{1, 0, 1}),
			"f8":    mustT(t, F8E4M3, []int64{1}, []byte{0x38}),
			"scal":  mustT(t, F32, []int64{}, u32le(0x40490FDB)),
			"empty": mustT(t, BF16, []int64{0, 7}, []byte{}),
		},
	}
}

func equalFiles(t *testing.T, got, want *File) {
	t.Helper()
	if !slices.Equal(got.Names(), want.Names()) {
		t.Fatalf("names = %v, want %v", got.Names(), want.Names())
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Errorf("metadata = %v, want %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata[%q] = %q, want %q", k, got.Metadata[k], v)
		}
	}
	for _, name := range want.Names() {
		g, w := got.Tensors[name], want.Tensors[name]
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", name, g.DType, g.Shape, w.DType, w.Shape)
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: data % x, want % x", name, g.Data, w.Data)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := sampleFile(t)
	p1 := filepath.Join(dir, "a.safetensors")
	if err := WriteFile(p1, want); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	got, err := ReadFile(p1)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	equalFiles(t, got, want)

	// Writing what was read reproduces the file byte for byte.
	p2 := filepath.Join(dir, "b.safetensors")
	if err := WriteFile(p2, got); err != nil {
		t.Fatalf("WriteFile again: %v", err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("rewrite differs: %d vs %d bytes", len(b1), len(b2))
	}
	if got, want := listNames(t, dir), []string{"a.safetensors", "b.safetensors"}; !slices.Equal(got, want) {
		t.Errorf("dir = %v, want %v (temp files left?)", got, want)
	}
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFileLayout(t *testing.T) {
	zeros := func(n int) []byte { return make([]byte, n) }
	tests := []struct {
		name   string
		file   *File
		header string // hand-written expected JSON, without padding
		pad    int    // expected number of padding spaces
		data   []byte // expected data buffer
	}{
		{
			// Test vector of the reference implementation (test_serialization).
			name: "reference vector",
			file: &File{Tensors: map[string]Tensor{
				"attn.0": {DType: F32, Shape: []int64{1, 2, 3}, Data: u32le(0, 0x3F800000, 0x40000000, 0x40400000, 0x40800000, 0x40A00000)},
			}},
			header: `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`,
			pad:    0,
			data:   u32le(0, 0x3F800000, 0x40000000, 0x40400000, 0x40800000, 0x40A00000),
		},
		{
			name: "reference forced alignment",
			file: &File{Tensors: map[string]Tensor{
				"attn0": {DType: F32, Shape: []int64{1, 1, 2, 3}, Data: zeros(24)},
			}},
			header: `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}`,
			pad:    7,
			data:   zeros(24),
		},
		{name: "empty", file: &File{}, header: `{}`, pad: 6},
		{name: "empty metadata omitted", file: &File{Metadata: map[string]string{}, Tensors: map[string]Tensor{}}, header: `{}`, pad: 6},
		{name: "metadata only", file: &File{Metadata: map[string]string{"framework": "pt"}}, header: `{"__metadata__":{"framework":"pt"}}`, pad: 5},
		{
			name: "dtype alignment then name",
			file: &File{
				Metadata: map[string]string{"step": "10", "format": "pt"},
				Tensors: map[string]Tensor{
					"b": {DType: F32, Shape: []int64{2}, Data: []byte{'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b'}},
					"a": {DType: F32, Shape: []int64{1}, Data: []byte{'a', 'a', 'a', 'a'}},
					"c": {DType: I64, Shape: []int64{1}, Data: []byte{'c', 'c', 'c', 'c', 'c', 'c', 'c', 'c'}},
					"z": {DType: BOOL, Shape: []int64{3}, Data: []byte{'z', 'z', 'z'}},
					"d": {DType: BF16, Shape: []int64{1, 2}, Data: []byte{'d', 'd', 'd', 'd'}},
					"e": {DType: U8, Shape: []int64{1}, Data: []byte{'e'}},
					"f": {DType: F64, Shape: []int64{1}, Data: []byte{'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f'}},
					"g": {DType: F16, Shape: []int64{0, 3}, Data: nil},
					"m": {DType: I8, Shape: []int64{2}, Data: []byte{'m', 'm'}},
					"k": {DType: I32, Shape: []int64{}, Data: []byte{'k', 'k', 'k', 'k'}},
				},
			},
			header: `{"__metadata__":{"format":"pt","step":"10"},` +
				`"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},` +
				`"f":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},` +
				`"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},` +
				`"b":{"dtype":"F32","shape":[2],"data_offsets":[20,28]},` +
				`"k":{"dtype":"I32","shape":[],"data_offsets":[28,32]},` +
				`"d":{"dtype":"BF16","shape":[1,2],"data_offsets":[32,36]},` +
				`"g":{"dtype":"F16","shape":[0,3],"data_offsets":[36,36]},` +
				`"m":{"dtype":"I8","shape":[2],"data_offsets":[36,38]},` +
				`"e":{"dtype":"U8","shape":[1],"data_offsets":[38,39]},` +
				`"z":{"dtype":"BOOL","shape":[3],"data_offsets":[39,42]}}`,
			pad:  6,
			data: []byte("ccccccccffffffffaaaabbbbbbbbkkkkddddmmezzz"),
		},
		{
			name: "escaped name",
			file: &File{Tensors: map[string]Tensor{
				"q\"\\\n\x01é": {DType: U8, Shape: []int64{1}, Data: []byte{7}},
			}},
			header: `{"q\"\\\n\u0001é":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`,
			pad:    5,
			data:   []byte{7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			if err := WriteFile(path, tt.file); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			wantHeader := tt.header + strings.Repeat(" ", tt.pad)
			if (len(wantHeader))%8 != 0 {
				t.Fatalf("bad test: padded header length %d not a multiple of 8", len(wantHeader))
			}
			want := rawFile(wantHeader, tt.data)
			if !bytes.Equal(got, want) {
				t.Errorf("file =\n%q\nwant\n%q", got, want)
			}
			if _, err := ReadFile(path); err != nil {
				t.Errorf("ReadFile of written file: %v", err)
			}
		})
	}
}

func TestWriteFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file *File
		want string
	}{
		{"nil file", nil, "nil file"},
		{"short data", &File{Tensors: map[string]Tensor{"a": {DType: F32, Shape: []int64{2}, Data: make([]byte, 7)}}}, `tensor "a": 7 data bytes, want 8`},
		{"unknown dtype", &File{Tensors: map[string]Tensor{"a": {DType: "F128", Shape: []int64{1}, Data: make([]byte, 16)}}}, `unknown dtype "F128"`},
		{"negative dim", &File{Tensors: map[string]Tensor{"a": {DType: U8, Shape: []int64{-1}}}}, `tensor "a": invalid shape`},
		{"reserved name", &File{Tensors: map[string]Tensor{"__metadata__": {DType: U8, Shape: []int64{1}, Data: []byte{1}}}}, "reserved"},
		{"invalid UTF-8 name", &File{Tensors: map[string]Tensor{"\xff": {DType: U8, Shape: []int64{1}, Data: []byte{1}}}}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.safetensors")
			err := WriteFile(path, tt.file)
			if err == nil {
				t.Fatal("WriteFile: nil error, want error")
			}
			for _, s := range []string{path, tt.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if got := listNames(t, dir); len(got) != 0 {
				t.Errorf("dir = %v after failed write, want empty", got)
			}
		})
	}
}
