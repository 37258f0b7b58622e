// Package safetensors reads and writes the Hugging Face safetensors checkpoint format in pure Go.
package safetensors

import (
	"encoding/binary"
	"math"
	"sort"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// Element types. The first ten are the common ones; the rest are accepted when
// reading so that any file written by the reference implementation loads.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U8     DType = "U8"
	BOOL   DType = "BOOL"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
)

// dtypeInfo holds the element size and the rank of each dtype in the
// reference implementation's Dtype enum; the writer orders tensors by rank
// descending (i.e. by alignment, largest first), then by name.
var dtypeInfo = map[DType]struct{ size, rank int }{
	BOOL:   {1, 0},
	U8:     {1, 1},
	I8:     {1, 2},
	F8E5M2: {1, 3},
	F8E4M3: {1, 4},
	I16:    {2, 5},
	U16:    {2, 6},
	F16:    {2, 7},
	BF16:   {2, 8},
	I32:    {4, 9},
	U32:    {4, 10},
	F32:    {4, 11},
	F64:    {8, 12},
	I64:    {8, 13},
	U64:    {8, 14},
}

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeInfo[d].size }

func (d DType) known() bool {
	_, ok := dtypeInfo[d]
	return ok
}

// Tensor is one tensor: little-endian, row-major (C order) element bytes.
type Tensor struct {
	DType DType
	Shape []int64
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar with an empty
// shape). It does not check for negative dimensions or overflow.
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// byteSize returns the number of data bytes the dtype and shape call for and
// whether the shape is valid (no negative dimension, no int64 overflow).
func byteSize(dt DType, shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	sz := int64(dt.Size())
	if sz != 0 && n > math.MaxInt64/sz {
		return 0, false
	}
	return n * sz, true
}

// File is the content of a safetensors file (or of a sharded checkpoint).
// Metadata is the optional "__metadata__" string map. After ReadFile the Data
// of all tensors are sub-slices of one buffer per file (capacity-limited, so
// appending to one never overwrites another).
type File struct {
	Metadata map[string]string
	Tensors  map[string]Tensor
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FirstNonFinite returns the index of the first NaN or infinite element of
// a floating-point tensor, or -1 when every element is finite (and for
// integer dtypes). It reads the bits, so it is cheap enough to run on every
// tensor at load.
func (t Tensor) FirstNonFinite() int64 {
	var size int
	var expMask uint64
	switch t.DType {
	case F64:
		size, expMask = 8, 0x7ff0000000000000
	case F32:
		size, expMask = 4, 0x7f800000
	case F16:
		size, expMask = 2, 0x7c00
	case BF16:
		size, expMask = 2, 0x7f80
	default:
		return -1
	}
	d := t.Data
	for i := 0; i+size <= len(d); i += size {
		var bits uint64
		switch size {
		case 8:
			bits = binary.LittleEndian.Uint64(d[i:])
		case 4:
			bits = uint64(binary.LittleEndian.Uint32(d[i:]))
		case 2:
			bits = uint64(binary.LittleEndian.Uint16(d[i:]))
		}
		if bits&expMask == expMask {
			return int64(i / size)
		}
	}
	return -1
}
