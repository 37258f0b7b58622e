// The C side of package dist: a c10d process group (TCPStore + gloo, or
// NCCL when built with RL_NCCL against a CUDA libtorch) behind a C API
// that cgo can call. Every function catches C++ exceptions and returns
// their message through *err (malloc'd; the Go side frees it).
// tools/setup writes rl_dist_config.h (RL_NCCL for a CUDA libtorch).
#if __has_include(<rl_dist_config.h>)
#include <rl_dist_config.h>
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef RL_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <ATen/ATen.h>
#include <torch/version.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "dist.h"

namespace {

// PG is what a gloo or NCCL group is: libtorch 2.0 split c10d's
// ProcessGroup into a dispatcher over Backends, and ProcessGroupGloo and
// ProcessGroupNCCL became Backends (with the same collectives); in 1.13
// they are ProcessGroups.
#if TORCH_VERSION_MAJOR >= 2
using PG = c10d::Backend;
#else
using PG = c10d::ProcessGroup;
#endif

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PG> pg;
  int world = 1;
  // device is where the group's own tensors (all-gather's) live: the CPU
  // for gloo, this rank's CUDA device for NCCL, which takes CUDA tensors only.
  at::Device device = at::Device(at::kCPU);
};

void set_err(char **err, const char *msg) {
  if (err != nullptr) *err = strdup(msg);
}

#define GUARD(body)                                                            \
  try {                                                                        \
    body                                                                       \
  } catch (const std::exception &e) {                                          \
    set_err(err, e.what());                                                    \
  } catch (...) {                                                              \
    set_err(err, "unknown C++ exception");                                     \
  }

// The device gloo binds: the interface in GLOO_SOCKET_IFNAME (as PyTorch
// reads it), loopback when the master is on this host's loopback, else
// the address this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string &addr) {
  if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != 0)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (addr == "127.0.0.1" || addr == "localhost" || addr == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Buckets split tensors into runs of one dtype and device of at most
// bucket_bytes each (a single larger tensor makes its own bucket), in
// order, as DDP's reducer buckets gradients (bucket_cap_mb).
std::vector<std::vector<at::Tensor>> buckets(const std::vector<at::Tensor> &ts, int64_t bucket_bytes) {
  std::vector<std::vector<at::Tensor>> out;
  int64_t bytes = 0;
  for (const auto &t : ts) {
    int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    bool fresh = out.empty() || bytes + b > bucket_bytes || out.back()[0].scalar_type() != t.scalar_type() ||
                 out.back()[0].device() != t.device();
    if (fresh) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(t);
    bytes += b;
  }
  return out;
}

// run_flat applies a collective to each bucket as one flat tensor, then
// copies the results back into the bucket's tensors.
template <typename F>
void run_flat(const std::vector<at::Tensor> &ts, int64_t bucket_bytes, F collective) {
  for (auto &bucket : buckets(ts, bucket_bytes)) {
    std::vector<at::Tensor> flat_parts;
    flat_parts.reserve(bucket.size());
    for (auto &t : bucket) flat_parts.push_back(t.reshape({-1}));
    std::vector<at::Tensor> flat{bucket.size() == 1 ? flat_parts[0].contiguous().clone() : at::cat(flat_parts)};
    collective(flat);
    int64_t off = 0;
    for (auto &t : bucket) {
      int64_t n = t.numel();
      t.copy_(flat[0].narrow(0, off, n).view(t.sizes()));
      off += n;
    }
  }
}

std::vector<at::Tensor> gather_tensors(void **tensors, int n, int grads) {
  std::vector<at::Tensor> ts;
  ts.reserve(n);
  for (int i = 0; i < n; i++) {
    at::Tensor &t = *static_cast<at::Tensor *>(tensors[i]);
    if (grads) {
      // A parameter without a gradient on this rank (it took no part in
      // the loss) contributes zeros, as DDP's find_unused_parameters does.
      at::Tensor &g = t.mutable_grad();
      if (!g.defined()) g = at::zeros_like(t);
      ts.push_back(g);
    } else {
      ts.push_back(t);
    }
  }
  return ts;
}

}  // namespace

extern "C" {

rl_group rl_dist_init(const char *addr, int port, int rank, int world, int is_server, const char *prefix,
                      int64_t timeout_ms, int64_t join_timeout_ms, int nccl, int device, char **err) {
  GUARD(
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = is_server != 0;
    so.numWorkers = is_server ? c10::optional<std::size_t>(world) : c10::nullopt;
    so.waitWorkers = false;
    so.timeout = std::chrono::milliseconds(join_timeout_ms);  // the rendezvous
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(addr), so);
    auto g = new Group();
    g->world = world;
    g->store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    if (nccl) {
#ifdef RL_NCCL
      // Blocking wait: a collective's wait() returns when the GPU has run
      // it, and throws once the group's timeout passes (a dead or stuck
      // peer), so the caller's error names the rank and the operation as
      // gloo's does, instead of NCCL's watchdog aborting the process.
      // Both spellings: TORCH_NCCL_BLOCKING_WAIT (2.2+), NCCL_BLOCKING_WAIT.
      // A value the user set is kept.
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
      g->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, world, opts);
#else
      delete g;
      set_err(err, "this rl was built without NCCL (a CPU libtorch): run on CPU tensors (gloo), or rebuild rl "
                   "against a CUDA libtorch with CGO_CXXFLAGS=\"-DRL_NCCL -DUSE_C10D_NCCL\"");
      return nullptr;
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices.push_back(gloo_device(addr));
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, opts);
    }
    return g;
  )
  return nullptr;
}

int rl_dist_allreduce(rl_group h, void **tensors, int n, int avg, int grads, int64_t bucket_bytes, char **err) {
  GUARD(
    auto g = static_cast<Group *>(h);
    auto ts = gather_tensors(tensors, n, grads);
    run_flat(ts, bucket_bytes, [&](std::vector<at::Tensor> &flat) {
      g->pg->allreduce(flat)->wait();
      if (avg) flat[0].div_(g->world);
    });
    return 0;
  )
  return -1;
}

int rl_dist_broadcast(rl_group h, void **tensors, int n, int root, int64_t bucket_bytes, char **err) {
  GUARD(
    auto g = static_cast<Group *>(h);
    auto ts = gather_tensors(tensors, n, 0);
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    at::NoGradGuard no_grad;  // parameters are leaves that require grad
    run_flat(ts, bucket_bytes, [&](std::vector<at::Tensor> &flat) { g->pg->broadcast(flat, opts)->wait(); });
    return 0;
  )
  return -1;
}

int rl_dist_allgather_f64(rl_group h, const double *in, int n, double *out, char **err) {
  GUARD(
    auto g = static_cast<Group *>(h);
    auto on = at::TensorOptions().dtype(at::kDouble).device(g->device);
    std::vector<at::Tensor> input{at::from_blob(const_cast<double *>(in), {n}, at::kDouble).to(on, false, true)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < g->world; r++) output[0].push_back(at::empty({n}, on));
    g->pg->allgather(output, input)->wait();
    for (int r = 0; r < g->world; r++) {
      at::Tensor host = output[0][r].to(at::kCPU).contiguous();
      std::memcpy(out + r * n, host.data_ptr<double>(), n * sizeof(double));
    }
    return 0;
  )
  return -1;
}

int rl_dist_barrier(rl_group h, char **err) {
  GUARD(
    static_cast<Group *>(h)->pg->barrier()->wait();
    return 0;
  )
  return -1;
}

void rl_dist_destroy(rl_group h) {
  char **err = nullptr;
  GUARD(delete static_cast<Group *>(h);)
}

int rl_dist_nccl_built() {
#ifdef RL_NCCL
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
