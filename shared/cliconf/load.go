package cliconf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// Load fills cfg, a pointer to the struct given to Flags and holding the
// defaults, with the YAML file named by --config and then with the flags
// actually given on the command line, so defaults < file < flags.
func Load(c *cli.Context, cfg any) error {
	root, err := structValue(cfg)
	if err != nil {
		return fmt.Errorf("cliconf: %w", err)
	}
	fields, err := fieldsOf(root.Type())
	if err != nil {
		return fmt.Errorf("cliconf: %w", err)
	}
	if path := c.String(ConfigFlag); path != "" {
		if err := LoadFile(path, cfg); err != nil {
			return err
		}
	}
	for _, f := range fields {
		for _, name := range append([]string{f.flagName(), f.key}, f.aliases...) {
			if !c.IsSet(name) {
				continue
			}
			got := reflect.ValueOf(c.Value(name))
			if !got.IsValid() {
				if f.typ.Kind() != reflect.Pointer {
					return fmt.Errorf("flag --%s: no value", name)
				}
				got = reflect.Zero(f.typ)
			}
			if got.Type() != f.typ {
				return fmt.Errorf("flag --%s: has type %s, want %s (was it made by cliconf.Flags for this config?)", name, got.Type(), f.typ)
			}
			root.FieldByIndex(f.index).Set(copyValue(got))
			break
		}
	}
	return nil
}

// LoadFile overlays the settings in the YAML file at path onto cfg, a
// pointer to a config struct. Keys are the yaml tags (learning_rate; the
// flag spelling learning-rate also works), and every key must be known:
// errors name the file, line and key, with a suggestion for a near miss.
// null sets an optional (pointer) field to none, a list to empty and a
// string to "", a scalar for a list field is read as a comma-separated
// list, and an empty file changes nothing.
func LoadFile(path string, cfg any) error {
	root, err := structValue(cfg)
	if err != nil {
		return fmt.Errorf("cliconf: %w", err)
	}
	fields, err := fieldsOf(root.Type())
	if err != nil {
		return fmt.Errorf("cliconf: %w", err)
	}
	data, err := readFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return nil // only comments, or an explicit null
	}
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping of settings, got %s", path, m.Line, kindName(m))
	}
	byKey := make(map[string]field, len(fields))
	for _, f := range fields {
		byKey[f.key] = f
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		f, ok := byKey[key]
		if !ok {
			f, ok = byKey[strings.ReplaceAll(key, "-", "_")]
		}
		if !ok {
			msg := fmt.Sprintf("%s:%d: unknown key %q", path, k.Line, key)
			if s := suggest(strings.ReplaceAll(key, "-", "_"), fields); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			errs = append(errs, errors.New(msg))
			continue
		}
		if line, dup := seen[f.key]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: key %q repeats the one on line %d", path, k.Line, key, line))
			continue
		}
		seen[f.key] = k.Line
		val, err := decodeNode(f.typ, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: key %q: %w", path, v.Line, key, err))
			continue
		}
		root.FieldByIndex(f.index).Set(val)
	}
	return errors.Join(errs...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// decodeNode converts a YAML value to type t.
func decodeNode(t reflect.Type, n *yaml.Node) (reflect.Value, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch {
	case isNull && t.Kind() == reflect.Pointer:
		return reflect.Zero(t), nil
	case isNull && t.Kind() == reflect.Slice:
		return reflect.MakeSlice(t, 0, 0), nil
	case isNull && t.Kind() == reflect.String:
		return reflect.Zero(t), nil // TRL's None for an optional string such as run_name
	case isNull:
		return reflect.Value{}, fmt.Errorf("want %s, got null (only optional settings take null)", typeName(t))
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		out := reflect.MakeSlice(t, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode {
				return reflect.Value{}, fmt.Errorf("want %s, got %s in the list", typeName(t.Elem()), kindName(item))
			}
			e, err := parseScalar(t.Elem(), item.Value)
			if err != nil {
				return reflect.Value{}, err
			}
			out = reflect.Append(out, e)
		}
		return out, nil
	case n.Kind != yaml.ScalarNode:
		return reflect.Value{}, fmt.Errorf("want %s, got %s", typeName(t), kindName(n))
	}
	return parseValue(t, n.Value)
}

// suggest returns the known key closest to key when it is a likely typo.
func suggest(key string, fields []field) string {
	best, bestD := "", -1
	for _, f := range fields {
		d := levenshtein(key, f.key)
		if bestD < 0 || d < bestD {
			best, bestD = f.key, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(key)/4) {
		return best
	}
	// A known key that contains the given one or is contained in it, e.g. "lr_scheduler" for "lr_scheduler_type".
	for _, f := range fields {
		if len(key) >= 4 && (strings.Contains(f.key, key) || strings.Contains(key, f.key) && len(f.key) >= 4) {
			return f.key
		}
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return data, nil
}
