package cliconf

import (
	"flag"
	"fmt"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
)

// ConfigFlag is the name of the flag, added by Flags, that names a YAML config file.
const ConfigFlag = "config"

// FieldHelper is a config whose help for some keys is its own: a trainer
// embedding shared arguments (train.ModelConfig, datasets.ScriptArguments)
// says what its dataset must hold.
type FieldHelper interface {
	FieldHelp() map[string]string // yaml key -> help
}

// Flags returns a --config flag followed by one flag per setting of cfg (a
// struct or a pointer to one), in declaration order. Each is named after its
// yaml key with '_' turned into '-' (--learning-rate) and also accepts the
// key itself (--learning_rate, not shown in help); its usage is the help tag
// plus " (default X)" with X the value in cfg. An optional `category` tag
// groups flags in help. Bools are switches (--flag, --flag=false), lists take
// commas or repeats (--loss-type sigmoid,sft), and pointers also take none.
// Flags panics if cfg has an unsupported field type or a duplicate key, a
// programming error.
func Flags(cfg any) []cli.Flag {
	t, err := structType(cfg)
	if err != nil {
		panic("cliconf: " + err.Error())
	}
	fields, err := fieldsOf(t)
	if err != nil {
		panic("cliconf: " + err.Error())
	}
	root := reflect.ValueOf(cfg)
	if root.Kind() == reflect.Pointer {
		if root.IsNil() {
			root = reflect.New(t)
		}
		root = root.Elem()
	}
	var override map[string]string
	if h, ok := cfg.(FieldHelper); ok {
		override = h.FieldHelp()
	} else if h, ok := addrOf(root).(FieldHelper); ok {
		override = h.FieldHelp()
	}
	flags := []cli.Flag{&cli.StringFlag{
		Name:      ConfigFlag,
		Usage:     "YAML config file (keys spelled like learning_rate); flags given on the command line override it",
		TakesFile: true,
	}}
	for _, f := range fields {
		if f.key == ConfigFlag {
			panic(fmt.Sprintf("cliconf: key %q is reserved for the config file flag", ConfigFlag))
		}
		def := root.FieldByIndex(f.index)
		ff := &fieldFlag{
			name:     f.flagName(),
			typ:      f.typ,
			def:      copyValue(def),
			category: f.category,
		}
		if f.key != ff.name {
			ff.alias = f.key
		}
		ff.aliases = f.aliases
		// urfave/cli treats `quoted` words in usage as the value placeholder.
		help := f.help
		if o, ok := override[f.key]; ok {
			help = o
		}
		help = strings.ReplaceAll(help, "`", "'")
		ff.usage = strings.TrimSpace(help + " (default " + formatValue(def) + ")")
		flags = append(flags, ff)
	}
	return flags
}

// copyValue returns a copy of v that shares no slice or pointer storage.
func copyValue(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Slice:
		if !v.IsNil() {
			out.Set(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()), v))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(v.Elem())
			out.Set(p)
		}
	default:
		out.Set(v)
	}
	return out
}

// fieldFlag is the cli.Flag for one config field. It registers its name and
// alias on the same value, so either form sets it and help lists the name once.
type fieldFlag struct {
	name, alias string
	aliases     []string // shown in help, e.g. --model for --model-name-or-path
	usage       string
	category    string
	typ         reflect.Type
	def         reflect.Value
}

var (
	_ cli.DocGenerationSliceFlag = (*fieldFlag)(nil)
	_ cli.CategorizableFlag      = (*fieldFlag)(nil)
	_ cli.RequiredFlag           = (*fieldFlag)(nil)
)

// Apply registers a fresh value under the flag's name and alias, so the
// flag can be parsed any number of times.
func (f *fieldFlag) Apply(set *flag.FlagSet) error {
	v := &fieldValue{typ: f.typ, v: copyValue(f.def)}
	set.Var(v, f.name, f.usage)
	if f.alias != "" {
		set.Var(v, f.alias, f.usage)
	}
	for _, a := range f.aliases {
		set.Var(v, a, f.usage)
	}
	return nil
}

func (f *fieldFlag) String() string         { return cli.FlagStringer(f) }
func (f *fieldFlag) Names() []string        { return append([]string{f.name}, f.aliases...) }
func (f *fieldFlag) IsSet() bool            { return false } // no env vars: set only on the command line
func (f *fieldFlag) IsRequired() bool       { return false }
func (f *fieldFlag) IsVisible() bool        { return true }
func (f *fieldFlag) GetCategory() string    { return f.category }
func (f *fieldFlag) TakesValue() bool       { return f.typ.Kind() != reflect.Bool }
func (f *fieldFlag) GetUsage() string       { return f.usage }
func (f *fieldFlag) GetValue() string       { return formatValue(f.def) }
func (f *fieldFlag) GetDefaultText() string { return "" } // the default is already in the usage
func (f *fieldFlag) GetEnvVars() []string   { return nil }
func (f *fieldFlag) IsSliceFlag() bool      { return f.typ.Kind() == reflect.Slice }

// fieldValue is the flag.Value behind a fieldFlag: it parses and type-checks
// each command-line value for its field type.
type fieldValue struct {
	typ reflect.Type
	v   reflect.Value
	set bool // a list flag given once replaces the default; repeats append
}

func (v *fieldValue) String() string {
	if v == nil || !v.v.IsValid() {
		return ""
	}
	return formatValue(v.v)
}

func (v *fieldValue) Set(s string) error {
	p, err := parseValue(v.typ, s)
	if err != nil {
		return err
	}
	if v.typ.Kind() == reflect.Slice && v.set {
		p = reflect.AppendSlice(v.v, p)
	}
	v.v, v.set = p, true
	return nil
}

// Get returns the parsed value, of the field's type.
func (v *fieldValue) Get() any { return v.v.Interface() }

// IsBoolFlag lets bool fields be given as a bare --flag.
func (v *fieldValue) IsBoolFlag() bool { return v.typ.Kind() == reflect.Bool }

// addrOf returns a pointer to v when v is addressable, else nil.
func addrOf(v reflect.Value) any {
	if !v.CanAddr() {
		return nil
	}
	return v.Addr().Interface()
}
