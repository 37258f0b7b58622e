package train

import (
	"testing"

	"github.com/rlsuite/rl/shared/model"
)

// TestModelLoadOptionsQuant: load_in_4bit / load_in_8bit with use_peft
// reach model loading (the base is quantised as it is read), with TRL's
// bnb settings; without use_peft, or for a merged load (a reference, a
// model trained in full), the base loads in float.
func TestModelLoadOptionsQuant(t *testing.T) {
	mc := DefaultModelConfig()
	mc.UsePEFT, mc.LoadIn4bit, mc.Bnb4bitQuantType, mc.UseBnbNestedQuant = true, true, "fp4", true
	o := mc.ModelLoadOptions(model.LoadOptions{})
	if o.Quant == nil || *o.Quant != (model.QuantConfig{Bits: 4, QuantType: "fp4", DoubleQuant: true}) {
		t.Errorf("load_in_4bit fp4 nested: Quant %+v", o.Quant)
	}
	if o.Merged().Quant != nil {
		t.Error("a merged load keeps Quant: it must load in float")
	}
	mc.LoadIn4bit, mc.LoadIn8bit = false, true
	if o := mc.ModelLoadOptions(model.LoadOptions{}); o.Quant == nil || o.Quant.Bits != 8 {
		t.Errorf("load_in_8bit: Quant %+v", o.Quant)
	}
	mc.UsePEFT = false
	if o := mc.ModelLoadOptions(model.LoadOptions{}); o.Quant != nil {
		t.Errorf("without use_peft: Quant %+v, want nil", o.Quant)
	}
	mc.UsePEFT, mc.LoadIn8bit = true, false
	if o := mc.ModelLoadOptions(model.LoadOptions{}); o.Quant != nil {
		t.Errorf("plain LoRA: Quant %+v, want nil", o.Quant)
	}
}
