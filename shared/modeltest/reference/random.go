package reference

import "math/rand"

// RandomWeights returns every tensor that cfg requires, under its Hugging
// Face name and with its shape, filled deterministically from seed: weight
// matrices and embeddings with N(0, std²) noise, norm weights with
// 1 + N(0, std²), and biases with N(0, (std/2)²). The same cfg, seed and
// std always give the same weights. It panics if cfg is invalid.
func RandomWeights(cfg Config, seed int64, std float64) Weights {
	d, err := resolve(cfg)
	if err != nil {
		panic("reference.RandomWeights: " + err.Error())
	}
	rng := rand.New(rand.NewSource(seed))
	w := Weights{}
	for _, s := range weightSpecs(cfg, d) {
		data := make([]float32, numElements(s.shape))
		for i := range data {
			z := rng.NormFloat64()
			switch s.kind {
			case kindNorm:
				data[i] = float32(1 + std*z)
			case kindBias:
				data[i] = float32(std / 2 * z)
			default:
				data[i] = float32(std * z)
			}
		}
		w[s.name] = Tensor{Shape: append([]int(nil), s.shape...), Data: data}
	}
	return w
}
