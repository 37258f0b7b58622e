// Command lengthreward is a reward program for rl grpo, rl rloo and rl ppo, in Go:
//
//	go build -o lengthreward ./docs/examples/reward-programs/lengthreward
//	rl grpo ... --reward-funcs cmd:./lengthreward,builtin:gsm8k
//
// rl starts it once; for each completion it writes one JSON line to stdin
// ({"prompt", "completion", and the prompt's other dataset columns}) and
// reads one line from stdout, in order: a number, null, or {"reward": x}.
// This one rewards completions close to 20 words: 1 - |words - 20| / 20.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var row struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}
		if err := json.Unmarshal(in.Bytes(), &row); err != nil {
			fmt.Fprintln(os.Stderr, "lengthreward: bad input line:", err)
			os.Exit(1) // rl reports the exit and this message
		}
		words := len(strings.Fields(row.Completion))
		fmt.Fprintf(out, "%g\n", math.Max(0, 1-math.Abs(float64(words)-20)/20))
		out.Flush() // one answer per completion, as soon as it is ready
	}
}
