package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rawFile assembles a safetensors file by hand: the 8-byte little-endian
// header length, the header bytes as given, then data.
func rawFile(header string, data []byte) []byte {
	n := uint64(len(header))
	b := []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), byte(n >> 32), byte(n >> 40), byte(n >> 48), byte(n >> 56)}
	b = append(b, header...)
	return append(b, data...)
}

func writeRaw(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadFileHandBuilt(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"ids":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},` +
		`"h":{"dtype":"BF16","shape":[2],"data_offsets":[32,36]},` +
		`"g":{"dtype":"F16","shape":[1],"data_offsets":[36,38]},` +
		`"s":{"dtype":"F32","shape":[],"data_offsets":[38,42]},` +
		`"empty":{"dtype":"F32","shape":[0,5],"data_offsets":[42,42]}}`
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	data := []byte{
		0x00, 0x00, 0x80, 0x3F, // w: 1.0
		0x00, 0x00, 0x00, 0xC0, //    -2.0
		0x00, 0x00, 0x00, 0x3F, //    0.5
		0x00, 0x00, 0x40, 0x40, //    3.0
		0x07, 0, 0, 0, 0, 0, 0, 0, // ids: 7
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // -1
		0x80, 0x3F, // h: bf16 1.0
		0xC0, 0xBF, //    bf16 -1.5
		0x00, 0x38, // g: f16 0.5
		0x00, 0x00, 0x20, 0x41, // s: 10.0
	}
	path := writeRaw(t, "hand.safetensors", rawFile(header, data))
	f, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if got, want := f.Names(), []string{"empty", "g", "h", "ids", "s", "w"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if got, want := f.Metadata["format"], "pt"; got != want || len(f.Metadata) != 1 {
		t.Errorf("Metadata = %v, want map[format:pt]", f.Metadata)
	}
	floats := []struct {
		name  string
		dtype DType
		shape []int64
		want  []float32
	}{
		{"w", F32, []int64{2, 2}, []float32{1, -2, 0.5, 3}},
		{"h", BF16, []int64{2}, []float32{1, -1.5}},
		{"g", F16, []int64{1}, []float32{0.5}},
		{"s", F32, []int64{}, []float32{10}},
		{"empty", F32, []int64{0, 5}, []float32{}},
	}
	for _, tt := range floats {
		tn := f.Tensors[tt.name]
		if tn.DType != tt.dtype || !slices.Equal(tn.Shape, tt.shape) {
			t.Errorf("%s: dtype/shape = %s %v, want %s %v", tt.name, tn.DType, tn.Shape, tt.dtype, tt.shape)
		}
		got, err := tn.Float32s()
		if err != nil {
			t.Errorf("%s: Float32s: %v", tt.name, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: values = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got, want := f.Tensors["s"].NumElements(), int64(1); got != want {
		t.Errorf("scalar NumElements = %d, want %d", got, want)
	}
	ids, err := f.Tensors["ids"].Int64s()
	if err != nil {
		t.Fatalf("ids Int64s: %v", err)
	}
	if want := []int64{7, -1}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	// Data slices are capacity-limited: appending must not clobber a neighbour.
	w := f.Tensors["w"]
	_ = append(w.Data, 0xAA)
	if got, _ := f.Tensors["ids"].Int64s(); got[0] != 7 {
		t.Errorf("append to w.Data overwrote ids: %v", got)
	}
}

func TestReadFileErrors(t *testing.T) {
	f32x2 := func(name string, off string) string {
		return `"` + name + `":{"dtype":"F32","shape":[2],"data_offsets":` + off + `}`
	}
	big := []byte{0x00, 0xC2, 0xEB, 0x0B, 0, 0, 0, 0} // 200_000_000
	tests := []struct {
		name    string
		content []byte
		want    []string // substrings the error must contain besides the file name
	}{
		{"empty file", nil, []string{"shorter than"}},
		{"5 bytes", []byte{1, 2, 3, 4, 5}, []string{"shorter than"}},
		{"header length beyond file", append([]byte{0xE8, 0x03, 0, 0, 0, 0, 0, 0}, "{}"...), []string{"header length 1000", "larger"}},
		{"header over 100MB", append(big, "{}"...), []string{"header length 200000000", "limit"}},
		{"huge u64 header length", append([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "{}"...), []string{"limit"}},
		{"invalid JSON", rawFile(`{"a":`, nil), []string{"invalid header JSON"}},
		{"not an object", rawFile(`[1,2]   `, nil), []string{"does not start with"}},
		{"trailing JSON", rawFile(`{} {}`, nil), []string{"invalid header JSON"}},
		{"invalid UTF-8", rawFile("{\"\xff\":1}", nil), []string{"UTF-8"}},
		{"metadata not strings", rawFile(`{"__metadata__":{"step":10}}`, nil), []string{"__metadata__"}},
		{"duplicate name", rawFile(`{`+f32x2("a", "[0,8]")+`,`+f32x2("a", "[8,16]")+`}`, make([]byte, 16)), []string{`duplicate header key "a"`}},
		{"tensor info not an object", rawFile(`{"a":5}`, nil), []string{`tensor "a"`}},
		{"tensor info null", rawFile(`{"a":null}`, nil), []string{`tensor "a"`}},
		{"missing dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`tensor "a"`, "missing dtype"}},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), []string{`tensor "a"`, "missing shape"}},
		{"missing offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), []string{`tensor "a"`, "missing data_offsets"}},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), []string{`tensor "a"`, `unknown dtype "F128"`}},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{`tensor "a"`, "negative dimension"}},
		{"fractional dim", rawFile(`{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{`tensor "a"`}},
		{"shape overflow", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{`tensor "a"`, "overflows"}},
		{"offsets do not match shape", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`tensor "a"`, "span 4 bytes, want 8"}},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, make([]byte, 8)), []string{`tensor "a"`, "2 entries"}},
		{"begin after end", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, make([]byte, 8)), []string{`tensor "a"`, "invalid data_offsets"}},
		{"negative offset", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, nil), []string{`tensor "a"`, "invalid data_offsets"}},
		{"out of bounds", rawFile(`{`+f32x2("a", "[0,8]")+`}`, make([]byte, 4)), []string{`tensor "a"`, "out of bounds"}},
		{"overlap", rawFile(`{`+f32x2("a", "[0,8]")+`,`+f32x2("b", "[4,12]")+`}`, make([]byte, 12)), []string{`tensor "b"`, `overlap tensor "a"`}},
		{"hole", rawFile(`{`+f32x2("a", "[0,8]")+`,`+f32x2("b", "[12,20]")+`}`, make([]byte, 20)), []string{`tensor "b"`, "hole of 4 bytes"}},
		{"hole at start", rawFile(`{`+f32x2("a", "[4,12]")+`}`, make([]byte, 12)), []string{`tensor "a"`, "hole of 4 bytes at offset 0"}},
		{"trailing data", rawFile(`{`+f32x2("a", "[0,8]")+`}`, make([]byte, 10)), []string{"2 unused trailing bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRaw(t, "bad-"+strings.ReplaceAll(tt.name, " ", "_")+".safetensors", tt.content)
			f, err := ReadFile(path)
			if err == nil {
				t.Fatalf("ReadFile = %v, nil error; want error", f)
			}
			msg := err.Error()
			t.Log(msg)
			for _, s := range append([]string{path}, tt.want...) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.safetensors")
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile(missing) error = %v, want one naming %s", err, path)
	}
}

func TestReadFileLenient(t *testing.T) {
	// Accepted by the reference reader: any tensor order in the header,
	// unknown tensor-info fields, no padding, zero-size tensors sharing an
	// offset, an empty header object.
	tests := []struct {
		name    string
		content []byte
		want    []string
	}{
		{"empty", rawFile(`{}`, nil), nil},
		{"reverse order", rawFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}), []string{"a", "b"}},
		{"extra field", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true}}`, []byte{1}), []string{"a"}},
		{"zero-size neighbours", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{9}), []string{"a", "b", "c"}},
		{"null metadata", rawFile(`{"__metadata__":null}`, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFile(writeRaw(t, "ok.safetensors", tt.content))
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if got := f.Names(); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("Names() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFirstNonFinite(t *testing.T) {
	for _, dt := range []DType{F32, F16, BF16} {
		for _, tc := range []struct {
			v    []float32
			want int64
		}{
			{[]float32{1, -2, 3e-3}, -1},
			{[]float32{1, float32(math.NaN()), 3}, 1},
			{[]float32{float32(math.Inf(-1))}, 0},
		} {
			x, err := FromFloat32s(tc.v, []int64{int64(len(tc.v))}, dt)
			if err != nil {
				t.Fatal(err)
			}
			if got := x.FirstNonFinite(); got != tc.want {
				t.Errorf("%s %v: FirstNonFinite = %d, want %d", dt, tc.v, got, tc.want)
			}
		}
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(math.Inf(1)))
	if got := (Tensor{DType: F64, Shape: []int64{2}, Data: b}).FirstNonFinite(); got != 1 {
		t.Errorf("F64: FirstNonFinite = %d, want 1", got)
	}
}
