//go:build unix

package safetensors

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Mapped is a safetensors file mapped read-only into memory: its tensors'
// Data point into the mapping, so nothing is copied until a caller copies
// a tensor, and Release gives that tensor's pages back at once. A model
// loader can so build (and quantise) one tensor at a time without the
// whole file ever being resident.
//
// A sharded checkpoint (MapModelDir) is one Mapped over every shard's
// mapping: Release and Close act on the shard that holds the tensor.
type Mapped struct {
	*File
	mem    []byte
	spans  map[string]span
	shards []*Mapped // MapModelDir of a sharded checkpoint: one mapping a shard
}

// MapFile maps path and decodes its header (checked as ReadFile checks it).
func MapFile(path string) (*Mapped, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: read %s: file is %d bytes, shorter than the 8-byte header length", path, size)
	}
	mem, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("safetensors: map %s: %w", path, err)
	}
	m := &Mapped{mem: mem, spans: map[string]span{}}
	n := uint64(mem[0]) | uint64(mem[1])<<8 | uint64(mem[2])<<16 | uint64(mem[3])<<24 | uint64(mem[4])<<32 | uint64(mem[5])<<40 | uint64(mem[6])<<48 | uint64(mem[7])<<56
	if n > MaxHeaderSize || int64(n) > size-8 {
		m.Close()
		return nil, fmt.Errorf("safetensors: read %s: header length %d larger than the file (%d bytes) or the %d byte limit", path, n, size, MaxHeaderSize)
	}
	f, spans, err := parseHeader(mem[8:8+n], size-8-int64(n))
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	data := mem[8+n:]
	for _, s := range spans {
		t := f.Tensors[s.name]
		t.Data = data[s.begin:s.end:s.end]
		f.Tensors[s.name] = t
		m.spans[s.name] = span{name: s.name, begin: int64(8+n) + s.begin, end: int64(8+n) + s.end}
	}
	m.File = f
	return m, nil
}

// Release drops the named tensor's whole pages from memory (they are read
// from the file again if touched); its Data stays valid.
func (m *Mapped) Release(name string) {
	s, ok := m.spans[name]
	if !ok {
		for _, sh := range m.shards {
			sh.Release(name)
		}
		return
	}
	page := int64(os.Getpagesize())
	begin, end := (s.begin+page-1)/page*page, s.end/page*page
	if end > begin {
		_ = syscall.Madvise(m.mem[begin:end], syscall.MADV_DONTNEED)
	}
}

// Close unmaps the file: no tensor's Data may be used after it.
func (m *Mapped) Close() error {
	var err error
	for _, sh := range m.shards {
		if e := sh.Close(); e != nil && err == nil {
			err = e
		}
	}
	m.shards = nil
	if m.mem == nil {
		return err
	}
	if e := syscall.Munmap(m.mem); e != nil && err == nil {
		err = e
	}
	m.mem = nil
	return err
}

// MapModelDir is ReadModelDir with the safetensors file, or every shard of
// model.safetensors.index.json, mapped rather than read (MapFile), under
// the same checks: a loader can copy or quantise one tensor at a time and
// Release it, so the whole float checkpoint is never resident. A directory
// with only pytorch_model.bin (or its shards) is read whole (ReadPyTorch:
// a pickle cannot be mapped tensor by tensor); Release and Close then do
// nothing.
func MapModelDir(dir string) (*Mapped, error) {
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return MapFile(single)
	}
	indexPath := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(indexPath); err != nil {
		f, err := ReadModelDir(dir) // pytorch_model.bin, or the error naming what is missing
		if err != nil {
			return nil, err
		}
		return &Mapped{File: f}, nil
	}
	out := &Mapped{}
	f, err := readShards(dir, indexPath, func(path string) (*File, error) {
		m, err := MapFile(path)
		if err != nil {
			return nil, err
		}
		out.shards = append(out.shards, m)
		return m.File, nil
	})
	if err != nil {
		out.Close()
		return nil, err
	}
	out.File = f
	return out, nil
}
