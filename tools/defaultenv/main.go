// Command defaultenv prints the rl binary's default set-up for this machine
// (tensor.DefaultEnv: GOMP_SPINCOUNT, and OPENBLAS_CORETYPE where OpenBLAS's
// own kernel choice does not fit the CPU) as shell exports, for processes
// that do not start through rl: `go tool task test` evaluates it so that
// the tests run as rl does.
//
//	eval "$(go run ./tools/defaultenv)"
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rlsuite/rl/shared/tensor"
)

func main() {
	add, notes := tensor.DefaultEnv(os.Getenv)
	for _, n := range notes {
		fmt.Printf("# %s\n", n)
	}
	for _, kv := range add {
		if k, v, _ := strings.Cut(kv, "="); k != "RL_NO_REEXEC" { // the tests' own rl processes apply the set-up themselves
			fmt.Printf("export %s=%q\n", k, v)
		}
	}
}
