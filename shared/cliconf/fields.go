// Package cliconf turns a trainer's config struct into command-line flags and YAML, with defaults < --config file < flags.
package cliconf

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// field is one leaf setting of a config struct.
type field struct {
	key      string   // yaml key, e.g. "learning_rate"
	aliases  []string // extra flag names from the `alias` tag (comma-separated), e.g. "model"
	help     string
	category string
	index    []int // reflect index path from the root struct, through inline structs
	typ      reflect.Type
}

// flagName is the primary flag name: the yaml key with '_' turned into '-'.
func (f field) flagName() string { return strings.ReplaceAll(f.key, "_", "-") }

var durationType = reflect.TypeFor[time.Duration]()

// structType returns the struct type behind cfg (a struct or a pointer to one).
func structType(cfg any) (reflect.Type, error) {
	t := reflect.TypeOf(cfg)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config must be a struct or a pointer to one, got %T", cfg)
	}
	return t, nil
}

// structValue returns the addressable struct cfg points to.
func structValue(cfg any) (reflect.Value, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("config must be a non-nil pointer to a struct, got %T", cfg)
	}
	return v.Elem(), nil
}

// fieldsOf lists the settings of struct type t in declaration order,
// flattening structs tagged `yaml:",inline"`.
func fieldsOf(t reflect.Type) ([]field, error) {
	var out []field
	seen := map[string]string{} // key -> Go field path, for duplicate errors
	var walk func(t reflect.Type, index []int, path string) error
	walk = func(t reflect.Type, index []int, path string) error {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" || !sf.IsExported() && !sf.Anonymous {
				continue
			}
			idx := append(append([]int{}, index...), i)
			goPath := path + sf.Name
			inline := hasOpt(opts, "inline")
			if inline || sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				if sf.Type.Kind() != reflect.Struct {
					return fmt.Errorf("field %s: inline is only supported for structs, not %s", goPath, sf.Type)
				}
				if !inline {
					return fmt.Errorf("embedded struct %s needs a `yaml:\",inline\"` tag to be flattened", goPath)
				}
				if err := walk(sf.Type, idx, goPath+"."); err != nil {
					return err
				}
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name) // yaml.v3's default key
			}
			if err := checkType(sf.Type); err != nil {
				return fmt.Errorf("field %s (%s): %w", goPath, name, err)
			}
			if prev, ok := seen[name]; ok {
				return fmt.Errorf("fields %s and %s share the key %q", prev, goPath, name)
			}
			seen[name] = goPath
			fl := field{key: name, help: sf.Tag.Get("help"), category: sf.Tag.Get("category"), index: idx, typ: sf.Type}
			if a := sf.Tag.Get("alias"); a != "" {
				fl.aliases = strings.Split(a, ",")
			}
			out = append(out, fl)
		}
		return nil
	}
	if err := walk(t, nil, t.Name()+"."); err != nil {
		return nil, err
	}
	return out, nil
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func isScalar(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	}
	return false
}

// checkType accepts the supported kinds: string, bool, int, int64, float64,
// time.Duration, slices of those (except bool and Duration) and pointers to
// the scalars; named types over them (type LossType string) work too.
func checkType(t reflect.Type) error {
	switch {
	case isScalar(t):
		return nil
	case t.Kind() == reflect.Slice && isScalar(t.Elem()) && t.Elem().Kind() != reflect.Bool && t.Elem() != durationType:
		return nil
	case t.Kind() == reflect.Pointer && isScalar(t.Elem()):
		return nil
	}
	return fmt.Errorf("unsupported type %s", t)
}

// typeName describes t for error messages.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 90s or 1h30m"
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem()) + " or none"
	case t.Kind() == reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeName(t.Elem()), "a "), "an ") + "s"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return t.String()
}

var errNull = errors.New("null")

// isNone reports whether s spells TRL's None for an optional field.
func isNone(s string) bool {
	switch strings.TrimSpace(s) {
	case "", "none", "None", "null", "Null", "NULL", "~":
		return true
	}
	return false
}

// parseScalar parses s as scalar type t (also named types over the kinds).
func parseScalar(t reflect.Type, s string) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	bad := func() (reflect.Value, error) {
		return reflect.Value{}, fmt.Errorf("want %s, got %q", typeName(t), s)
	}
	if t == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return bad()
		}
		v.SetInt(int64(d))
		return v, nil
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return bad()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, t.Bits())
		if err != nil {
			return bad()
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := parseFloat(strings.TrimSpace(s))
		if err != nil {
			return bad()
		}
		v.SetFloat(f)
	default:
		return bad()
	}
	return v, nil
}

// parseFloat also accepts YAML's .inf, -.inf and .nan.
func parseFloat(s string) (float64, error) {
	switch strings.ToLower(s) {
	case ".inf", "+.inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// parseList parses a comma-separated list into slice type t; "" is the empty list.
func parseList(t reflect.Type, s string) (reflect.Value, error) {
	out := reflect.MakeSlice(t, 0, 0)
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		if t.Elem().Kind() != reflect.String {
			part = strings.TrimSpace(part)
		}
		e, err := parseScalar(t.Elem(), part)
		if err != nil {
			return reflect.Value{}, err
		}
		out = reflect.Append(out, e)
	}
	return out, nil
}

// parseValue parses one command-line value for type t: scalars, comma
// lists for slices, and none/null (or "") for a nil pointer.
func parseValue(t reflect.Type, s string) (reflect.Value, error) {
	switch t.Kind() {
	case reflect.Slice:
		return parseList(t, s)
	case reflect.Pointer:
		if isNone(s) {
			return reflect.Zero(t), nil
		}
		e, err := parseScalar(t.Elem(), s)
		if err != nil {
			return reflect.Value{}, fmt.Errorf("want %s, got %q", typeName(t), s)
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(e)
		return p, nil
	}
	return parseScalar(t, s)
}

// formatValue renders v (of a supported type) as flag and help text:
// lists comma-separated, nil pointers and empty lists as none, and "" as "".
func formatValue(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			return "none"
		}
		return formatValue(v.Elem())
	case t.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return "none"
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	switch t.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}
