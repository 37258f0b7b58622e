// Package dist is data parallelism on PyTorch's c10d: a process group
// (a TCPStore for the rendezvous, gloo for CPU tensors, NCCL for CUDA
// ones) opened from torchrun's environment, and the collectives the
// training loop needs: bucketed all-reduce of gradients, broadcast of
// parameters, all-gather of scalars, barrier.
//
// The environment contract is torchrun's (torch/distributed/run.py,
// local_elastic_agent.py): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; with TORCHELASTIC_USE_AGENT_STORE=True every
// rank is a client of the agent's TCPStore, else rank 0 hosts it
// (torch/distributed/rendezvous.py _create_c10d_store). `rl launch` sets
// the same variables.
//
// Every collective must be issued by every rank in the same order. One
// that fails (a peer died) or does not finish within the group's timeout
// returns an error naming the rank and the operation.
package dist

/*
#cgo CXXFLAGS: -std=c++17 -O2 -DUSE_C10D_GLOO -I${SRCDIR}/../../third_party/rl-dist -I${SRCDIR}/../../third_party/rl-dist/cuda-include -I${SRCDIR}/../../third_party/torch/include -I${SRCDIR}/../../third_party/torch/include/torch/csrc/api/include -I/usr/include/torch/csrc/api/include -Wno-deprecated-declarations -Wno-unused-variable
#include <stdlib.h>
#include "dist.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/rlsuite/rl/shared/tensor"
)

// DefaultTimeout is how long a collective may wait for its peers: 1800 s,
// PyTorch's default process-group timeout and HF's ddp_timeout.
const DefaultTimeout = 30 * time.Minute

// BucketBytes is the all-reduce bucket size, DDP's bucket_cap_mb (25 MiB).
const BucketBytes = 25 << 20

// Env is torchrun's environment for one worker.
type Env struct {
	Rank, WorldSize           int
	LocalRank, LocalWorldSize int
	MasterAddr                string
	MasterPort                int
	// AgentStore is TORCHELASTIC_USE_AGENT_STORE=True: the launcher's
	// agent hosts the TCPStore and every rank is its client.
	AgentStore   bool
	RestartCount int // TORCHELASTIC_RESTART_COUNT
}

// ReadEnv reads torchrun's variables. Without WORLD_SIZE (or with 1) it
// returns a world of one. A malformed or inconsistent value is an error
// naming the variable.
func ReadEnv() (Env, error) {
	e := Env{WorldSize: 1, LocalWorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: 29500}
	geti := func(name string, dst *int) error {
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			return nil
		}
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 {
			return fmt.Errorf("dist: environment variable %s=%q is not a non-negative integer", name, s)
		}
		*dst = v
		return nil
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"WORLD_SIZE", &e.WorldSize}, {"RANK", &e.Rank}, {"LOCAL_RANK", &e.LocalRank},
		{"LOCAL_WORLD_SIZE", &e.LocalWorldSize}, {"MASTER_PORT", &e.MasterPort}, {"TORCHELASTIC_RESTART_COUNT", &e.RestartCount}} {
		if err := geti(p.name, p.dst); err != nil {
			return Env{}, err
		}
	}
	if e.WorldSize <= 1 {
		return Env{WorldSize: 1, LocalWorldSize: 1}, nil
	}
	if _, ok := os.LookupEnv("RANK"); !ok {
		return Env{}, fmt.Errorf("dist: WORLD_SIZE=%d but RANK is not set: start the workers with rl launch or torchrun", e.WorldSize)
	}
	if e.Rank >= e.WorldSize {
		return Env{}, fmt.Errorf("dist: RANK=%d is not below WORLD_SIZE=%d", e.Rank, e.WorldSize)
	}
	if e.LocalRank >= max(e.LocalWorldSize, 1) {
		return Env{}, fmt.Errorf("dist: LOCAL_RANK=%d is not below LOCAL_WORLD_SIZE=%d", e.LocalRank, e.LocalWorldSize)
	}
	if e.MasterPort == 0 || e.MasterPort > 65535 {
		return Env{}, fmt.Errorf("dist: MASTER_PORT=%d is not a TCP port (1-65535)", e.MasterPort)
	}
	if a := os.Getenv("MASTER_ADDR"); a != "" {
		e.MasterAddr = a
	}
	e.AgentStore = os.Getenv("TORCHELASTIC_USE_AGENT_STORE") == "True"
	return e, nil
}

// Group is an open process group. Its methods must be called from one
// goroutine, in the same order on every rank.
type Group struct {
	Env
	h       C.rl_group
	Timeout time.Duration
}

// Options are Open's settings; the zero value works.
type Options struct {
	// Timeout limits each collective (DefaultTimeout when 0).
	Timeout time.Duration
	// JoinTimeout limits the rendezvous: waiting for the other ranks to
	// start and connect (Timeout when 0).
	JoinTimeout time.Duration
	// NCCL selects NCCL (CUDA tensors: the model and batches on Device)
	// instead of gloo (CPU tensors); Device is this rank's CUDA device
	// index for it (LOCAL_RANK under rl launch and torchrun). With NCCL a
	// collective that exceeds Timeout fails with the rank and operation
	// named, as with gloo (NCCL's blocking wait).
	NCCL   bool
	Device int
}

// Open joins the process group of env's world. A world of one is a group
// too (rank 0 hosts the store and is its only member): the trainers open
// none for it, but `go tool task gpu-check` checks NCCL with one.
func Open(env Env, o Options) (*Group, error) {
	if env.WorldSize < 1 {
		return nil, errors.New("dist: a process group needs WORLD_SIZE >= 1")
	}
	if o.NCCL && !NCCLBuilt() {
		return nil, fmt.Errorf("dist: rank %d of %d: NCCL (CUDA tensors) asked for, but this rl was built against a CPU libtorch: "+
			"rebuild against a CUDA libtorch (LIBTORCH=... go run ./tools/setup, see the README's GPU section) or train on --device cpu (gloo)", env.Rank, env.WorldSize)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	join := o.JoinTimeout
	if join <= 0 {
		join = timeout
	}
	// Keys of our own under the attempt's prefix: a restarted world on the
	// agent's store must not read the last attempt's keys.
	prefix := fmt.Sprintf("/worker/attempt_%d/rl", env.RestartCount)
	server := !env.AgentStore && env.Rank == 0
	caddr, cprefix := C.CString(env.MasterAddr), C.CString(prefix)
	defer C.free(unsafe.Pointer(caddr))
	defer C.free(unsafe.Pointer(cprefix))
	var cerr *C.char
	h := C.rl_dist_init(caddr, C.int(env.MasterPort), C.int(env.Rank), C.int(env.WorldSize), cbool(server),
		cprefix, C.int64_t(timeout.Milliseconds()), C.int64_t(join.Milliseconds()), cbool(o.NCCL), C.int(o.Device), &cerr)
	if h == nil {
		return nil, fmt.Errorf("dist: rank %d of %d: join the process group at %s:%d: %s", env.Rank, env.WorldSize,
			env.MasterAddr, env.MasterPort, takeErr(cerr))
	}
	return &Group{Env: env, h: h, Timeout: timeout}, nil
}

// NCCLBuilt reports whether this rl was built with NCCL (a CUDA libtorch).
func NCCLBuilt() bool { return C.rl_dist_nccl_built() == 1 }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func takeErr(e *C.char) string {
	if e == nil {
		return "failed"
	}
	defer C.free(unsafe.Pointer(e))
	return firstLines(C.GoString(e))
}

// firstLines keeps a C++ message's first lines: c10 appends a stack
// trace that says nothing to a user.
func firstLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "Exception raised from") || strings.HasPrefix(l, "frame #") {
			break
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " ")
}

func (g *Group) fail(op, msg string) error {
	hint := ""
	if strings.Contains(msg, "imed out") || strings.Contains(msg, "imeout") {
		hint = fmt.Sprintf(" (timeout %s: a rank is stuck or did not issue the same collective; raise --ddp-timeout for slow steps)", g.Timeout)
	} else if strings.Contains(msg, "onnection") || strings.Contains(msg, "peer") {
		hint = " (a peer rank exited: see its output)"
	}
	return fmt.Errorf("dist: rank %d of %d: %s: %s%s", g.Rank, g.WorldSize, op, msg, hint)
}

func handles(ts []*tensor.Tensor) (unsafe.Pointer, func()) {
	n := max(len(ts), 1)
	p := C.malloc(C.size_t(n * int(unsafe.Sizeof(unsafe.Pointer(nil)))))
	arr := unsafe.Slice((*unsafe.Pointer)(p), n)
	for i, t := range ts {
		arr[i] = t.Handle()
	}
	return p, func() { C.free(p) }
}

// AllReduce sums ts across ranks in place (average divides by the world
// size), flattened into buckets of BucketBytes per dtype as DDP does.
func (g *Group) AllReduce(ts []*tensor.Tensor, average bool) error {
	return g.allReduce("all_reduce", ts, average, false)
}

// AllReduceGrads averages the gradients of params across ranks in place;
// a parameter without a gradient on this rank contributes zeros (and gets
// the averaged gradient).
func (g *Group) AllReduceGrads(params []*tensor.Tensor) error {
	return g.allReduce("all_reduce(gradients)", params, true, true)
}

func (g *Group) allReduce(op string, ts []*tensor.Tensor, average, grads bool) error {
	if len(ts) == 0 {
		return nil
	}
	p, free := handles(ts)
	defer free()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cerr *C.char
	if C.rl_dist_allreduce(g.h, (*unsafe.Pointer)(p), C.int(len(ts)), cbool(average), cbool(grads), BucketBytes, &cerr) != 0 {
		return g.fail(op, takeErr(cerr))
	}
	return nil
}

// Broadcast copies root's ts into every rank's ts (parameters from rank 0
// at the start of training, as DDP's constructor does).
func (g *Group) Broadcast(ts []*tensor.Tensor, root int) error {
	if len(ts) == 0 {
		return nil
	}
	p, free := handles(ts)
	defer free()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cerr *C.char
	if C.rl_dist_broadcast(g.h, (*unsafe.Pointer)(p), C.int(len(ts)), C.int(root), BucketBytes, &cerr) != 0 {
		return g.fail(fmt.Sprintf("broadcast(from rank %d)", root), takeErr(cerr))
	}
	return nil
}

// AllGather returns every rank's vals (the same length on every rank),
// indexed by rank.
func (g *Group) AllGather(vals []float64) ([][]float64, error) {
	n := len(vals)
	in := C.malloc(C.size_t(max(n, 1) * 8))
	defer C.free(in)
	out := C.malloc(C.size_t(max(n, 1) * 8 * g.WorldSize))
	defer C.free(out)
	copy(unsafe.Slice((*float64)(in), max(n, 1)), vals)
	var cerr *C.char
	if C.rl_dist_allgather_f64(g.h, (*C.double)(in), C.int(n), (*C.double)(out), &cerr) != 0 {
		return nil, g.fail("all_gather", takeErr(cerr))
	}
	flat := unsafe.Slice((*float64)(out), n*g.WorldSize)
	res := make([][]float64, g.WorldSize)
	for r := range res {
		res[r] = append([]float64(nil), flat[r*n:(r+1)*n]...)
	}
	return res, nil
}

// Mean averages vals elementwise across ranks.
func (g *Group) Mean(vals []float64) ([]float64, error) {
	all, err := g.AllGather(vals)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(vals))
	for _, v := range all {
		for i := range out {
			out[i] += v[i]
		}
	}
	for i := range out {
		out[i] /= float64(g.WorldSize)
	}
	return out, nil
}

// Sum adds vals elementwise across ranks.
func (g *Group) Sum(vals []float64) ([]float64, error) {
	all, err := g.AllGather(vals)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(vals))
	for _, v := range all { // in rank order: the same sum on every rank
		for i := range out {
			out[i] += v[i]
		}
	}
	return out, nil
}

// Barrier returns once every rank has called it.
func (g *Group) Barrier() error {
	var cerr *C.char
	if C.rl_dist_barrier(g.h, &cerr) != 0 {
		return g.fail("barrier", takeErr(cerr))
	}
	return nil
}

// Close leaves the group.
func (g *Group) Close() {
	if g != nil && g.h != nil {
		C.rl_dist_destroy(g.h)
		g.h = nil
	}
}

var (
	mu      sync.Mutex
	current *Group
)

// SetCurrent makes g the process's group (rl's main opens it once from
// the environment); Current returns it, nil in a world of one.
func SetCurrent(g *Group) { mu.Lock(); current = g; mu.Unlock() }

// Current is the group SetCurrent set, or nil (a single process).
func Current() *Group { mu.Lock(); defer mu.Unlock(); return current }

// IsMain reports whether g is rank 0 (a nil group is a world of one).
func (g *Group) IsMain() bool { return g == nil || g.Rank == 0 }

// Size is the world size (1 for a nil group).
func (g *Group) Size() int {
	if g == nil {
		return 1
	}
	return g.WorldSize
}

// RankOf is g's rank (0 for a nil group).
func (g *Group) RankOf() int {
	if g == nil {
		return 0
	}
	return g.Rank
}
