// The C API of dist.cpp (see there).
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *rl_group;

rl_group rl_dist_init(const char *addr, int port, int rank, int world, int is_server, const char *prefix,
                      int64_t timeout_ms, int64_t join_timeout_ms, int nccl, int device, char **err);
int rl_dist_allreduce(rl_group g, void **tensors, int n, int avg, int grads, int64_t bucket_bytes, char **err);
int rl_dist_broadcast(rl_group g, void **tensors, int n, int root, int64_t bucket_bytes, char **err);
int rl_dist_allgather_f64(rl_group g, const double *in, int n, double *out, char **err);
int rl_dist_barrier(rl_group g, char **err);
void rl_dist_destroy(rl_group g);
int rl_dist_nccl_built(void);

#ifdef __cplusplus
}
#endif
