// Command setup prepares a machine to build rl: it installs libtorch and an
// optimised BLAS when missing (Debian, as root), makes a git-ignored copy of
// gotch v0.9.1 in third_party/gotch, points its cgo flags at the libtorch in
// use, replaces exactly the generated wrappers that do not compile against
// that libtorch by bodies that raise a clear error, and wires the copy in
// with a git-ignored go.work.
//
// A second run with nothing changed returns in well under a second.
//
// Environment:
//
//	LIBTORCH=/path/to/libtorch   use this libtorch tree (include/, lib/) instead of
//	                             Debian's libtorch-dev; a CUDA build is detected by
//	                             lib/libtorch_cuda.so and linked with CUDA.
//	                             site-packages/torch of a pip torch works too
//	                             (`go tool task gpu-check` passes it): its C++ ABI
//	                             (_GLIBCXX_USE_CXX11_ABI, from
//	                             share/cmake/Torch/TorchConfig.cmake) is used for
//	                             everything compiled against it, and the CUDA and
//	                             NCCL headers/libraries of the nvidia-* wheels beside
//	                             it (or of CUDA_HOME) are found for shared/dist.
//
// Versions: gotch v0.9.1's generated wrappers target libtorch 2.1. Against
// another libtorch, every wrapper (atg_*) and every hand-written binding of
// torch_api.cpp (at_*, ato_*, ...) that does not compile is replaced by a
// body that returns a clear error, so rl builds; rl uses none of the ops
// 1.13 lacks. Built and tested here: Debian's libtorch 1.13 (CPU). Written
// for, but not yet run on this project's machines: pip torch 2.1-2.6 with
// CUDA 11.8/12.x (rl_extra.cpp switches to libtorch 2.4's autocast API).
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "embed"
)

// rlExtra is C++ that setup adds to the libtch copy: bindings gotch lacks
// (CPU autocast, for bf16 training).
//
//go:embed rl_extra.cpp.in
var rlExtra []byte

const (
	gotchModule  = "github.com/sugarme/gotch"
	gotchVersion = "v0.9.1"
	// setupRevision changes whenever this tool's output changes, to force a redo.
	setupRevision = "7"
	generatedFile = "torch_api_generated.cpp.h"
)

// aptPackages are what a Debian machine needs for the system libtorch:
// libtorch itself and OpenBLAS built for OpenMP. The OpenMP build shares
// libtorch's thread pool; the pthreads build's own threads fight it
// (plain PyTorch's tiny training step: 1,873 tok/s with libopenblas0-pthread,
// 3,884 with libopenblas0-openmp; see ../shared/bench/README.md).
// libgloo-dev has the gloo headers that libtorch's ProcessGroupGloo.hpp
// includes (shared/dist, data parallel on CPU).
var aptPackages = []string{"libtorch-dev", "libopenblas0-openmp", "libgloo-dev"}

type torchTree struct {
	Include  []string // -I directories
	LibDir   string   // -L directory
	Version  string   // e.g. 1.13.0
	CUDA     bool
	System   bool // Debian's libtorch-dev
	CUDAHome string
	// ABI is the libtorch's _GLIBCXX_USE_CXX11_ABI ("0" for pip torch
	// before 2.7, "1" for Debian's and later ones; "" when not stated).
	ABI string `json:",omitempty"`
	// CUDAInclude and CUDALibs are the CUDA runtime and NCCL header
	// and library folders of a CUDA libtorch (CUDA_HOME, or the nvidia-*
	// wheels beside a pip torch).
	CUDAInclude []string `json:",omitempty"`
	CUDALibs    []string `json:",omitempty"`
}

type stamp struct {
	Revision string    `json:"revision"`
	Gotch    string    `json:"gotch"`
	Torch    torchTree `json:"torch"`
	Replaced []string  `json:"replaced"`
}

func main() {
	root := flag.String("root", ".", "repository root")
	force := flag.Bool("force", false, "redo everything even if up to date")
	flag.Parse()
	if err := run(*root, *force); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
}

func run(root string, force bool) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	tree, err := findTorch()
	if err != nil {
		return err
	}
	if tree.System {
		if err := chooseBLAS(); err != nil {
			return err
		}
	}
	if err := distConfig(root, tree); err != nil {
		return err
	}
	dst := filepath.Join(root, "third_party", "gotch")
	stampPath := filepath.Join(dst, ".rl-setup.json")
	// The revision covers rl_extra.cpp too: editing it redoes the setup.
	want := stamp{Revision: setupRevision + "-" + hashBytes(rlExtra), Gotch: gotchVersion, Torch: tree}
	if !force {
		if b, err := os.ReadFile(stampPath); err == nil {
			var have stamp
			if json.Unmarshal(b, &have) == nil && have.Revision == want.Revision &&
				have.Gotch == want.Gotch && sameTree(have.Torch, want.Torch) &&
				fileExists(filepath.Join(root, "go.work")) {
				fmt.Printf("setup: up to date (gotch %s, libtorch %s at %s, %d wrappers replaced)\n",
					gotchVersion, tree.Version, tree.LibDir, len(have.Replaced))
				return nil
			}
		}
	}
	src, err := gotchSource(root)
	if err != nil {
		return err
	}
	fmt.Printf("setup: copying gotch %s from %s to %s\n", gotchVersion, src, dst)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := copyTree(src, dst); err != nil {
		return fmt.Errorf("copy gotch: %w", err)
	}
	lib := filepath.Join(dst, "libtch")
	if err := os.WriteFile(filepath.Join(lib, "lib.go"), []byte(libGo(tree)), 0o644); err != nil {
		return err
	}
	replaced, err := patchGenerated(lib, tree)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(lib, "rl_extra.cpp"), rlExtra, 0o644); err != nil {
		return err
	}
	want.Replaced = replaced
	if err := writeGoWork(root); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(want, "", "  ")
	if err := os.WriteFile(stampPath, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("setup: done: gotch %s against libtorch %s (%s); %d generated wrappers replaced\n",
		gotchVersion, tree.Version, tree.LibDir, len(replaced))
	return nil
}

func sameTree(a, b torchTree) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func isRoot() bool { return os.Geteuid() == 0 }

// findTorch locates the libtorch to build against, installing Debian's when
// no LIBTORCH is given and it is missing.
func findTorch() (torchTree, error) {
	if dir := os.Getenv("LIBTORCH"); dir != "" {
		dir, _ = filepath.Abs(dir)
		t := torchTree{
			Include: []string{filepath.Join(dir, "include"), filepath.Join(dir, "include", "torch", "csrc", "api", "include")},
			LibDir:  filepath.Join(dir, "lib"),
		}
		if !fileExists(filepath.Join(dir, "include", "torch", "csrc", "api", "include", "torch", "version.h")) {
			return t, fmt.Errorf("LIBTORCH=%s: no include/torch/csrc/api/include/torch/version.h: not a libtorch tree (want the folder holding include/ and lib/, e.g. a pytorch.org libtorch download or site-packages/torch)", dir)
		}
		t.Version = torchVersion(t.Include[1])
		t.ABI = cxxABI(dir)
		t.CUDA = fileExists(filepath.Join(t.LibDir, "libtorch_cuda.so"))
		if t.CUDA {
			for _, c := range []string{os.Getenv("CUDA_HOME"), "/usr/local/cuda"} {
				if c != "" && fileExists(c) {
					t.CUDAHome = c
					break
				}
			}
			t.CUDAInclude, t.CUDALibs = cudaDirs(dir, t.CUDAHome)
		}
		return t, nil
	}
	t := torchTree{
		Include: []string{"/usr/include", "/usr/include/torch/csrc/api/include"},
		LibDir:  libDir(),
		System:  true,
	}
	if !fileExists("/usr/include/torch/csrc/api/include/torch/version.h") || !fileExists(filepath.Join(t.LibDir, "libtorch.so")) {
		if err := aptInstall(aptPackages...); err != nil {
			return t, err
		}
	}
	if !fileExists("/usr/include/gloo/algorithm.h") {
		if err := aptInstall("libgloo-dev"); err != nil {
			return t, err
		}
	}
	t.Version = torchVersion(t.Include[1])
	return t, nil
}

// distConfig points shared/dist's cgo include paths at the libtorch in
// use: third_party/torch links to a LIBTORCH tree (Debian's headers are
// found in /usr/include without it), and third_party/rl-dist/rl_dist_config.h
// turns NCCL on for a CUDA libtorch. Both are cheap and redone every run.
func distConfig(root string, t torchTree) error {
	tp := filepath.Join(root, "third_party")
	if err := os.MkdirAll(filepath.Join(tp, "rl-dist"), 0o755); err != nil {
		return err
	}
	link := filepath.Join(tp, "torch")
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dist: %w", err)
	}
	if !t.System {
		if err := os.Symlink(filepath.Dir(t.Include[0]), link); err != nil {
			return fmt.Errorf("dist: %w", err)
		}
	}
	if err := headerTree(filepath.Join(tp, "rl-dist", "cuda-include"), t.CUDAInclude); err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	return os.WriteFile(filepath.Join(tp, "rl-dist", "rl_dist_config.h"), []byte(distConfigHeader(t)), 0o644)
}

// distConfigHeader is rl_dist_config.h, the first thing dist.cpp
// includes: the libtorch's C++ ABI (before any standard header, as
// TORCH_CXX_FLAGS would set it) and, for a CUDA libtorch, NCCL on.
func distConfigHeader(t torchTree) string {
	cfg := "// Written by tools/setup; git-ignored. shared/dist's build switches.\n"
	if t.ABI != "" {
		cfg += "#define _GLIBCXX_USE_CXX11_ABI " + t.ABI + "\n"
	}
	if t.CUDA {
		cfg += "#define RL_NCCL 1\n#define USE_C10D_NCCL 1\n"
	}
	return cfg
}

// headerTree makes dst a folder of symbolic links to every entry of the
// folders in srcs (the first folder holding a name wins), so that one -I
// in shared/dist's cgo flags reaches headers spread over several folders
// (a pip torch's nvidia/cuda_runtime/include, nvidia/nccl/include, ...).
// With no srcs dst is removed.
func headerTree(dst string, srcs []string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if len(srcs) == 0 {
		return nil
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, src := range srcs {
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			link := filepath.Join(dst, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue
			}
			if err := os.Symlink(filepath.Join(src, e.Name()), link); err != nil {
				return err
			}
		}
	}
	return nil
}

var abiFlag = regexp.MustCompile(`_GLIBCXX_USE_CXX11_ABI=([01])`)

// cxxABI reads the libtorch's _GLIBCXX_USE_CXX11_ABI from its CMake config
// (TORCH_CXX_FLAGS), "" when it does not say: code that passes std::string
// or std::vector across libtorch's API must be compiled with the same ABI.
func cxxABI(dir string) string {
	for _, p := range []string{filepath.Join(dir, "share", "cmake", "Torch", "TorchConfig.cmake"),
		filepath.Join(dir, "lib", "cmake", "Torch", "TorchConfig.cmake"), filepath.Join(dir, "cmake", "Torch", "TorchConfig.cmake")} {
		if b, err := os.ReadFile(p); err == nil {
			if m := abiFlag.FindSubmatch(b); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

// cudaDirs finds the CUDA runtime and NCCL headers and libraries a CUDA
// libtorch at dir needs beside its own: those of the nvidia-* wheels of a
// pip torch (site-packages/nvidia/*/include and lib, next to dir), then
// CUDA_HOME's include and lib64.
func cudaDirs(dir, cudaHome string) (include, libs []string) {
	nv := filepath.Join(filepath.Dir(dir), "nvidia")
	if ents, err := os.ReadDir(nv); err == nil {
		for _, e := range ents {
			if fileExists(filepath.Join(nv, e.Name(), "include")) {
				include = append(include, filepath.Join(nv, e.Name(), "include"))
			}
			if fileExists(filepath.Join(nv, e.Name(), "lib")) {
				libs = append(libs, filepath.Join(nv, e.Name(), "lib"))
			}
		}
	}
	if cudaHome != "" {
		if fileExists(filepath.Join(cudaHome, "include")) {
			include = append(include, filepath.Join(cudaHome, "include"))
		}
		if fileExists(filepath.Join(cudaHome, "lib64")) {
			libs = append(libs, filepath.Join(cudaHome, "lib64"))
		}
	}
	return include, libs
}

// cudartLib is the linker argument for the CUDA runtime in libs: -lcudart
// where a libcudart.so exists, else the versioned file the nvidia wheels
// ship (-l:libcudart.so.12), and the folder it is in; "" when none is found
// (libtorch_cuda then brings it in itself).
func cudartLib(libs []string) (arg, dir string) {
	for _, d := range libs {
		if fileExists(filepath.Join(d, "libcudart.so")) {
			return "-lcudart", d
		}
		if m, _ := filepath.Glob(filepath.Join(d, "libcudart.so.[0-9]*")); len(m) > 0 {
			sort.Strings(m)
			return "-l:" + filepath.Base(m[0]), d
		}
	}
	return "", ""
}

func libDir() string {
	arch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	return filepath.Join("/usr/lib", arch)
}

func torchVersion(apiInclude string) string {
	b, err := os.ReadFile(filepath.Join(apiInclude, "torch", "version.h"))
	if err != nil {
		return "unknown"
	}
	get := func(name string) string {
		m := regexp.MustCompile(`#define TORCH_VERSION_` + name + ` (\d+)`).FindSubmatch(b)
		if m == nil {
			return "?"
		}
		return string(m[1])
	}
	return get("MAJOR") + "." + get("MINOR") + "." + get("PATCH")
}

func aptInstall(pkgs ...string) error {
	cmdline := "apt-get update && apt-get install -y " + strings.Join(pkgs, " ")
	if !isRoot() {
		return fmt.Errorf("missing Debian packages %s; run as root:\n\n    %s\n", strings.Join(pkgs, ", "), cmdline)
	}
	// apt's hundreds of lines go to a log file; the screen gets one line
	// per step, and the log's tail when a step fails.
	logPath := filepath.Join(os.TempDir(), "rl-setup-apt.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("setup: apt log %s: %w", logPath, err)
	}
	defer logf.Close()
	fmt.Printf("setup: installing %s with apt (a few minutes, once; log: %s)\n", strings.Join(pkgs, " "), logPath)
	steps := []struct {
		what string
		args []string
	}{
		{"updating the package lists", []string{"update", "-qq"}},
		{"installing " + strings.Join(pkgs, ", "), append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)},
	}
	for _, st := range steps {
		began := time.Now()
		fmt.Printf("setup:   %s...", st.what)
		cmd := exec.Command("apt-get", st.args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			fmt.Println(" failed")
			logf.Sync()
			fmt.Fprintf(os.Stderr, "setup: the last lines of %s:\n%s\n", logPath, tailLines(logPath, 20))
			return fmt.Errorf("apt-get %s: %w (full log: %s)", st.args[0], err, logPath)
		}
		fmt.Printf(" done (%s)\n", time.Since(began).Round(time.Second))
	}
	return nil
}

// tailLines returns the last n lines of a file.
func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// chooseBLAS makes sure the OpenMP build of OpenBLAS backs libblas.so.3.
func chooseBLAS() error {
	dir := filepath.Join(libDir(), "openblas-openmp")
	if !fileExists(filepath.Join(dir, "libblas.so.3")) {
		if err := aptInstall("libopenblas0-openmp"); err != nil {
			return err
		}
	}
	cur, _ := filepath.EvalSymlinks(filepath.Join(libDir(), "libblas.so.3"))
	if strings.Contains(cur, "openblas-openmp") {
		return nil
	}
	if !isRoot() {
		fmt.Printf("setup: warning: libblas.so.3 is %s, not OpenBLAS-openmp; as root run:\n    update-alternatives --set libblas.so.3-%[2]s %[3]s/libblas.so.3\n    update-alternatives --set liblapack.so.3-%[2]s %[3]s/liblapack.so.3\n", cur, filepath.Base(libDir()), dir)
		return nil
	}
	for _, name := range []string{"libblas.so.3", "liblapack.so.3"} {
		cmd := exec.Command("update-alternatives", "--set", name+"-"+filepath.Base(libDir()), filepath.Join(dir, name))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("select OpenBLAS-openmp for %s: %w", name, err)
		}
	}
	return nil
}

func gotchSource(root string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", gotchModule+"@"+gotchVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w\n%s", gotchModule, gotchVersion, err, out)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", gotchModule, gotchVersion, m.Error)
	}
	return m.Dir, nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func libGo(t torchTree) string {
	var ld, cxx []string
	ld = append(ld, "-lstdc++", "-L"+t.LibDir, "-Wl,-rpath,"+t.LibDir, "-ltorch", "-lc10", "-ltorch_cpu")
	if t.CUDA {
		ld = append(ld, "-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed")
		if arg, dir := cudartLib(t.CUDALibs); arg != "" {
			ld = append(ld, "-L"+dir, "-Wl,-rpath,"+dir, arg)
		}
	}
	cxx = append(cxx, "-std=c++17", "-I${SRCDIR}", "-O2")
	if t.ABI != "" {
		cxx = append(cxx, "-D_GLIBCXX_USE_CXX11_ABI="+t.ABI)
	}
	for _, inc := range t.Include {
		cxx = append(cxx, "-I"+inc)
	}
	var b strings.Builder
	b.WriteString("// Code generated by rl's tools/setup for libtorch " + t.Version + "; DO NOT EDIT.\n\npackage libtch\n\n")
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(ld, " "))
	b.WriteString("// #cgo CFLAGS: -I${SRCDIR} -O2 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-unused-function\n")
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: %s -Wno-deprecated-declarations -Wno-unused-variable\n", strings.Join(cxx, " "))
	b.WriteString("import \"C\"\n")
	return b.String()
}

// patchGenerated compiles the generated wrapper file (and torch_api.cpp,
// which includes it) against the libtorch in use and replaces every
// binding that fails to compile by a body that sets torch_last_err, which
// the Go side turns into an error. It repeats until both compile, and
// returns the replaced function names.
func patchGenerated(lib string, t torchTree) ([]string, error) {
	var replaced []string
	for round := 1; round <= 6; round++ {
		start := time.Now()
		fmt.Printf("setup: compiling %s against libtorch %s (round %d, about a minute)...\n", generatedFile, t.Version, round)
		badFiles, log, err := compileErrors(lib, t)
		if err != nil {
			return nil, err
		}
		nbad := 0
		for _, b := range badFiles {
			nbad += len(b)
		}
		fmt.Printf("setup:   %d lines fail to compile (%.0fs)\n", nbad, time.Since(start).Seconds())
		if nbad == 0 {
			sort.Strings(replaced)
			if len(replaced) > 0 {
				fmt.Printf("setup: replaced %d wrappers that libtorch %s lacks: %s\n", len(replaced), t.Version, strings.Join(replaced, " "))
			}
			return replaced, nil
		}
		for _, file := range sortedFiles(badFiles) {
			path := filepath.Join(lib, file)
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			out, names, err := stubFunctions(string(src), badFiles[file], t.Version)
			if err != nil {
				return nil, fmt.Errorf("%s: %w\ncompiler output:\n%s", file, err, tail(log, 4000))
			}
			if len(names) == 0 {
				return nil, fmt.Errorf("%s does not compile against libtorch %s, and not inside a binding function (see the version range in tools/setup's doc):\n%s", file, t.Version, tail(log, 4000))
			}
			replaced = append(replaced, names...)
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("%s still does not compile after 6 rounds", generatedFile)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

var errLine = regexp.MustCompile(`(` + regexp.QuoteMeta(generatedFile) + `|torch_api\.cpp):(\d+):\d+: error`)

func sortedFiles(m map[string]map[int]bool) []string {
	var out []string
	for f, lines := range m {
		if len(lines) > 0 {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// compileErrors returns, per file (the generated wrappers, torch_api.cpp),
// the line numbers that have errors.
func compileErrors(lib string, t torchTree) (map[string]map[int]bool, string, error) {
	args := []string{"-fsyntax-only", "-std=c++17", "-fmax-errors=0", "-w", "-I", lib}
	if t.ABI != "" {
		args = append(args, "-D_GLIBCXX_USE_CXX11_ABI="+t.ABI)
	}
	for _, inc := range t.Include {
		args = append(args, "-I"+inc)
	}
	args = append(args, filepath.Join(lib, "torch_api.cpp"))
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	cmd := exec.Command(cxx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	bad := parseErrors(out.Bytes())
	if runErr != nil && len(bad) == 0 {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) {
			return nil, "", fmt.Errorf("run %s: %w", cxx, runErr)
		}
		return nil, "", fmt.Errorf("torch_api.cpp does not compile against libtorch %s outside the bindings setup can replace (see the version range in tools/setup's doc):\n%s", t.Version, tail(out.String(), 4000))
	}
	return bad, out.String(), nil
}

// parseErrors reads g++'s "file:line:col: error" lines for the two files
// setup may patch.
func parseErrors(out []byte) map[string]map[int]bool {
	bad := map[string]map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if m := errLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			if bad[m[1]] == nil {
				bad[m[1]] = map[int]bool{}
			}
			bad[m[1]][n] = true
		}
	}
	return bad
}

// funcStart is the first line of a binding: gotch's generated atg_* and
// torch_api.cpp's at_*, ato_*, atm_*, ati_*, ats_*, atc_*, ...
var funcStart = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_ ]*?\**)\s*\b(at[a-z]?_[A-Za-z0-9_]+)\(`)

// stubFunctions replaces the bodies of the functions containing the given
// (1-based) lines.
func stubFunctions(src string, badLines map[int]bool, version string) (string, []string, error) {
	lines := strings.Split(src, "\n")
	var out []string
	var names []string
	for i := 0; i < len(lines); i++ {
		m := funcStart.FindStringSubmatch(lines[i])
		if m == nil {
			out = append(out, lines[i])
			continue
		}
		end := i
		for end < len(lines) && lines[end] != "}" {
			end++
		}
		if end == len(lines) {
			return "", nil, fmt.Errorf("function %s at line %d has no closing brace", m[2], i+1)
		}
		hit := false
		for l := i; l <= end; l++ {
			if badLines[l+1] {
				hit = true
				break
			}
		}
		if !hit {
			out = append(out, lines[i:end+1]...)
			i = end
			continue
		}
		// Keep the signature (up to the opening brace), replace the body.
		sig := i
		for sig <= end && !strings.HasSuffix(strings.TrimSpace(lines[sig]), "{") {
			sig++
		}
		out = append(out, lines[i:sig+1]...)
		ret := strings.TrimSpace(m[1])
		msg := fmt.Sprintf("%s: not available in libtorch %s (gotch %s wraps libtorch 2.1; replaced by rl setup)", m[2], version, gotchVersion)
		out = append(out, fmt.Sprintf("  torch_last_err = strdup(%q);", msg))
		if ret != "void" {
			out = append(out, "  return {};")
		}
		out = append(out, "}")
		names = append(names, m[2])
		i = end
	}
	return strings.Join(out, "\n"), names, nil
}

func writeGoWork(root string) error {
	goVersion := strings.TrimPrefix(runtime.Version(), "go")
	if i := strings.IndexAny(goVersion, " -"); i > 0 {
		goVersion = goVersion[:i]
	}
	content := fmt.Sprintf("// Written by tools/setup; git-ignored. Wires in the patched gotch copy.\ngo %s\n\nuse .\n\nreplace %s %s => ./third_party/gotch\n", goVersion, gotchModule, gotchVersion)
	return os.WriteFile(filepath.Join(root, "go.work"), []byte(content), 0o644)
}

func hashBytes(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:8]) }

var _ = hashBytes
