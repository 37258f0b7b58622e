package dpo

import (
	"testing"

	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
)

// The tests' fixtures (an arithmetic tokenizer, a small model, preference
// data) are shared/preference/preftest's, built once per test binary.

func init() { tensor.SetNumThreads(0) }

func TestMain(m *testing.M) { preftest.Main(m) }
