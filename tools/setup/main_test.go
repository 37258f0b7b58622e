package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCXXABI reads _GLIBCXX_USE_CXX11_ABI from a libtorch's CMake config
// as TorchConfig.cmake.in writes it (pip torch before 2.7: 0), and says
// nothing for a tree without one.
func TestCXXABI(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "share/cmake/Torch/TorchConfig.cmake"),
		"# When we build libtorch with the old libstdc++ ABI, dependent libraries must too.\nif(CMAKE_SYSTEM_NAME STREQUAL \"Linux\")\n  set(TORCH_CXX_FLAGS \"-D_GLIBCXX_USE_CXX11_ABI=0\")\nendif()\n")
	if got := cxxABI(dir); got != "0" {
		t.Errorf("cxxABI = %q, want 0", got)
	}
	if got := cxxABI(t.TempDir()); got != "" {
		t.Errorf("cxxABI of an empty tree = %q", got)
	}
	// Debian's libtorch-dev states the new ABI (its lib dir's cmake/Torch)
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake"); err == nil {
		if got := cxxABI("/usr/lib/x86_64-linux-gnu"); got != "1" {
			t.Errorf("Debian's libtorch: cxxABI = %q, want 1", got)
		}
	}
}

// TestCUDADirsOfPipTorch: the nvidia-* wheels beside site-packages/torch
// give the header and library folders, CUDA_HOME's come after them; the
// versioned libcudart.so.12 of the wheels is linked by name; the header
// tree links every header of every folder, the first folder winning.
func TestCUDADirsOfPipTorch(t *testing.T) {
	site := t.TempDir()
	torch := filepath.Join(site, "torch")
	write(t, filepath.Join(torch, "lib/libtorch_cuda.so"), "")
	write(t, filepath.Join(site, "nvidia/cuda_runtime/include/cuda_runtime_api.h"), "// runtime")
	write(t, filepath.Join(site, "nvidia/cuda_runtime/lib/libcudart.so.12"), "")
	write(t, filepath.Join(site, "nvidia/nccl/include/nccl.h"), "// nccl")
	write(t, filepath.Join(site, "nvidia/nccl/lib/libnccl.so.2"), "")
	home := t.TempDir()
	write(t, filepath.Join(home, "include/cuda_runtime_api.h"), "// CUDA_HOME's")
	write(t, filepath.Join(home, "include/cublas_v2.h"), "// cublas")
	inc, libs := cudaDirs(torch, home)
	wantInc := []string{filepath.Join(site, "nvidia/cuda_runtime/include"), filepath.Join(site, "nvidia/nccl/include"), filepath.Join(home, "include")}
	if !slices.Equal(inc, wantInc) {
		t.Errorf("include dirs %v, want %v", inc, wantInc)
	}
	if len(libs) != 2 || libs[0] != filepath.Join(site, "nvidia/cuda_runtime/lib") {
		t.Errorf("lib dirs %v", libs)
	}
	if arg, dir := cudartLib(libs); arg != "-l:libcudart.so.12" || dir != libs[0] {
		t.Errorf("cudartLib = %q %q", arg, dir)
	}
	tree := filepath.Join(t.TempDir(), "cuda-include")
	if err := headerTree(tree, inc); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"cuda_runtime_api.h": "// runtime", "nccl.h": "// nccl", "cublas_v2.h": "// cublas"} {
		b, err := os.ReadFile(filepath.Join(tree, name))
		if err != nil || string(b) != want {
			t.Errorf("%s in the header tree: %q, %v; want %q", name, b, err, want)
		}
	}
	if err := headerTree(tree, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Errorf("a CPU libtorch leaves the header tree: %v", err)
	}
	// a CUDA libtorch's lib.go links libtorch_cuda and the runtime, with its rpath
	lg := libGo(torchTree{LibDir: filepath.Join(torch, "lib"), CUDA: true, ABI: "0", CUDALibs: libs})
	for _, want := range []string{"-ltorch_cuda", "-l:libcudart.so.12", "-Wl,-rpath," + libs[0], "-D_GLIBCXX_USE_CXX11_ABI=0"} {
		if !strings.Contains(lg, want) {
			t.Errorf("lib.go lacks %s:\n%s", want, lg)
		}
	}
}

// TestDistConfigHeader: the ABI before anything else, NCCL on for CUDA.
func TestDistConfigHeader(t *testing.T) {
	h := distConfigHeader(torchTree{ABI: "0", CUDA: true})
	if !strings.Contains(h, "#define _GLIBCXX_USE_CXX11_ABI 0\n#define RL_NCCL 1\n#define USE_C10D_NCCL 1\n") {
		t.Errorf("CUDA pip torch: %q", h)
	}
	if h := distConfigHeader(torchTree{System: true}); strings.Contains(h, "#define") {
		t.Errorf("Debian's CPU libtorch: %q", h)
	}
}

// TestStubBindings: g++ errors in the generated wrappers and in
// torch_api.cpp are read per file, and the failing function's body is
// replaced by one that sets torch_last_err, in both files' styles.
func TestStubBindings(t *testing.T) {
	log := "torch_api.cpp:12:5: error: 'class at::Tensor' has no member named 'foo'\n" +
		"In file included from torch_api.cpp:1:\n" +
		"torch_api_generated.cpp.h:4:3: error: 'atg_new_op' was not declared\n" +
		"torch_api.cpp:40:1: warning: unused\n"
	bad := parseErrors([]byte(log))
	if !bad["torch_api.cpp"][12] || !bad[generatedFile][4] || bad["torch_api.cpp"][40] || len(bad) != 2 {
		t.Fatalf("parseErrors: %v", bad)
	}
	src := strings.Join([]string{
		"int at_defined(tensor t) {",
		"  PROTECT(return t->defined();)",
		"  return -1;",
		"}",
		"",
		"tensor at_shallow_clone(tensor t) {",
		"  PROTECT(return new torch::Tensor(*t);)",
		"  return nullptr;",
		"}",
		"void at_free(tensor t) {",
		"  delete(t);",
		"}",
	}, "\n")
	out, names, err := stubFunctions(src, map[int]bool{7: true, 11: true}, "2.9.0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"at_shallow_clone", "at_free"}) {
		t.Errorf("replaced %v", names)
	}
	for _, want := range []string{
		"int at_defined(tensor t) {\n  PROTECT(return t->defined();)", // untouched
		"tensor at_shallow_clone(tensor t) {\n  torch_last_err = strdup(\"at_shallow_clone: not available in libtorch 2.9.0",
		"  return {};\n}",
		"void at_free(tensor t) {\n  torch_last_err = strdup(\"at_free: not available in libtorch 2.9.0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stubbed source lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "delete(t)") || strings.Contains(out, "new torch::Tensor") {
		t.Errorf("a failing body is left:\n%s", out)
	}
}
