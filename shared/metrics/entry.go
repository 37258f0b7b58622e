package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
)

// FileName is the name of the metrics log inside a run directory.
const FileName = "metrics.jsonl"

// Entry is one logged point: the optimiser step and the metric values at it.
//
// Its JSON form is one metrics.jsonl line, {"step": 10, "epoch": 0.5, "loss": 1.23},
// with "step" first and the other keys sorted. JSON has no NaN or infinities,
// so those are written as the strings "NaN", "Inf" and "-Inf" (and read back,
// as is null, which reads as NaN).
type Entry struct {
	Step   int
	Values map[string]float64
}

// MarshalJSON writes e as one metrics.jsonl object; a "step" key in Values is ignored.
func (e Entry) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(e.Values))
	for k := range e.Values {
		if k != "step" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteString(`{"step":`)
	b.WriteString(strconv.Itoa(e.Step))
	for _, k := range keys {
		b.WriteByte(',')
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.WriteString(formatJSONFloat(e.Values[k]))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func formatJSONFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return `"NaN"`
	case math.IsInf(v, 1):
		return `"Inf"`
	case math.IsInf(v, -1):
		return `"-Inf"`
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// UnmarshalJSON reads one metrics.jsonl object; "step" must be present and integral.
func (e *Entry) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New(`want a JSON object with a "step" key`)
	}
	stepRaw, ok := raw["step"]
	if !ok {
		return errors.New(`missing "step"`)
	}
	var stepF float64
	if err := json.Unmarshal(stepRaw, &stepF); err != nil || stepF != math.Trunc(stepF) || math.Abs(stepF) > math.MaxInt32 {
		return fmt.Errorf(`"step" is %s, want an integer`, stepRaw)
	}
	step := int(stepF)
	values := make(map[string]float64, len(raw)-1)
	for k, r := range raw {
		if k == "step" {
			continue
		}
		v, err := parseJSONFloat(r)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		values[k] = v
	}
	e.Step, e.Values = step, values
	return nil
}

func parseJSONFloat(r json.RawMessage) (float64, error) {
	switch string(r) {
	case "null", `"NaN"`, `"nan"`:
		return math.NaN(), nil
	case `"Inf"`, `"+Inf"`, `"Infinity"`, `"inf"`:
		return math.Inf(1), nil
	case `"-Inf"`, `"-Infinity"`, `"-inf"`:
		return math.Inf(-1), nil
	}
	var v float64
	if err := json.Unmarshal(r, &v); err != nil {
		return 0, fmt.Errorf("%s is not a number", r)
	}
	return v, nil
}

// ReadFile reads a metrics.jsonl file; blank lines are skipped and errors name file:line.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, _, err := readEntries(f, path, false)
	return entries, err
}

// readEntries parses metrics.jsonl lines from r. With tolerateTail, an
// unparsable last line that lacks its newline (a write cut short by a kill)
// is dropped and reported through dropped instead of failing.
func readEntries(r io.Reader, path string, tolerateTail bool) (entries []Entry, dropped bool, err error) {
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, false, fmt.Errorf("%s:%d: %w", path, lineNo, rerr)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			var e Entry
			if err := json.Unmarshal(trimmed, &e); err != nil {
				if tolerateTail && !complete && rerr == io.EOF {
					return entries, true, nil
				}
				return nil, false, fmt.Errorf("%s:%d: %w", path, lineNo, err)
			}
			entries = append(entries, e)
		}
		if rerr == io.EOF {
			return entries, false, nil
		}
	}
}
