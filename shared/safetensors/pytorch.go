package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// PyTorch checkpoint names, as transformers writes them without
// safetensors.
const (
	PyTorchFileName  = "pytorch_model.bin"
	PyTorchIndexName = "pytorch_model.bin.index.json"
)

// ReadPyTorch reads a state dict saved with torch.save (the zip format of
// PyTorch >= 1.6, or the legacy one) through github.com/nlpodyssey/gopickle,
// into the same in-memory form as a safetensors file: every tensor
// contiguous, float32/bfloat16/float64/int64/int32/int8/uint8/bool kept,
// float16 widened to float32 (gopickle decodes it so; the value is exact).
func ReadPyTorch(path string) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil { // gopickle on a corrupt file
			f, err = nil, fmt.Errorf("safetensors: read %s: not a readable PyTorch checkpoint (%v)", path, r)
		}
	}()
	// gopickle loops forever on some inputs that are no checkpoint at all
	// (an empty file): only hand it a zip archive or a pickle stream
	if err := sniffPyTorch(path); err != nil {
		return nil, err
	}
	obj, err := loadWithDeadline(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: not a readable PyTorch checkpoint: %w", path, err)
	}
	entries := map[string]any{}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			kv := e.Value.(*types.OrderedDictEntry)
			k, ok := kv.Key.(string)
			if !ok {
				return nil, fmt.Errorf("safetensors: read %s: a state dict key is %T, not a string", path, kv.Key)
			}
			entries[k] = kv.Value
		}
	case *types.Dict:
		for _, e := range *d {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("safetensors: read %s: a state dict key is %T, not a string", path, e.Key)
			}
			entries[k] = e.Value
		}
	default:
		return nil, fmt.Errorf("safetensors: read %s: want a state dict (a dict of tensors), got %T", path, obj)
	}
	f = &File{Metadata: map[string]string{"format": "pt"}, Tensors: map[string]Tensor{}}
	for name, v := range entries {
		t, ok := v.(*pytorch.Tensor)
		if !ok {
			return nil, fmt.Errorf("safetensors: read %s: %s is %T, not a tensor", path, name, v)
		}
		st, err := fromTorch(t)
		if err != nil {
			return nil, fmt.Errorf("safetensors: read %s: %s: %w", path, name, err)
		}
		f.Tensors[name] = st
	}
	return f, nil
}

// loadWithDeadline runs gopickle's decoder with a deadline: on some
// corrupt inputs it loops instead of failing (found by FuzzReadPyTorch).
// The deadline grows with the file (a real checkpoint of 10 GB decodes in
// well under the minutes it allows); a decoder still running past it is
// abandoned and its error is returned.
func loadWithDeadline(path string) (any, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	limit := 10*time.Second + time.Duration(st.Size()/(10<<20))*time.Second
	type result struct {
		obj any
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{nil, fmt.Errorf("%v", r)}
			}
		}()
		obj, err := pytorch.Load(path)
		done <- result{obj, err}
	}()
	select {
	case r := <-done:
		return r.obj, r.err
	case <-time.After(limit):
		return nil, fmt.Errorf("the decoder did not finish within %s (a corrupt file?); convert it to safetensors with transformers", limit)
	}
}

// sniffPyTorch checks that path starts as torch.save writes: a zip
// archive (PyTorch >= 1.6) or a pickle of protocol 2 or more (legacy).
func sniffPyTorch(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("safetensors: read %s: too short to be a PyTorch checkpoint", path)
	}
	if string(head) == "PK\x03\x04" || head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 {
		return nil
	}
	return fmt.Errorf("safetensors: read %s: not a PyTorch checkpoint (neither a zip archive nor a pickle)", path)
}

// fromTorch copies a (possibly strided) tensor into contiguous bytes.
func fromTorch(t *pytorch.Tensor) (Tensor, error) {
	n := 1
	shape := make([]int64, len(t.Size))
	for i, s := range t.Size {
		if s < 0 {
			return Tensor{}, fmt.Errorf("negative size %v", t.Size)
		}
		n *= s
		shape[i] = int64(s)
	}
	if len(t.Stride) != len(t.Size) {
		return Tensor{}, fmt.Errorf("%d strides for %d dimensions", len(t.Stride), len(t.Size))
	}
	// index of element i (row-major over Size) in the storage
	at := func(i int) int {
		off := t.StorageOffset
		for d := len(t.Size) - 1; d >= 0; d-- {
			off += (i % t.Size[d]) * t.Stride[d]
			i /= t.Size[d]
		}
		return off
	}
	var dt DType
	var width int
	var put func(dst []byte, i int)
	var size int // elements in the storage
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		dt, width = F32, 4
		put = func(b []byte, i int) {
			binary.LittleEndian.PutUint32(b, math.Float32bits(s.Data[at(i)]))
		}
		size = len(s.Data)
	case *pytorch.HalfStorage:
		dt, width = F32, 4
		put = func(b []byte, i int) {
			binary.LittleEndian.PutUint32(b, math.Float32bits(s.Data[at(i)]))
		}
		size = len(s.Data)
	case *pytorch.BFloat16Storage:
		dt, width = BF16, 2
		put = func(b []byte, i int) {
			binary.LittleEndian.PutUint16(b, uint16(math.Float32bits(s.Data[at(i)])>>16)) // exact: it came from bfloat16
		}
		size = len(s.Data)
	case *pytorch.DoubleStorage:
		dt, width = F64, 8
		put = func(b []byte, i int) {
			binary.LittleEndian.PutUint64(b, math.Float64bits(s.Data[at(i)]))
		}
		size = len(s.Data)
	case *pytorch.LongStorage:
		dt, width = I64, 8
		put = func(b []byte, i int) { binary.LittleEndian.PutUint64(b, uint64(s.Data[at(i)])) }
		size = len(s.Data)
	case *pytorch.BoolStorage:
		dt, width = BOOL, 1
		put = func(b []byte, i int) {
			if s.Data[at(i)] {
				b[0] = 1
			}
		}
		size = len(s.Data)
	default:
		return Tensor{}, fmt.Errorf("storage %T is not supported", t.Source)
	}
	if n > 0 && (at(n-1) >= size || at(0) < 0 || t.StorageOffset < 0) {
		return Tensor{}, fmt.Errorf("shape %v strides %v offset %d read past its storage of %d", t.Size, t.Stride, t.StorageOffset, size)
	}
	data := make([]byte, n*width)
	for i := range n {
		put(data[i*width:], i)
	}
	return Tensor{DType: dt, Shape: shape, Data: data}, nil
}
