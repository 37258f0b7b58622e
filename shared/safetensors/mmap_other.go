//go:build !unix

package safetensors

// Mapped is, where files cannot be mapped, a file read whole.
type Mapped struct{ *File }

// MapFile reads path whole (ReadFile).
func MapFile(path string) (*Mapped, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &Mapped{File: f}, nil
}

// MapModelDir reads dir whole (ReadModelDir).
func MapModelDir(dir string) (*Mapped, error) {
	f, err := ReadModelDir(dir)
	if err != nil {
		return nil, err
	}
	return &Mapped{File: f}, nil
}

// Release does nothing here.
func (m *Mapped) Release(string) {}

// Close does nothing here.
func (m *Mapped) Close() error { return nil }
