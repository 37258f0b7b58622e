package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/rlsuite/rl/shared/fsutil"
)

// WriteFile writes f to path atomically (via fsutil.WriteFileFunc) in exactly
// the layout of the reference (Python/Rust) writer: tensors ordered by dtype
// alignment descending then by name, data packed in that order, compact JSON
// header with "__metadata__" first (only when f.Metadata is non-empty; keys
// sorted), padded with spaces to a multiple of 8 bytes.
func WriteFile(path string, f *File) error {
	header, order, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return fsutil.WriteFileFunc(path, func(w io.Writer) error {
		return writeBody(w, header, order, f)
	})
}

func writeBody(w io.Writer, header []byte, order []string, f *File) error {
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, name := range order {
		if _, err := w.Write(f.Tensors[name].Data); err != nil {
			return err
		}
	}
	return nil
}

// checkFile validates f for writing and returns its total data size.
func checkFile(f *File) (int64, error) {
	if f == nil {
		return 0, errors.New("nil file")
	}
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, fmt.Errorf("metadata %q: not valid UTF-8", k)
		}
	}
	var total int64
	for name, t := range f.Tensors {
		if err := checkTensor(name, t); err != nil {
			return 0, err
		}
		total += int64(len(t.Data))
	}
	return total, nil
}

func checkTensor(name string, t Tensor) error {
	if name == metadataKey {
		return fmt.Errorf("tensor name %q is reserved", name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("tensor %q: name is not valid UTF-8", name)
	}
	if !t.DType.known() {
		return fmt.Errorf("tensor %q: unknown dtype %q", name, t.DType)
	}
	want, ok := byteSize(t.DType, t.Shape)
	if !ok {
		return fmt.Errorf("tensor %q: invalid shape %v", name, t.Shape)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %d data bytes, want %d for %s %v", name, len(t.Data), want, t.DType, t.Shape)
	}
	return nil
}

// writeOrder returns the tensor names in the reference writer's order.
func writeOrder(f *File) []string {
	names := f.Names()
	sort.SliceStable(names, func(i, j int) bool {
		return dtypeInfo[f.Tensors[names[i]].DType].rank > dtypeInfo[f.Tensors[names[j]].DType].rank
	})
	return names
}

// encodeHeader validates f and returns the padded JSON header and the order
// in which tensor data follows it.
func encodeHeader(f *File) ([]byte, []string, error) {
	if _, err := checkFile(f); err != nil {
		return nil, nil, err
	}
	order := writeOrder(f)
	b := []byte{'{'}
	first := true
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = appendJSONString(b, metadataKey)
		b = append(b, ':', '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, f.Metadata[k])
		}
		b = append(b, '}')
		first = false
	}
	var offset int64
	for _, name := range order {
		t := f.Tensors[name]
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for i, d := range t.Shape {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, offset, 10)
		b = append(b, ',')
		offset += int64(len(t.Data))
		b = strconv.AppendInt(b, offset, 10)
		b = append(b, ']', '}')
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b, order, nil
}

// appendJSONString appends s as a JSON string escaped like serde_json does:
// only '"', '\\' and control characters are escaped; other UTF-8 is raw.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}
