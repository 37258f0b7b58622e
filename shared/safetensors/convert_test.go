package safetensors

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestFloat32ToHalfGolden(t *testing.T) {
	f := math.Float32frombits
	tests := []struct {
		name      string
		in        float32
		bf16, f16 uint16
	}{
		{"one", 1, 0x3F80, 0x3C00},
		{"minus two", -2, 0xC000, 0xC000},
		{"zero", 0, 0x0000, 0x0000},
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{"half", 0.5, 0x3F00, 0x3800},
		{"one third rounds", 1.0 / 3, 0x3EAB, 0x3555}, // bf16 rounds up, f16 down
		{"minus one third", -1.0 / 3, 0xBEAB, 0xB555},
		{"pi", math.Pi, 0x4049, 0x4248},
		{"0.1", 0.1, 0x3DCD, 0x2E66},
		{"+inf", float32(math.Inf(1)), 0x7F80, 0x7C00},
		{"-inf", float32(math.Inf(-1)), 0xFF80, 0xFC00},
		{"NaN", float32(math.NaN()), 0x7FC0, 0x7E00},
		{"NaN with payload", f(0x7F800001), 0x7FC0, 0x7E00},
		{"negative NaN", f(0xFFC00000), 0x7FC0, 0xFE00},
		// bf16 ties to even: 1+2^-8 is halfway between 0x3F80 and 0x3F81.
		{"bf16 tie to even down", f(0x3F808000), 0x3F80, 0x3C04},
		{"bf16 tie to even up", f(0x3F818000), 0x3F82, 0x3C0C},
		{"bf16 above tie", f(0x3F808001), 0x3F81, 0x3C04},
		{"float32 max overflows bf16", math.MaxFloat32, 0x7F80, 0x7C00},
		// f16 range and ties.
		{"f16 max", 65504, 0x4780, 0x7BFF}, // 0x477FE000: bf16 rounds up to 65536
		{"f16 below overflow tie", 65519, 0x4780, 0x7BFF},
		{"f16 overflow tie", 65520, 0x4780, 0x7C00},
		{"f16 tie to even down", 1 + 1.0/2048, 0x3F80, 0x3C00},
		{"f16 tie to even up", 1 + 3.0/2048, 0x3F80, 0x3C02},
		{"f16 smallest normal", 1.0 / 16384, 0x3880, 0x0400},
		{"f16 smallest subnormal", f(0x33800000), 0x3380, 0x0001},         // 2^-24
		{"f16 half smallest subnormal", f(0x33000000), 0x3300, 0x0000},    // 2^-25: tie to even -> 0
		{"f16 above half smallest", f(0x33400000), 0x3340, 0x0001},        // 1.5*2^-25
		{"f16 largest subnormal", f(0x387FC000), 0x3880, 0x03FF},          // 1023*2^-24
		{"f16 subnormal rounds to normal", f(0x387FF000), 0x3880, 0x0400}, // 1023.75*2^-24
		{"float32 subnormal", f(0x00000001), 0x0000, 0x0000},
		{"float32 subnormal bf16 keeps", f(0x00010000), 0x0001, 0x0000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToBF16(tt.in); got != tt.bf16 {
				t.Errorf("Float32ToBF16(%g = %#08x) = %#04x, want %#04x", tt.in, math.Float32bits(tt.in), got, tt.bf16)
			}
			if got := Float32ToF16(tt.in); got != tt.f16 {
				t.Errorf("Float32ToF16(%g = %#08x) = %#04x, want %#04x", tt.in, math.Float32bits(tt.in), got, tt.f16)
			}
		})
	}
}

func TestHalfToFloat32Golden(t *testing.T) {
	tests := []struct {
		name string
		bits uint16
		bf16 bool
		want float32 // compared by bits unless NaN
	}{
		{"bf16 one", 0x3F80, true, 1},
		{"bf16 -1.5", 0xBFC0, true, -1.5},
		{"bf16 inf", 0x7F80, true, float32(math.Inf(1))},
		{"bf16 NaN", 0x7FC0, true, float32(math.NaN())},
		{"f16 one", 0x3C00, false, 1},
		{"f16 max", 0x7BFF, false, 65504},
		{"f16 smallest subnormal", 0x0001, false, math.Float32frombits(0x33800000)},
		{"f16 largest subnormal", 0x03FF, false, 1023.0 / (1 << 24)},
		{"f16 -0", 0x8000, false, float32(math.Copysign(0, -1))},
		{"f16 -inf", 0xFC00, false, float32(math.Inf(-1))},
		{"f16 NaN", 0x7E00, false, float32(math.NaN())},
		{"f16 signalling NaN", 0x7C01, false, float32(math.NaN())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got float32
			if tt.bf16 {
				got = BF16ToFloat32(tt.bits)
			} else {
				got = F16ToFloat32(tt.bits)
			}
			if tt.want != tt.want {
				if got == got {
					t.Errorf("decode(%#04x) = %g, want NaN", tt.bits, got)
				}
				return
			}
			if math.Float32bits(got) != math.Float32bits(tt.want) {
				t.Errorf("decode(%#04x) = %g (%#08x), want %g (%#08x)", tt.bits, got, math.Float32bits(got), tt.want, math.Float32bits(tt.want))
			}
		})
	}
}

// TestHalfExhaustive checks decode -> encode is the identity on every
// non-NaN 16-bit pattern and that NaN decodes to NaN.
func TestHalfExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if f := F16ToFloat32(h); f != f {
			if h&0x7C00 != 0x7C00 || h&0x3FF == 0 {
				t.Fatalf("F16ToFloat32(%#04x) = NaN, want a number", h)
			}
		} else if got := Float32ToF16(f); got != h {
			t.Fatalf("Float32ToF16(F16ToFloat32(%#04x) = %g) = %#04x", h, f, got)
		}
		if f := BF16ToFloat32(h); f == f {
			if got := Float32ToBF16(f); got != h {
				t.Fatalf("Float32ToBF16(BF16ToFloat32(%#04x) = %g) = %#04x", h, f, got)
			}
		}
	}
}

// refRound rounds x to a binary format with mantBits explicit mantissa bits,
// minimum normal exponent minExp and largest finite value maxFinite, using
// float64 arithmetic (exact here): round to nearest, ties to even.
func refRound(x float32, mantBits, minExp int, maxFinite float64) float64 {
	v := float64(x)
	if v == 0 || math.IsInf(v, 0) {
		return v
	}
	_, e := math.Frexp(math.Abs(v)) // |v| in [2^(e-1), 2^e)
	exp := max(e-1, minExp)
	ulp := math.Ldexp(1, exp-mantBits)
	r := math.RoundToEven(v/ulp) * ulp
	if math.Abs(r) > maxFinite {
		return math.Copysign(math.Inf(1), v)
	}
	if r == 0 {
		return math.Copysign(0, v)
	}
	return r
}

// TestHalfRoundingReference compares the encoders with an independent
// float64 rounding reference on random float32 bit patterns.
func TestHalfRoundingReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300000; i++ {
		bits := rng.Uint32()
		if i%2 == 0 {
			// Concentrate half the samples on the f16 exponent range.
			bits = bits&0x807FFFFF | uint32(127-26+rng.IntN(44))<<23
		}
		x := math.Float32frombits(bits)
		if x != x {
			continue
		}
		if got, want := float64(F16ToFloat32(Float32ToF16(x))), refRound(x, 10, -14, 65504); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("f16(%g = %#08x) = %g, want %g", x, bits, got, want)
		}
		if got, want := float64(BF16ToFloat32(Float32ToBF16(x))), refRound(x, 7, -126, float64(math.Float32frombits(0x7F7F0000))); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("bf16(%g = %#08x) = %g, want %g", x, bits, got, want)
		}
	}
}

func TestFloatTensorRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 1.0 / 3, 65504, 1e-8, float32(math.Inf(-1))}
	tests := []struct {
		dt   DType
		want []float32
	}{
		{F32, vals},
		{F64, vals},
		{BF16, []float32{0, 1, -2.5, BF16ToFloat32(0x3EAB), 65536, BF16ToFloat32(Float32ToBF16(1e-8)), float32(math.Inf(-1))}},
		{F16, []float32{0, 1, -2.5, F16ToFloat32(0x3555), 65504, F16ToFloat32(0x0000), float32(math.Inf(-1))}},
	}
	for _, tt := range tests {
		t.Run(string(tt.dt), func(t *testing.T) {
			tn, err := FromFloat32s(vals, []int64{7, 1}, tt.dt)
			if err != nil {
				t.Fatalf("FromFloat32s: %v", err)
			}
			if got, want := len(tn.Data), 7*tt.dt.Size(); got != want {
				t.Errorf("len(Data) = %d, want %d", got, want)
			}
			got, err := tn.Float32s()
			if err != nil {
				t.Fatalf("Float32s: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("values = %v, want %v", got, tt.want)
			}
		})
	}
	// F64 -> float32 rounds to nearest.
	tn := Tensor{DType: F64, Shape: []int64{1}, Data: u64le(math.Float64bits(1.0 / 3))}
	if got, err := tn.Float32s(); err != nil || got[0] != float32(1.0/3) {
		t.Errorf("F64 1/3 -> %v, %v; want %v", got, err, float32(1.0/3))
	}
	// The shape is copied.
	shape := []int64{2}
	tn, _ = FromFloat32s([]float32{1, 2}, shape, F32)
	shape[0] = 99
	if tn.Shape[0] != 2 {
		t.Errorf("FromFloat32s kept a reference to the caller's shape")
	}
}

func TestIntTensorRoundTrip(t *testing.T) {
	tests := []struct {
		dt   DType
		vals []int64
	}{
		{I64, []int64{math.MinInt64, -1, 0, math.MaxInt64}},
		{U64, []int64{0, 1, math.MaxInt64}},
		{I32, []int64{math.MinInt32, -1, math.MaxInt32}},
		{U32, []int64{0, math.MaxUint32}},
		{I16, []int64{math.MinInt16, 7, math.MaxInt16}},
		{U16, []int64{0, math.MaxUint16}},
		{I8, []int64{-128, 0, 127}},
		{U8, []int64{0, 200, 255}},
		{BOOL, []int64{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(string(tt.dt), func(t *testing.T) {
			tn, err := FromInt64s(tt.vals, []int64{int64(len(tt.vals))}, tt.dt)
			if err != nil {
				t.Fatalf("FromInt64s: %v", err)
			}
			got, err := tn.Int64s()
			if err != nil {
				t.Fatalf("Int64s: %v", err)
			}
			if !slices.Equal(got, tt.vals) {
				t.Errorf("values = %v, want %v", got, tt.vals)
			}
		})
	}
	// Little-endian, two's complement on disk.
	tn, _ := FromInt64s([]int64{-2}, []int64{1}, I32)
	if want := []byte{0xFE, 0xFF, 0xFF, 0xFF}; !slices.Equal(tn.Data, want) {
		t.Errorf("I32 -2 bytes = % x, want % x", tn.Data, want)
	}
}

func TestConversionErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"float shape mismatch", func() error { _, err := FromFloat32s([]float32{1, 2, 3}, []int64{2, 2}, F32); return err }, "holds 4 elements, got 3"},
		{"float negative dim", func() error { _, err := FromFloat32s(nil, []int64{-1}, F32); return err }, "negative dimension"},
		{"float to int dtype", func() error { _, err := FromFloat32s([]float32{1}, []int64{1}, I32); return err }, `cannot convert to dtype "I32"`},
		{"int to float dtype", func() error { _, err := FromInt64s([]int64{1}, []int64{1}, F32); return err }, `cannot convert to dtype "F32"`},
		{"int out of range", func() error { _, err := FromInt64s([]int64{0, 128}, []int64{2}, I8); return err }, "value 128 at index 1 out of range for I8"},
		{"negative unsigned", func() error { _, err := FromInt64s([]int64{-1}, []int64{1}, U32); return err }, "out of range for U32"},
		{"bool of 2", func() error { _, err := FromInt64s([]int64{2}, []int64{1}, BOOL); return err }, "out of range for BOOL"},
		{"int shape mismatch", func() error {
			_, err := FromInt64s([]int64{1}, []int64{}, I64)
			_ = err
			_, err = FromInt64s([]int64{1, 2}, []int64{}, I64)
			return err
		}, "holds 1 elements, got 2"},
		{"Float32s of I64", func() error {
			_, err := (Tensor{DType: I64, Shape: []int64{1}, Data: make([]byte, 8)}).Float32s()
			return err
		}, "cannot convert dtype I64"},
		{"Int64s of F32", func() error {
			_, err := (Tensor{DType: F32, Shape: []int64{1}, Data: make([]byte, 4)}).Int64s()
			return err
		}, "cannot convert dtype F32"},
		{"Float32s short data", func() error {
			_, err := (Tensor{DType: F32, Shape: []int64{2}, Data: make([]byte, 4)}).Float32s()
			return err
		}, "4 data bytes, want 8"},
		{"Int64s unknown dtype", func() error { _, err := (Tensor{DType: "X", Shape: []int64{1}}).Int64s(); return err }, "invalid tensor"},
		{"U64 overflow", func() error {
			_, err := (Tensor{DType: U64, Shape: []int64{1}, Data: u64le(1 << 63)}).Int64s()
			return err
		}, "overflows int64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
