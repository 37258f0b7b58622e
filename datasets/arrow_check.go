package datasets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// arrow-go trusts the flatbuffer metadata of an IPC file: a corrupt vector
// length or body length makes it allocate that much (a fatal out of memory
// for a few flipped bits). checkArrowIPC walks the framing and metadata of
// a whole Arrow IPC stream or file first and checks that every vector and
// body the reader will allocate fits inside the file.

var errArrowCorrupt = errors.New("corrupt Arrow IPC metadata")

// fb is a bounds-checked view of one flatbuffer.
type fb struct {
	b   []byte
	bad bool
}

func (f *fb) u32(off int) int {
	if off < 0 || off+4 > len(f.b) {
		f.bad = true
		return 0
	}
	return int(binary.LittleEndian.Uint32(f.b[off:]))
}

func (f *fb) i64(off int) int64 {
	if off < 0 || off+8 > len(f.b) {
		f.bad = true
		return 0
	}
	return int64(binary.LittleEndian.Uint64(f.b[off:]))
}

func (f *fb) u16(off int) int {
	if off < 0 || off+2 > len(f.b) {
		f.bad = true
		return 0
	}
	return int(binary.LittleEndian.Uint16(f.b[off:]))
}

func (f *fb) u8(off int) int {
	if off < 0 || off >= len(f.b) {
		f.bad = true
		return 0
	}
	return int(f.b[off])
}

// field returns the absolute offset of field idx of the table at t, or 0.
func (f *fb) field(t, idx int) int {
	vt := t - int(int32(f.u32(t)))
	size := f.u16(vt)
	if f.bad || 4+2*idx+2 > size {
		return 0
	}
	o := f.u16(vt + 4 + 2*idx)
	if o == 0 {
		return 0
	}
	return t + o
}

// ref follows the offset stored at off (a table, vector or string).
func (f *fb) ref(off int) int {
	if off == 0 {
		return 0
	}
	return off + f.u32(off)
}

// vector checks the vector referenced by field idx of table t, of elements
// of elem bytes, and returns its start and length.
func (f *fb) vector(t, idx, elem int) (start, n int) {
	p := f.ref(f.field(t, idx))
	if p == 0 || f.bad {
		return 0, 0
	}
	n = f.u32(p)
	if n > (len(f.b)-p-4)/elem {
		f.bad = true
		return 0, 0
	}
	return p + 4, n
}

func (f *fb) keyValues(t, idx int) {
	start, n := f.vector(t, idx, 4)
	for i := 0; i < n && !f.bad; i++ {
		kv := f.ref(start + 4*i)
		f.vector(kv, 0, 1)
		f.vector(kv, 1, 1)
	}
}

func (f *fb) schema(t int) {
	if t == 0 {
		return
	}
	start, n := f.vector(t, 1, 4)
	for i := 0; i < n && !f.bad; i++ {
		f.arrowField(f.ref(start+4*i), 0)
	}
	f.keyValues(t, 2)
	f.vector(t, 3, 8)
}

func (f *fb) arrowField(t, depth int) {
	if depth > 64 {
		f.bad = true
		return
	}
	f.vector(t, 0, 1) // name
	if typ := f.ref(f.field(t, 3)); typ != 0 && f.u8(f.field(t, 2)) == 14 {
		f.vector(typ, 1, 4) // Union.typeIds
	}
	start, n := f.vector(t, 5, 4) // children
	for i := 0; i < n && !f.bad; i++ {
		f.arrowField(f.ref(start+4*i), depth+1)
	}
	f.keyValues(t, 6)
}

func (f *fb) recordBatch(t int) {
	if t == 0 {
		return
	}
	f.vector(t, 1, 16) // nodes
	f.vector(t, 2, 16) // buffers
	f.vector(t, 4, 8)  // variadicBufferCounts
}

// message checks one Message flatbuffer and returns its body length.
func (f *fb) message() int64 {
	root := f.u32(0)
	hdr := f.ref(f.field(root, 2))
	switch f.u8(f.field(root, 1)) {
	case 1:
		f.schema(hdr)
	case 2:
		f.recordBatch(f.ref(f.field(hdr, 1)))
	case 3:
		f.recordBatch(hdr)
	}
	f.keyValues(root, 4)
	if f.field(root, 3) == 0 {
		return 0
	}
	return f.i64(f.field(root, 3))
}

// checkArrowIPC checks the Arrow IPC stream or file of size bytes in r,
// reading only its metadata.
func checkArrowIPC(r io.ReaderAt, size int64) error {
	read := func(off int64, n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("%w: %v", errArrowCorrupt, err)
		}
		return b, nil
	}
	magic := make([]byte, 6)
	if size >= 8 {
		if _, err := r.ReadAt(magic, 0); err != nil {
			return err
		}
	}
	if size < 8 || string(magic) != "ARROW1" {
		return checkArrowStream(r, 0, size)
	}
	if size < 18 {
		return fmt.Errorf("%w: file format without its footer", errArrowCorrupt)
	}
	tail, err := read(size-10, 10)
	if err != nil {
		return err
	}
	if string(tail[4:]) != "ARROW1" {
		return fmt.Errorf("%w: file format without its footer", errArrowCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n <= 0 || n > size-18 {
		return fmt.Errorf("%w: footer length %d", errArrowCorrupt, n)
	}
	footer, err := read(size-10-n, int(n))
	if err != nil {
		return err
	}
	ft := &fb{b: footer}
	root := ft.u32(0)
	ft.schema(ft.ref(ft.field(root, 1)))
	for _, idx := range []int{2, 3} { // dictionaries, recordBatches: blocks of offset, metaDataLength, bodyLength
		start, nb := ft.vector(root, idx, 24)
		for i := 0; i < nb && !ft.bad; i++ {
			off, meta, body := ft.i64(start+24*i), int64(int32(ft.u32(start+24*i+8))), ft.i64(start+24*i+16)
			if off < 0 || meta < 0 || body < 0 || off > size || meta > size-off || body > size-off-meta {
				ft.bad = true
			}
		}
	}
	ft.keyValues(root, 4)
	if ft.bad {
		return fmt.Errorf("%w: footer", errArrowCorrupt)
	}
	return checkArrowStream(r, 8, size-10-n)
}

// checkArrowStream checks the messages in bytes [pos, end) of r.
func checkArrowStream(r io.ReaderAt, pos, end int64) error {
	var word [4]byte
	next := func() (int64, bool) {
		if pos+4 > end {
			return 0, false
		}
		if _, err := r.ReadAt(word[:], pos); err != nil {
			return 0, false
		}
		pos += 4
		return int64(int32(binary.LittleEndian.Uint32(word[:]))), true
	}
	for {
		n, ok := next()
		if !ok {
			return nil
		}
		if n == -1 { // continuation marker
			if n, ok = next(); !ok {
				return nil
			}
		}
		if n == 0 {
			return nil // end of stream
		}
		if n < 0 || n > end-pos {
			return fmt.Errorf("%w: message length %d at byte %d", errArrowCorrupt, n, pos-4)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, pos); err != nil {
			return fmt.Errorf("%w: %v", errArrowCorrupt, err)
		}
		m := &fb{b: b}
		body := m.message()
		if m.bad {
			return fmt.Errorf("%w: message at byte %d", errArrowCorrupt, pos)
		}
		pos += n
		if body < 0 || body > end-pos {
			return fmt.Errorf("%w: body of %d bytes at byte %d, past the end of the file", errArrowCorrupt, body, pos)
		}
		pos += body
	}
}
