package tokenizer

import (
	"bytes"
	"fmt"
	"sync"

	smtok "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// sugarmeBackend runs a tokenizer.json through github.com/sugarme/tokenizer
// for the components the native pipeline lacks. Its calls are serialised and
// its panics turned into errors.
type sugarmeBackend struct {
	mu sync.Mutex
	tk *smtok.Tokenizer
}

func newSugarme(data []byte) (b *sugarmeBackend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	tk, err := pretrained.FromReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return &sugarmeBackend{tk: tk}, nil
}

// checkAddedIDs verifies the ids sugarme gave the added tokens: it numbers
// those missing from the model vocabulary itself instead of reading "id".
func (b *sugarmeBackend) checkAddedIDs(added []addedToken) error {
	for _, a := range added {
		if id, ok := b.tk.TokenToId(a.Content); !ok || id != a.ID {
			return fmt.Errorf("added token %q gets id %d instead of %d", a.Content, id, a.ID)
		}
	}
	return nil
}

func (b *sugarmeBackend) encode(text string, addSpecial bool) (ids []int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tokenizer: encode: github.com/sugarme/tokenizer panicked: %v", r)
		}
	}()
	en, err := b.tk.EncodeSingle(text, addSpecial)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: encode: %w", err)
	}
	return append([]int(nil), en.Ids...), nil
}

func (b *sugarmeBackend) decode(ids []int) (s string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tokenizer: decode: github.com/sugarme/tokenizer panicked: %v", r)
		}
	}()
	return b.tk.Decode(ids, false), nil
}
