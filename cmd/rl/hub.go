package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/hub"
)

// modelPathKeys are the yaml keys of Config fields that name a model or
// tokenizer folder; each accepts a Hub id (org/name[@revision]) as well.
var modelPathKeys = map[string]bool{
	"model_name_or_path": true, "tokenizer_name_or_path": true, "base_model": true,
	"ref_model": true, "reward_model_path": true, "sft_model_path": true, "value_model_path": true,
	"reward_funcs": true, // GRPO/RLOO: reward model folders among builtin:NAME and cmd:PROGRAM
}

// resolveHub replaces every model path in cfg (a pointer to a trainer's
// Config) that is a Hub id and not a local path by its snapshot folder in
// the Hugging Face cache, downloading what is missing (shared/hub).
func resolveHub(ctx context.Context, cfg any) error {
	return resolveStruct(ctx, reflect.ValueOf(cfg).Elem())
}

func resolveStruct(ctx context.Context, v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf, fv := t.Field(i), v.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Type.Kind() == reflect.Struct {
			if err := resolveStruct(ctx, fv); err != nil {
				return err
			}
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !modelPathKeys[key] {
			continue
		}
		flag := strings.ReplaceAll(key, "_", "-")
		if a := sf.Tag.Get("alias"); a != "" {
			flag, _, _ = strings.Cut(a, ",")
		}
		switch {
		case sf.Type.Kind() == reflect.String:
			p, err := hub.ResolveModel(ctx, "--"+flag, fv.String())
			if err != nil {
				return err
			}
			fv.SetString(p)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			for j := 0; j < fv.Len(); j++ {
				p, err := hub.ResolveModel(ctx, "--"+flag, fv.Index(j).String())
				if err != nil {
					return err
				}
				fv.Index(j).SetString(p)
			}
		}
	}
	return nil
}

// hubFlag is the value of a string flag naming a model folder, with a Hub
// id resolved to its snapshot folder.
func hubFlag(c *cli.Context, name string) (string, error) {
	p, err := hub.ResolveModel(c.Context, "--"+name, c.String(name))
	if err != nil {
		return "", fmt.Errorf("rl %s: %w", c.Command.Name, err)
	}
	return p, nil
}
