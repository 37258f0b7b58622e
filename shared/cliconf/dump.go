package cliconf

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dump renders cfg (a struct or a pointer to one) as YAML with one key per
// setting in declaration order, inline structs flattened, that LoadFile
// reads back to the same values; trainers write it to rl_config.yaml.
// Floats always carry a '.' (5.0e-05, 1.0) so Python YAML loaders read them
// as floats too, and nil pointers are null.
func Dump(cfg any) ([]byte, error) {
	t, err := structType(cfg)
	if err != nil {
		return nil, fmt.Errorf("cliconf: %w", err)
	}
	fields, err := fieldsOf(t)
	if err != nil {
		return nil, fmt.Errorf("cliconf: %w", err)
	}
	root := reflect.ValueOf(cfg)
	if root.Kind() == reflect.Pointer {
		if root.IsNil() {
			return nil, fmt.Errorf("cliconf: nil %T", cfg)
		}
		root = root.Elem()
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.key},
			valueNode(root.FieldByIndex(f.index)))
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cliconf: %w", err)
	}
	return out, nil
}

func valueNode(v reflect.Value) *yaml.Node {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		return valueNode(v.Elem())
	case t.Kind() == reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n.Content = append(n.Content, valueNode(v.Index(i)))
		}
		return n
	case t == durationType:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: formatValue(v)}
	}
	switch t.Kind() {
	case reflect.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.String()}
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}
	case reflect.Int, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case reflect.Float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: yamlFloat(v.Float())}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(v.Interface())}
}

// yamlFloat formats f so that YAML 1.1 and 1.2 loaders both read a float.
func yamlFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if strings.ContainsAny(s, ".") {
		return s
	}
	if mant, exp, ok := strings.Cut(s, "e"); ok {
		return mant + ".0e" + exp
	}
	return s + ".0"
}
