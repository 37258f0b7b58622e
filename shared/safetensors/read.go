package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference implementation.
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// ReadFile reads and fully validates a safetensors file: the header length
// must fit the file and MaxHeaderSize, the header must be a UTF-8 JSON object
// with known dtypes, non-negative dimensions and data_offsets whose span
// matches shape × dtype size, and the tensors must tile the data buffer
// exactly (no overlap, no hole, nothing after the last tensor). Errors name
// the file and, where relevant, the tensor.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	return read(fh, st.Size(), path)
}

// read decodes a safetensors file of size bytes from r; path names it in errors.
func read(r io.Reader, size int64, path string) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors: read %s: file is %d bytes, shorter than the 8-byte header length", path, size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: read %s: header length %d exceeds the %d byte limit", path, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors: read %s: header length %d larger than the %d bytes after the length field", path, n, size-8)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, fmt.Errorf("safetensors: read %s: header: %w", path, err)
	}
	dataLen := size - 8 - int64(n)
	f, spans, err := parseHeader(header, dataLen)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("safetensors: read %s: data: %w", path, err)
	}
	for _, s := range spans {
		t := f.Tensors[s.name]
		t.Data = data[s.begin:s.end:s.end]
		f.Tensors[s.name] = t
	}
	return f, nil
}

type rawTensorInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

type span struct {
	name       string
	begin, end int64
}

// parseHeader decodes and validates the JSON header against a data buffer of
// dataLen bytes. The returned tensors have no Data yet; spans says where it is.
func parseHeader(header []byte, dataLen int64) (*File, []span, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if _, err := dec.Token(); err != nil { // the opening '{', checked above
		return nil, nil, fmt.Errorf("invalid header JSON: %w", noEOF(err))
	}
	f := &File{Tensors: map[string]Tensor{}}
	var spans []span
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("invalid header JSON: %w", noEOF(err))
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("invalid header JSON: unexpected %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("invalid header JSON: %w", noEOF(err))
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("duplicate header key %q", name)
		}
		seen[name] = true
		if name == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(raw, &md); err != nil {
				return nil, nil, fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
			}
			f.Metadata = md
			continue
		}
		t, s, err := parseTensorInfo(name, raw, dataLen)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		f.Tensors[name] = t
		spans = append(spans, s)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, fmt.Errorf("invalid header JSON: %w", noEOF(err))
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, fmt.Errorf("invalid header JSON after the object: %w", err)
		}
		return nil, nil, fmt.Errorf("invalid header JSON: unexpected %v after the object", tok)
	}
	if err := checkTiling(spans, dataLen); err != nil {
		return nil, nil, err
	}
	return f, spans, nil
}

func parseTensorInfo(name string, raw json.RawMessage, dataLen int64) (Tensor, span, error) {
	var info rawTensorInfo
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return Tensor{}, span{}, errors.New("tensor info is null")
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return Tensor{}, span{}, fmt.Errorf("invalid tensor info: %w", err)
	}
	switch {
	case info.DType == nil:
		return Tensor{}, span{}, errors.New("missing dtype")
	case info.Shape == nil:
		return Tensor{}, span{}, errors.New("missing shape")
	case info.DataOffsets == nil:
		return Tensor{}, span{}, errors.New("missing data_offsets")
	}
	dt := DType(*info.DType)
	if !dt.known() {
		return Tensor{}, span{}, fmt.Errorf("unknown dtype %q", dt)
	}
	shape := *info.Shape
	if shape == nil {
		shape = []int64{} // "shape": [] is a scalar; keep it non-nil
	}
	for i, d := range shape {
		if d < 0 {
			return Tensor{}, span{}, fmt.Errorf("negative dimension %d at index %d of shape %v", d, i, shape)
		}
	}
	want, ok := byteSize(dt, shape)
	if !ok {
		return Tensor{}, span{}, fmt.Errorf("shape %v of %s overflows", shape, dt)
	}
	off := *info.DataOffsets
	if len(off) != 2 {
		return Tensor{}, span{}, fmt.Errorf("data_offsets %v must have 2 entries", off)
	}
	begin, end := off[0], off[1]
	if begin < 0 || end < begin {
		return Tensor{}, span{}, fmt.Errorf("invalid data_offsets [%d, %d]", begin, end)
	}
	if end-begin != want {
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] span %d bytes, want %d for %s %v", begin, end, end-begin, want, dt, shape)
	}
	if end > dataLen {
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] out of bounds of the %d byte data buffer", begin, end, dataLen)
	}
	return Tensor{DType: dt, Shape: shape}, span{name, begin, end}, nil
}

// checkTiling verifies that the spans cover [0, dataLen) exactly once.
func checkTiling(spans []span, dataLen int64) error {
	sorted := append([]span(nil), spans...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].begin != sorted[j].begin {
			return sorted[i].begin < sorted[j].begin
		}
		if sorted[i].end != sorted[j].end {
			return sorted[i].end < sorted[j].end
		}
		return sorted[i].name < sorted[j].name
	})
	var pos int64
	prev := ""
	for _, s := range sorted {
		switch {
		case s.begin < pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q ending at %d", s.name, s.begin, s.end, prev, pos)
		case s.begin > pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole of %d bytes at offset %d", s.name, s.begin, s.end, s.begin-pos, pos)
		}
		if s.end > s.begin {
			prev = s.name
		}
		pos = s.end
	}
	if pos != dataLen {
		return fmt.Errorf("data buffer has %d bytes but the tensors end at %d (%d unused trailing bytes)", dataLen, pos, dataLen-pos)
	}
	return nil
}

// noEOF turns the io.EOF a json.Decoder reports for a truncated header into
// io.ErrUnexpectedEOF, which reads better in an error message.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
