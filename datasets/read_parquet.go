package datasets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/parquet-go/parquet-go"
)

// readParquet reads a Parquet file with parquet-go, rows reconstructed
// against the file's own schema (LIST groups become []any, groups
// map[string]any), then normalised to JSON-like values.
func readParquet(path string, b *builder) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	// parquet-go panics on some malformed inputs; report them as errors.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("datasets: %s: parquet: %v", path, p)
		}
	}()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("datasets: %s: parquet: %w", path, err)
	}
	var cols []string
	for _, field := range pf.Schema().Fields() {
		cols = append(cols, field.Name())
	}
	r := parquet.NewGenericReader[any](pf, pf.Schema())
	defer r.Close()
	buf := make([]any, 256)
	row := 0
	for {
		n, rerr := r.Read(buf)
		for _, v := range buf[:n] {
			row++
			src := Source{File: path, Line: row}
			m, ok := normalizeValue(v).(map[string]any)
			if !ok {
				if err := b.bad(recErr(src, "", "row is %T, not a group", v)); err != nil {
					return err
				}
				continue
			}
			if err := b.add(Record(m), src, cols); err != nil {
				if errors.Is(err, errLimit) {
					return nil
				}
				return err
			}
		}
		clear(buf[:n])
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("datasets: %s: parquet row %d: %w", path, row+1, rerr)
		}
		if n == 0 {
			return nil
		}
	}
}

// normalizeValue converts Go values from typed readers to JSON-like values:
// all numbers to float64, []byte to string, slices to []any, maps with
// string keys to map[string]any.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeValue(e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return normalizeValue(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalizeValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = normalizeValue(it.Value().Interface())
		}
		return out
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	return fmt.Sprint(v)
}
