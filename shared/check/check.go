// Package check validates the numbers of a config struct in one place: every
// float must be finite, and a field tagged `range:"[0,1)"` must lie in that
// interval; errors name the flag, the value and the valid range.
package check

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Range is an interval of valid values; Min and Max may be infinite.
type Range struct {
	Min, Max         float64
	MinOpen, MaxOpen bool // the bound itself is excluded
}

// Common ranges.
var (
	Any      = Range{Min: math.Inf(-1), Max: math.Inf(1), MinOpen: true, MaxOpen: true}
	NonNeg   = Range{Min: 0, Max: math.Inf(1), MaxOpen: true}
	Positive = Range{Min: 0, Max: math.Inf(1), MinOpen: true, MaxOpen: true}
	Unit     = Range{Min: 0, Max: 1} // [0, 1]
)

// AtLeast is [min, inf).
func AtLeast(min float64) Range { return Range{Min: min, Max: math.Inf(1), MaxOpen: true} }

// ParseRange reads an interval written as "[0,1)", "(0,inf)" or "[-1,inf)".
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("check: range %q: want an interval such as [0,1) or (0,inf)", s)
	if len(s) < 5 || !strings.ContainsRune("[(", rune(s[0])) || !strings.ContainsRune("])", rune(s[len(s)-1])) {
		return Range{}, bad
	}
	lo, hi, ok := strings.Cut(s[1:len(s)-1], ",")
	if !ok {
		return Range{}, bad
	}
	var r Range
	var err error
	if r.Min, err = strconv.ParseFloat(strings.TrimSpace(lo), 64); err != nil {
		return Range{}, bad
	}
	if r.Max, err = strconv.ParseFloat(strings.TrimSpace(hi), 64); err != nil {
		return Range{}, bad
	}
	r.MinOpen, r.MaxOpen = s[0] == '(' || math.IsInf(r.Min, 0), s[len(s)-1] == ')' || math.IsInf(r.Max, 0)
	return r, nil
}

// Contains reports whether v lies in r (NaN never does).
func (r Range) Contains(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if v < r.Min || r.MinOpen && v == r.Min || v > r.Max || r.MaxOpen && v == r.Max {
		return false
	}
	return true
}

// String describes r in words: "> 0", ">= 0", "in [0, 1)".
func (r Range) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch {
	case math.IsInf(r.Min, -1) && math.IsInf(r.Max, 1):
		return "a finite number"
	case math.IsInf(r.Max, 1):
		if r.MinOpen {
			return "> " + f(r.Min)
		}
		return ">= " + f(r.Min)
	case math.IsInf(r.Min, -1):
		if r.MaxOpen {
			return "< " + f(r.Max)
		}
		return "<= " + f(r.Max)
	}
	lb, rb := "[", "]"
	if r.MinOpen {
		lb = "("
	}
	if r.MaxOpen {
		rb = ")"
	}
	return "in " + lb + f(r.Min) + ", " + f(r.Max) + rb
}

// Float checks that v is finite and in r; name is the flag (--gamma).
func Float(name string, v float64, r Range) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if r == Any {
			return fmt.Errorf("%s = %g: want a finite number", name, v)
		}
		return fmt.Errorf("%s = %g: want a finite number %s", name, v, r)
	}
	if !r.Contains(v) {
		return fmt.Errorf("%s = %g: want a value %s", name, v, r)
	}
	return nil
}

// Int checks that v is in r; name is the flag (--batch-size).
func Int(name string, v int64, r Range) error {
	if !r.Contains(float64(v)) {
		return fmt.Errorf("%s = %d: want an integer %s", name, v, r)
	}
	return nil
}

// Fields checks every numeric field of the struct cfg points to (or is),
// walking inline structs: floats (also behind pointers and in slices) must
// be finite, and a field with a `range` tag must lie in its range. Each
// error names the yaml key and the flag (the key with '-' for '_'), the
// value and the range; all are returned.
// A malformed range tag is reported as an error too.
func Fields(cfg any) error { return fields(cfg, true) }

// OwnFields is Fields without the inline structs, for a config whose
// embedded structs (train.Args) have a Validate of their own.
func OwnFields(cfg any) error { return fields(cfg, false) }

func fields(cfg any, inline bool) error {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("check: want a struct, got %T", cfg)
	}
	var errs []error
	walk(v, inline, &errs)
	return errors.Join(errs...)
}

func walk(v reflect.Value, inline bool, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && (sf.Anonymous || strings.Contains(opts, "inline")) {
			if inline {
				walk(fv, inline, errs)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		flag := name + " (--" + strings.ReplaceAll(name, "_", "-") + ")"
		r := Any
		if tag, ok := sf.Tag.Lookup("range"); ok {
			var err error
			if r, err = ParseRange(tag); err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %w", flag, err))
				continue
			}
		}
		value(flag, fv, r, errs)
	}
}

func value(flag string, v reflect.Value, r Range, errs *[]error) {
	add := func(err error) {
		if err != nil {
			*errs = append(*errs, err)
		}
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		add(Float(flag, v.Float(), r))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type().String() == "time.Duration" {
			return
		}
		add(Int(flag, v.Int(), r))
	case reflect.Pointer:
		if !v.IsNil() {
			value(flag, v.Elem(), r, errs)
		}
	case reflect.Slice:
		for i := range v.Len() {
			value(fmt.Sprintf("%s (item %d)", flag, i+1), v.Index(i), r, errs)
		}
	}
}
