package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// checkData verifies that t.Data holds exactly shape × dtype size bytes and
// returns the element count.
func (t Tensor) checkData(op string) (int, error) {
	want, ok := byteSize(t.DType, t.Shape)
	if !ok || !t.DType.known() {
		return 0, fmt.Errorf("safetensors: %s: invalid tensor (dtype %q, shape %v)", op, t.DType, t.Shape)
	}
	if int64(len(t.Data)) != want {
		return 0, fmt.Errorf("safetensors: %s: %d data bytes, want %d for %s %v", op, len(t.Data), want, t.DType, t.Shape)
	}
	return int(want) / t.DType.Size(), nil
}

// checkShape verifies that shape is valid and holds n elements.
func checkShape(op string, shape []int64, n int) error {
	var count int64 = 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("safetensors: %s: negative dimension in shape %v", op, shape)
		}
		if d != 0 && count > math.MaxInt64/d {
			return fmt.Errorf("safetensors: %s: shape %v overflows", op, shape)
		}
		count *= d
	}
	if count != int64(n) {
		return fmt.Errorf("safetensors: %s: shape %v holds %d elements, got %d values", op, shape, count, n)
	}
	return nil
}

// Float32s decodes an F32, F16, BF16 or F64 tensor to float32 (F64 is rounded
// to nearest even; the others are exact).
func (t Tensor) Float32s() ([]float32, error) {
	n, err := t.checkData("float32s")
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	d := t.Data
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	default:
		return nil, fmt.Errorf("safetensors: float32s: cannot convert dtype %s", t.DType)
	}
	return out, nil
}

// FromFloat32s encodes v as a tensor of the given shape and dtype (F32, F16,
// BF16 or F64). F16 and BF16 round to nearest even like torch; NaN stays NaN.
// The shape is copied.
func FromFloat32s(v []float32, shape []int64, dt DType) (Tensor, error) {
	if err := checkShape("from float32s", shape, len(v)); err != nil {
		return Tensor{}, err
	}
	size := dt.Size()
	switch dt {
	case F32, F16, BF16, F64:
	default:
		return Tensor{}, fmt.Errorf("safetensors: from float32s: cannot convert to dtype %q", dt)
	}
	d := make([]byte, len(v)*size)
	for i, x := range v {
		switch dt {
		case F32:
			binary.LittleEndian.PutUint32(d[4*i:], math.Float32bits(x))
		case F16:
			binary.LittleEndian.PutUint16(d[2*i:], Float32ToF16(x))
		case BF16:
			binary.LittleEndian.PutUint16(d[2*i:], Float32ToBF16(x))
		case F64:
			binary.LittleEndian.PutUint64(d[8*i:], math.Float64bits(float64(x)))
		}
	}
	return Tensor{DType: dt, Shape: append([]int64{}, shape...), Data: d}, nil
}

// intRange gives the representable range of the integer dtypes.
var intRange = map[DType]struct{ lo, hi int64 }{
	I64:  {math.MinInt64, math.MaxInt64},
	I32:  {math.MinInt32, math.MaxInt32},
	I16:  {math.MinInt16, math.MaxInt16},
	I8:   {math.MinInt8, math.MaxInt8},
	U64:  {0, math.MaxInt64},
	U32:  {0, math.MaxUint32},
	U16:  {0, math.MaxUint16},
	U8:   {0, math.MaxUint8},
	BOOL: {0, 1},
}

// FromInt64s encodes v as a tensor of the given shape and integer dtype (I64,
// I32, I16, I8, U64, U32, U16, U8 or BOOL); a value out of the dtype's range
// is an error. The shape is copied.
func FromInt64s(v []int64, shape []int64, dt DType) (Tensor, error) {
	if err := checkShape("from int64s", shape, len(v)); err != nil {
		return Tensor{}, err
	}
	r, ok := intRange[dt]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: from int64s: cannot convert to dtype %q", dt)
	}
	size := dt.Size()
	d := make([]byte, len(v)*size)
	for i, x := range v {
		if x < r.lo || x > r.hi {
			return Tensor{}, fmt.Errorf("safetensors: from int64s: value %d at index %d out of range for %s", x, i, dt)
		}
		switch size {
		case 8:
			binary.LittleEndian.PutUint64(d[8*i:], uint64(x))
		case 4:
			binary.LittleEndian.PutUint32(d[4*i:], uint32(x))
		case 2:
			binary.LittleEndian.PutUint16(d[2*i:], uint16(x))
		case 1:
			d[i] = byte(x)
		}
	}
	return Tensor{DType: dt, Shape: append([]int64{}, shape...), Data: d}, nil
}

// Int64s decodes an integer or BOOL tensor to int64 (BOOL: nonzero is 1). A
// U64 value above math.MaxInt64 is an error.
func (t Tensor) Int64s() ([]int64, error) {
	n, err := t.checkData("int64s")
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	d := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(le.Uint64(d[8*i:]))
		}
	case U64:
		for i := range out {
			u := le.Uint64(d[8*i:])
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: int64s: U64 value %d at index %d overflows int64", u, i)
			}
			out[i] = int64(u)
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(d[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(le.Uint32(d[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(d[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(le.Uint16(d[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(d[i]))
		}
	case U8:
		for i := range out {
			out[i] = int64(d[i])
		}
	case BOOL:
		for i := range out {
			if d[i] != 0 {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("safetensors: int64s: cannot convert dtype %s", t.DType)
	}
	return out, nil
}

// BF16ToFloat32 widens a bfloat16 bit pattern to float32 (exact).
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 rounds f to bfloat16 to nearest, ties to even, exactly like
// torch (c10::BFloat16): overflow goes to ±Inf, any NaN becomes 0x7FC0.
func Float32ToBF16(f float32) uint16 {
	if f != f {
		return 0x7FC0
	}
	u := math.Float32bits(f)
	bias := (u>>16)&1 + 0x7FFF
	return uint16((u + bias) >> 16)
}

// F16ToFloat32 widens an IEEE 754 binary16 bit pattern to float32 (exact,
// including subnormals, infinities and NaN payloads).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1F
	mant := uint32(h & 0x3FF)
	switch {
	case exp == 0x1F: // Inf or NaN
		return math.Float32frombits(sign | 0x7F800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: value = mant × 2^-24; normalise it.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3FF)<<13)
}

// Float32ToF16 rounds f to IEEE 754 binary16, to nearest with ties to even
// (including subnormal results); overflow goes to ±Inf and any NaN becomes
// the quiet NaN ±0x7E00, as in torch.
func Float32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	exp := int32(u>>23) & 0xFF
	mant := u & 0x7FFFFF
	if exp == 0xFF {
		if mant != 0 {
			return sign | 0x7E00
		}
		return sign | 0x7C00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1F {
		return sign | 0x7C00
	}
	if e <= 0 {
		// Subnormal (or zero) result: value = mant24 × 2^(exp-150), and the
		// half subnormal unit is 2^-24, so shift mant24 right by 126-exp = 14-e.
		if e < -10 {
			return sign // below half of the smallest subnormal: rounds to ±0
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // may carry into the smallest normal, which is correct
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1FFF
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is correct
	}
	return sign | uint16(h)
}
