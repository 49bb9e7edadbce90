// Forward selective scan for N = 8, CUDA C++. Same contract as edgemv.ops.selective_scan:
//   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,  y_t = C_t . h_t + D u_t,  y *= silu(z)
// with delta = softplus(delta + delta_bias) when asked; fp32 arithmetic for fp16/bf16/fp32 inputs; any strides.
// edgemv.ops.scan_cuda builds it with nvcc on first use and launches it through ctypes; 'auto' times it beside the
// Triton kernels (edgemv.ops.scan_tune). This file is the staged form (below) and its entry points; the rows form,
// faster where its layout conditions hold (u and y contiguous along L, aligned rows), is scan_rows.cuh.
//
// Design (each point measured on an H200 with Nsight Compute; docs/benchmarks.md, "The CUDA C++ kernel"):
//   - a block is one warp of 32 / SPLIT channels, SPLIT = 1, 2 or 4 lanes per channel, 8 / SPLIT states each: many
//     small blocks spread evenly over the SMs' schedulers, and no block barriers (__syncwarp);
//   - it walks the sequence in chunks of 32 steps. Each chunk is loaded with lanes along whichever of L or D is
//     contiguous (32-bit offsets from a warp-uniform base; when 32 does not divide L the last chunk is the full
//     window ending at L, so only L < 32 or a partial channel block checks bounds) and staged in shared memory as
//     fp32; delta's bias and softplus (a 6-instruction one for 16-bit inputs) are computed there, once per
//     element, not by every lane of a channel;
//   - the scan reads only shared memory: a pair of steps' (delta, u) and B, C per 128-bit load, the reads of the
//     next pair issued before the current pair is computed (volatile PTX, so ptxas keeps that order); each lane
//     writes its partial y, summed with D u when the chunk is stored (no shuffles);
//   - a full chunk's scan is unrolled (every shared offset is a constant); a shifted last chunk scans its new rows;
//   - the next chunk's global loads are in flight in registers while the current one is scanned.
// At 160 x 196 batch 128 fp16 on MambaVision's layout it runs in 35.6 us (SPLIT 2) against 61.0 us for the best
// Triton kernel there (the rows form: 22.8 us); its tests on the CPU compile this file with g++ through
// cpu_emulation.h.

// Params, to_f / from_f, ex2, softplus, N = 8; cpu_emulation.h under EDGEMV_CPU_EMULATION
#include "scan_common.cuh"

namespace {

constexpr int T = 32;  // steps per chunk
constexpr int WARP = 32;
// Build-time knobs (bench/scan_lean_sweep.py tries others; these defaults were the best or within 3%): the minimum blocks per SM the register allocation must
// allow for SPLIT 1, 2, 4 (a one-warp block's registers bound how many are resident; 160 x 196 batch 128 needs 5, 10
// or 20 per SM), and how many steps ahead a full chunk's scan reads its operands from shared memory.
#ifndef LEAN_MIN_BLOCKS_1
#define LEAN_MIN_BLOCKS_1 8
#endif
#ifndef LEAN_MIN_BLOCKS_2
#define LEAN_MIN_BLOCKS_2 12
#endif
#ifndef LEAN_MIN_BLOCKS_4
#define LEAN_MIN_BLOCKS_4 24
#endif
#ifndef LEAN_FAST_SOFTPLUS  // 1: the 6-instruction softplus for fp32 inputs too (fp16/bf16 always use it; tests)
#define LEAN_FAST_SOFTPLUS 0
#endif
#ifndef LEAN_PREFETCH
#define LEAN_PREFETCH 1
#endif
constexpr int kPrefetch = LEAN_PREFETCH;

// delta + bias as both forms of the scan use it: softplus'd when asked, by the 6-instruction softplus for 16-bit
// inputs (and for fp32 with LEAN_FAST_SOFTPLUS), by torch's accurate one for fp32
template <typename E, bool SOFTPLUS>
__device__ __forceinline__ float step_size(float d) {
  return SOFTPLUS ? ((sizeof(E) == 2 || LEAN_FAST_SOFTPLUS) ? softplus_fast(d) : softplus(d)) : d;
}
template <int SPLIT> constexpr int min_blocks() {
  return SPLIT == 1 ? LEAN_MIN_BLOCKS_1 : SPLIT == 2 ? LEAN_MIN_BLOCKS_2 : LEAN_MIN_BLOCKS_4;
}

// Where this lane's element i of a (CH channels, T steps) tile lies. l_major (the tensor is contiguous along L):
// lanes run along the steps, element i is channel i; otherwise lanes run along the channels (WARP / CH steps per
// instruction). Each lane holds CH * T / WARP elements.
template <int CH>
struct TileMap {
  static constexpr int PER_LANE = CH * T / WARP;
  static constexpr int ROWS = WARP / CH;  // steps one instruction covers when lanes run along the channels
  __device__ static int c(bool l_major, int lane, int i) { return l_major ? i : lane % CH; }
  __device__ static int t(bool l_major, int lane, int i) { return l_major ? lane : i * ROWS + lane / CH; }
};

// Shared-memory layouts that keep two consecutive steps side by side, so that the scan reads a pair of steps' operands
// with one 128-bit load each: (delta_t, u_t, delta_t+1, u_t+1) of a channel, and (X_t,n, X_t+1,n, X_t,n+1, X_t+1,n+1)
// of B or C. A row of the x tile holds a pair of steps of CH channels, padded by one float4 against bank conflicts.
template <int CH>
__device__ __forceinline__ int x_index(int t, int c) { return ((t >> 1) * (CH + 1) + c) * 4 + (t & 1) * 2; }
// B and C rows (a pair of steps, 2 N floats) are padded to 2 N + 4: the staging's scalar stores (lane = step) would
// otherwise hit 8-way bank conflicts; the padding keeps the rows 16-byte aligned for the scan's float4 reads.
constexpr int BC_ROW = 2 * N + 4;
__device__ __forceinline__ int bc_index(int t, int n) { return (t >> 1) * BC_ROW + n * 2 + (t & 1); }

template <typename E, int CH, bool MASKED>
__device__ __forceinline__ void load_tile(const E* __restrict__ base, int64_t sd, int64_t sl, bool l_major,
                                          int lane, int c_lim, int t_lim, E (&out)[TileMap<CH>::PER_LANE]) {
  using M = TileMap<CH>;
  // a running 32-bit offset: one add per element (i * step per element was worse in SASS)
  int off = l_major ? lane * (int)sl : (lane % CH) * (int)sd + (lane / CH) * (int)sl;
  const int step = l_major ? (int)sd : M::ROWS * (int)sl;
#pragma unroll
  for (int i = 0; i < M::PER_LANE; ++i) {
    if (MASKED) {
      const int c = M::c(l_major, lane, i), t = M::t(l_major, lane, i);
      out[i] = (c < c_lim && t < t_lim) ? base[off] : from_f<E>(0.0f);
    } else {
      out[i] = base[off];
    }
    off += step;
  }
}

template <typename E, int CH>
struct Chunk {  // this lane's share of a chunk's raw inputs, held in registers from its load to its staging
  E u[TileMap<CH>::PER_LANE], dt[TileMap<CH>::PER_LANE], b[N], c[N];
};

template <typename E, int CH, bool MASKED>
__device__ __forceinline__ void load_chunk(const Params& p, int64_t bat, int c0, int t0, int lane, bool u_l,
                                           bool dt_l, Chunk<E, CH>& k) {
  const int c_lim = (int)p.dim - c0, t_lim = (int)p.length - t0;
  const E* u = static_cast<const E*>(p.u) + bat * p.su_b + c0 * p.su_d + t0 * p.su_l;
  load_tile<E, CH, MASKED>(u, p.su_d, p.su_l, u_l, lane, c_lim, t_lim, k.u);
  const E* dt = static_cast<const E*>(p.dt) + bat * p.sdt_b + c0 * p.sdt_d + t0 * p.sdt_l;
  load_tile<E, CH, MASKED>(dt, p.sdt_d, p.sdt_l, dt_l, lane, c_lim, t_lim, k.dt);
  // B and C: lane = step (T = WARP), the 8 states in registers
  const E* B = static_cast<const E*>(p.B) + bat * p.sB_b + t0 * p.sB_l + lane * p.sB_l;
  const E* C = static_cast<const E*>(p.C) + bat * p.sC_b + t0 * p.sC_l + lane * p.sC_l;
  const bool in = !MASKED || lane < t_lim;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    k.b[n] = in ? B[n * (int)p.sB_n] : from_f<E>(0.0f);
    k.c[n] = in ? C[n * (int)p.sC_n] : from_f<E>(0.0f);
  }
}

// Staging: this lane's share of the chunk's raw delta -> delta + bias (softplus'd), once per element (not once per
// scanning lane), and u, into the x tile. L_MAJOR: lanes along the steps (element i is channel i). The index of
// element i is a lane-dependent part plus a constant (t's halves and parity split that way for every CH), so the
// unrolled stores take immediate offsets.
template <typename E, int CH, bool L_MAJOR, bool SOFTPLUS>
__device__ __forceinline__ void stage_delta(const E (&dt)[TileMap<CH>::PER_LANE], float* s_x, const float* s_bias,
                                            int lane) {
  using M = TileMap<CH>;
  const float lane_bias = s_bias[lane % CH];
#pragma unroll
  for (int i = 0; i < M::PER_LANE; ++i) {
    const float d = step_size<E, SOFTPLUS>(to_f(dt[i]) + (L_MAJOR ? s_bias[i] : lane_bias));
    s_x[x_index<CH>(M::t(L_MAJOR, lane, i), M::c(L_MAJOR, lane, i))] = d;
  }
}

template <typename E, int CH, bool L_MAJOR>
__device__ __forceinline__ void stage_u(const E (&u)[TileMap<CH>::PER_LANE], float* s_x, int lane) {
  using M = TileMap<CH>;
#pragma unroll
  for (int i = 0; i < M::PER_LANE; ++i) s_x[x_index<CH>(M::t(L_MAJOR, lane, i), M::c(L_MAJOR, lane, i)) + 1] = to_f(u[i]);
}

template <int SPLIT> __device__ __forceinline__ float sum_parts(const float* y);  // the SPLIT partial sums of y
template <> __device__ __forceinline__ float sum_parts<1>(const float* y) { return y[0]; }
template <> __device__ __forceinline__ float sum_parts<2>(const float* y) {
  const float2 v = *reinterpret_cast<const float2*>(y);
  return v.x + v.y;
}
template <> __device__ __forceinline__ float sum_parts<4>(const float* y) {
  const float4 v = *reinterpret_cast<const float4*>(y);
  return (v.x + v.y) + (v.z + v.w);
}

// Storing: y = sum of the partial sums + D u (times silu(z)), lanes along y's contiguous axis. FAST: a full chunk
// of a full channel block without z (no checks); otherwise every element is checked against c_lim and the chunk's
// rows [t_first, t_lim).
template <typename E, int SPLIT, bool L_MAJOR, bool FAST>
__device__ __forceinline__ void store_y(const Params& p, int64_t bat, int c0, int t0, int lane, int c_lim, int t_first,
                                        int t_lim, const float* s_y, const float* s_x, const float* s_D) {
  constexpr int CH = WARP / SPLIT, ROWY = WARP + SPLIT;
  using M = TileMap<CH>;
  E* yb = static_cast<E*>(p.y) + bat * p.sy_b + c0 * p.sy_d + t0 * p.sy_l;
  int go = L_MAJOR ? lane * (int)p.sy_l : (lane % CH) * (int)p.sy_d + (lane / CH) * (int)p.sy_l;
  const int gs = L_MAJOR ? (int)p.sy_d : M::ROWS * (int)p.sy_l;
  const E* zb = static_cast<const E*>(p.z) + bat * p.sz_b + c0 * p.sz_d + t0 * p.sz_l;
  int zo = L_MAJOR ? lane * (int)p.sz_l : (lane % CH) * (int)p.sz_d + (lane / CH) * (int)p.sz_l;
  const int zs = L_MAJOR ? (int)p.sz_d : M::ROWS * (int)p.sz_l;
  const float lane_d = s_D[lane % CH];
#pragma unroll
  for (int i = 0; i < M::PER_LANE; ++i) {
    const int c = M::c(L_MAJOR, lane, i), t = M::t(L_MAJOR, lane, i);
    if (FAST || (c < c_lim && t >= t_first && t < t_lim)) {
      float v = sum_parts<SPLIT>(&s_y[t * ROWY + c * SPLIT]) + (L_MAJOR ? s_D[i] : lane_d) * s_x[x_index<CH>(t, c) + 1];
      if (!FAST && p.has_z) {
        const float zz = to_f(zb[zo]);
        v *= zz / (1.0f + __expf(-zz));
      }
      yb[go] = from_f<E>(v);
    }
    go += gs;
    zo += zs;
  }
}

// The scan's shared-memory writes as volatile PTX (its reads: lds_f4 in scan_common.cuh): ptxas keeps volatile
// accesses in program order, so the reads of step t + PREFETCH stay ahead of step t's write of y.
__device__ __forceinline__ void sts_f(float* p, float v) {
#ifdef EDGEMV_CPU_EMULATION
  *p = v;
#else
  asm volatile("st.volatile.shared.f32 [%0], %1;" :: "r"((unsigned)__cvta_generic_to_shared(p)), "f"(v));
#endif
}

template <typename E, int SPLIT>
__global__ void __launch_bounds__(WARP, min_blocks<SPLIT>()) scan_n8_kernel(Params p) {
  constexpr int CH = WARP / SPLIT;  // channels per block
  constexpr int K = N / SPLIT;      // states per lane
  constexpr int ROWY = WARP + SPLIT;  // s_y row in floats, padded so the vector reads of the store are conflict-free
  static_assert(K % 2 == 0 && T % 2 == 0, "operands are read for pairs of steps and pairs of states");
  __shared__ __align__(16) float s_x[T / 2 * (CH + 1) * 4];  // the chunk's delta (biased, softplus'd) and u: x_index
  __shared__ __align__(16) float s_y[T * ROWY];   // the chunk's partial y, [t][c * SPLIT + part]
  __shared__ __align__(16) float s_B[T / 2 * BC_ROW];  // bc_index
  __shared__ __align__(16) float s_C[T / 2 * BC_ROW];
  __shared__ float s_bias[CH], s_D[CH];

  const int64_t bat = blockIdx.y;
  const int c0 = blockIdx.x * CH;
  const int lane = threadIdx.x;
  const int ch = lane / SPLIT, part = lane % SPLIT;  // the scan: this lane's channel and its share of the states
  const int cc = min(c0 + ch, (int)p.dim - 1);
  const bool full_c = c0 + CH <= p.dim;
  const int c_lim = (int)p.dim - c0;
  const bool softplus_on = p.softplus;
  const bool u_l = p.su_l == 1, dt_l = p.sdt_l == 1 || p.sdt_d != 1, y_l = p.sy_l == 1;

  if (lane < CH) {
    const int c = min(c0 + lane, (int)p.dim - 1);
    s_bias[lane] = p.has_bias ? param_f(p.bias, c, p.bias_dtype) : 0.0f;
    s_D[lane] = p.has_d ? param_f(p.D, c, p.D_dtype) : 0.0f;
  }
  float a[K], h[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    a[j] = param_f(p.A, cc * p.sA_d + (part * K + j) * p.sA_n, p.A_dtype) * 1.4426950408889634f;
    h[j] = 0.0f;
  }
  __syncwarp();

  // one step of this lane's K states; a full chunk reads a pair of steps' operands PREFETCH pairs ahead of the pair
  // it computes (without that the compiler waited on every step's loads: Nsight Compute, short scoreboard)
  struct Pair {
    float4 x;  // (delta_t, u_t, delta_t+1, u_t+1)
    float b[2][K], c[2][K];
  };
  auto read_pair = [&](int t, Pair& o) {  // t even
    o.x = lds_f4(reinterpret_cast<const float4*>(&s_x[x_index<CH>(t, ch)]));
#pragma unroll
    for (int j = 0; j < K; j += 2) {
      const float4 bv = lds_f4(reinterpret_cast<const float4*>(&s_B[bc_index(t, part * K + j)]));
      const float4 kv = lds_f4(reinterpret_cast<const float4*>(&s_C[bc_index(t, part * K + j)]));
      o.b[0][j] = bv.x; o.b[1][j] = bv.y; o.b[0][j + 1] = bv.z; o.b[1][j + 1] = bv.w;
      o.c[0][j] = kv.x; o.c[1][j] = kv.y; o.c[0][j + 1] = kv.z; o.c[1][j + 1] = kv.w;
    }
  };
  auto compute_step = [&](int t, float delta, float u, const float (&b)[K], const float (&c)[K]) {
    const float du = delta * u;
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < K; ++j) {
      h[j] = fmaf(ex2(delta * a[j]), h[j], du * b[j]);
      y = fmaf(h[j], c[j], y);
    }
    sts_f(&s_y[t * ROWY + lane], y);
  };

  // The chunks start at 0, T, 2T, ... When T does not divide L and L >= T, the last chunk starts at L - T instead
  // (a full window, so its loads need no bounds checks) and scans and stores only its rows past the previous
  // chunk's end; only L < T or a partial channel block load with checks.
  const int length = (int)p.length;
  const int n_full = length / T, rem = length % T;
  const bool shift_last = rem > 0 && n_full > 0;
  const int n_chunks = n_full + (rem > 0);
  auto start_of = [&](int kk) { return kk < n_full ? kk * T : (shift_last ? length - T : kk * T); };
  auto load = [&](int kk, Chunk<E, CH>& k) {
    const bool full_t = kk < n_full || shift_last;
    if (full_c && full_t) load_chunk<E, CH, false>(p, bat, c0, start_of(kk), lane, u_l, dt_l, k);
    else load_chunk<E, CH, true>(p, bat, c0, start_of(kk), lane, u_l, dt_l, k);
  };

  Chunk<E, CH> k;
  load(0, k);
  for (int kk = 0; kk < n_chunks; ++kk) {
    const int t0 = start_of(kk);
    const int t_first = (kk == n_full && shift_last) ? T - rem : 0;  // rows the previous chunk already did
    const int t_lim = min(length - t0, T);
    // 1. stage the chunk as fp32: delta once per element, B_t and C_t one step per lane
    if (dt_l && softplus_on) stage_delta<E, CH, true, true>(k.dt, s_x, s_bias, lane);
    else if (dt_l) stage_delta<E, CH, true, false>(k.dt, s_x, s_bias, lane);
    else if (softplus_on) stage_delta<E, CH, false, true>(k.dt, s_x, s_bias, lane);
    else stage_delta<E, CH, false, false>(k.dt, s_x, s_bias, lane);
    if (u_l) stage_u<E, CH, true>(k.u, s_x, lane);
    else stage_u<E, CH, false>(k.u, s_x, lane);
#pragma unroll
    for (int n = 0; n < N; ++n) {  // this lane's step
      s_B[bc_index(lane, n)] = to_f(k.b[n]);
      s_C[bc_index(lane, n)] = to_f(k.c[n]);
    }
    __syncwarp();
    // 2. the next chunk's loads go out now and land while this one is scanned
    if (kk + 1 < n_chunks) load(kk + 1, k);
    // 3. scan: fully unrolled over a full chunk (shared-memory offsets are constants); a last chunk's rows
    // [t_first, t_lim) in a loop (no padded steps)
    if (t_first == 0 && t_lim == T) {
      constexpr int PAIRS = T / 2;
      Pair ring[kPrefetch + 1];  // registers: every index is a constant in the unrolled loop
#pragma unroll
      for (int q = 0; q < kPrefetch; ++q) read_pair(2 * q, ring[q]);
#pragma unroll
      for (int q = 0; q < PAIRS; ++q) {
        if (q + kPrefetch < PAIRS) read_pair(2 * (q + kPrefetch), ring[(q + kPrefetch) % (kPrefetch + 1)]);
        const Pair& o = ring[q % (kPrefetch + 1)];
        compute_step(2 * q, o.x.x, o.x.y, o.b[0], o.c[0]);
        compute_step(2 * q + 1, o.x.z, o.x.w, o.b[1], o.c[1]);
      }
    } else {
#pragma unroll 1
      for (int t = t_first; t < t_lim; ++t) {
        const float2 x = *reinterpret_cast<const float2*>(&s_x[x_index<CH>(t, ch)]);
        float b[K], c[K];
#pragma unroll
        for (int j = 0; j < K; ++j) {
          b[j] = s_B[bc_index(t, part * K + j)];
          c[j] = s_C[bc_index(t, part * K + j)];
        }
        compute_step(t, x.x, x.y, b, c);
      }
    }
    __syncwarp();
    // 4. store y
    if (full_c && t_first == 0 && t_lim == T && !p.has_z) {
      if (y_l) store_y<E, SPLIT, true, true>(p, bat, c0, t0, lane, c_lim, 0, T, s_y, s_x, s_D);
      else store_y<E, SPLIT, false, true>(p, bat, c0, t0, lane, c_lim, 0, T, s_y, s_x, s_D);
    } else {
      if (y_l) store_y<E, SPLIT, true, false>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x, s_D);
      else store_y<E, SPLIT, false, false>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x, s_D);
    }
    __syncwarp();  // the next staging overwrites the shared tiles
  }
}

}  // namespace

// the rows form (u, delta and y read and written along L by each lane): scan_rows.cuh
#include "scan_rows.cuh"
// the short form (L up to 64, a block's whole sequences at once): scan_short.cuh
#include "scan_short.cuh"

namespace {
// f(std::bool_constant<A>, std::bool_constant<B>) for run-time a and b: how an entry point picks a kernel's
// compile-time flags (softplus, the layout of delta) from the parameter block
template <typename F>
void with_flags(bool a, bool b, F&& f) {
  if (a) b ? f(std::true_type{}, std::true_type{}) : f(std::true_type{}, std::false_type{});
  else b ? f(std::false_type{}, std::true_type{}) : f(std::false_type{}, std::false_type{});
}
// the grid of the one-warp-block forms: blocks of `channels` channels, one row of blocks per sequence, so at most
// kMaxBatch sequences (gridDim.y; scan_cuda.MAX_BATCH on the Python side, the plugin's enqueue here)
constexpr int kMaxBatch = 65535;
dim3 grid_of(const Params& p, int channels, int batch) {
  return dim3{(unsigned)((p.dim + channels - 1) / channels), (unsigned)batch, 1};
}
// f(E{}) for the element type of dtype code 0 fp32, 1 fp16, 2 bf16
template <typename F>
void for_dtype(int dtype, F&& f) {
  if (dtype == 0) f(float{});
  else if (dtype == 1) f(__half{});
  else f(__nv_bfloat16{});
}
}  // namespace

#ifdef EDGEMV_CPU_EMULATION
// The entry points of the CPU emulation: the CUDA ones' choices of kernel, the grid run on the CPU (blocks one after
// another, one std::thread per lane). dtype: 0 fp32, 1 fp16, 2 bf16. Returns 0, or 1 for a call the form refuses.
extern "C" int edgemv_scan_n8_cpu(const void* params, int dtype, int split, int batch) {
  const Params* p = static_cast<const Params*>(params);
  const dim3 grid = grid_of(*p, WARP / split, batch);
  for_dtype(dtype, [&](auto e) {
    using E = decltype(e);
    if (split == 1) emulate_launch(grid, WARP, [p] { scan_n8_kernel<E, 1>(*p); });
    else if (split == 2) emulate_launch(grid, WARP, [p] { scan_n8_kernel<E, 2>(*p); });
    else emulate_launch(grid, WARP, [p] { scan_n8_kernel<E, 4>(*p); });
  });
  return 0;
}

// split must be rows::SPLIT (the argument keeps the entry points' signature alike)
extern "C" int edgemv_scan_rows_cpu(const void* params, int dtype, int split, int batch) {
  const Params* p = static_cast<const Params*>(params);
  if (split != rows::SPLIT) return 1;
  for_dtype(dtype, [&](auto e) {
    using E = decltype(e);
    with_flags(p->softplus, p->sdt_l == 1, [&](auto softplus, auto dt_l) {
      constexpr bool sp = decltype(softplus)::value, along_l = decltype(dt_l)::value;
      const dim3 grid = grid_of(*p, WARP / rows::SPLIT, batch);
      if (rows::bc_pairs<E>(*p))
        emulate_launch(grid, WARP, [p] { rows::scan_rows_kernel<E, sp, along_l, false, sizeof(E) == 2>(*p); });
      else emulate_launch(grid, WARP, [p] { rows::scan_rows_kernel<E, sp, along_l>(*p); });
    });
  });
  return 0;
}

// split must be short_form::SPLIT; L from 1 to short_form::MAX_L
extern "C" int edgemv_scan_short_cpu(const void* params, int dtype, int split, int batch) {
  const Params* p = static_cast<const Params*>(params);
  if (split != short_form::SPLIT || p->length < 1 || p->length > short_form::MAX_L) return 1;
  for_dtype(dtype, [&](auto e) {
    using E = decltype(e);
    with_flags(p->softplus, short_form::delta_flat(*p), [&](auto softplus, auto flat) {
      emulate_launch(grid_of(*p, short_form::CH, batch), WARP, [p] {
        short_form::scan_short_kernel<E, decltype(softplus)::value, decltype(flat)::value>(*p);
      });
    });
  });
  return 0;
}
#else
namespace {
// f(E{}) for dtype's element type (for_dtype); the launch's cudaError_t
template <typename F>
int with_dtype(int dtype, F&& f) {
  for_dtype(dtype, f);
  return (int)cudaGetLastError();
}

// blocks per SM of a float32 rows build on the current device (its variants' registers are alike: the model's
// layout stands for them)
template <bool WIDE>
int rows_resident() {
  int r = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r, rows::scan_rows_kernel<float, true, false, WIDE>, WARP, 0);
  return r;
}

// whether the rows form runs its wide build (scan_rows.cuh, ROWS_WIDE_MIN_BLOCKS; float32 only) for a grid of
// `blocks` on the current device: when it takes them in one wave and the default build does not (160 x 196 batch
// 256: one wave against two, 14% faster on an H200; at batch 512, two waves against three, it was as fast or 6%
// slower, so more waves keep the default). The blocks each build keeps resident are looked up once per device.
bool rows_wide(int dtype, long long blocks) {
  if (dtype != 0) return false;
  struct Slots {
    long long normal = 0, wide = 0;
  };
  static Slots known[64];
  int device = 0;
  cudaGetDevice(&device);
  Slots here;
  Slots& slots = device >= 0 && device < 64 ? known[device] : here;
  if (slots.normal == 0) {
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    slots.wide = (long long)rows_resident<true>() * sms;
    slots.normal = (long long)rows_resident<false>() * sms;
  }
  return slots.normal > 0 && blocks > slots.normal && blocks <= slots.wide;
}
}  // namespace

// dtype: 0 fp32, 1 fp16, 2 bf16; split: lanes per channel (1, 2 or 4). Returns a cudaError_t. (void* parameter block:
// see selective_scan_fwd.cu.)
extern "C" int edgemv_scan_n8_cuda(const void* params, int dtype, int split, int batch, void* stream) {
  const Params& p = *static_cast<const Params*>(params);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return with_dtype(dtype, [&](auto e) {
    using E = decltype(e);
    const dim3 grid = grid_of(p, WARP / split, batch);
    if (split == 1) scan_n8_kernel<E, 1><<<grid, WARP, 0, s>>>(p);
    else if (split == 2) scan_n8_kernel<E, 2><<<grid, WARP, 0, s>>>(p);
    else scan_n8_kernel<E, 4><<<grid, WARP, 0, s>>>(p);
  });
}

// the rows form (scan_rows.cuh); split must be rows::SPLIT. edgemv.ops.scan_cuda checks its layout and alignment
// first.
extern "C" int edgemv_scan_rows_cuda(const void* params, int dtype, int split, int batch, void* stream) {
  const Params& p = *static_cast<const Params*>(params);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (split != rows::SPLIT) return (int)cudaErrorInvalidValue;
  const dim3 grid = grid_of(p, WARP / rows::SPLIT, batch);
  const bool wide = rows_wide(dtype, (long long)grid.x * grid.y);
  return with_dtype(dtype, [&](auto e) {
    with_flags(p.softplus, p.sdt_l == 1, [&](auto softplus, auto dt_l) {  // delta along L, else along D
      using E = decltype(e);
      constexpr bool sp = decltype(softplus)::value, along_l = decltype(dt_l)::value;
      auto launch = [&](auto wide_build, auto pairs) {
        rows::scan_rows_kernel<E, sp, along_l, decltype(wide_build)::value, decltype(pairs)::value>
            <<<grid, WARP, 0, s>>>(p);
      };
      if constexpr (std::is_same_v<E, float>) {
        if (wide) launch(std::true_type{}, std::false_type{});
        else launch(std::false_type{}, std::false_type{});
      } else {
        if (rows::bc_pairs<E>(p)) launch(std::false_type{}, std::true_type{});
        else launch(std::false_type{}, std::false_type{});
      }
    });
  });
}

// 1 when the rows form runs its wide build for `dim` channels and `batch` sequences on the current device, else 0
// (rows_wide, for the tests and benchmarks)
extern "C" int edgemv_scan_rows_wide(long long dim, int dtype, int batch) {
  const long long channels = WARP / rows::SPLIT;
  return rows_wide(dtype, (dim + channels - 1) / channels * batch) ? 1 : 0;
}

// the short form (scan_short.cuh); split must be short_form::SPLIT, L from 1 to short_form::MAX_L.
// edgemv.ops.scan_cuda checks its layout and alignment first.
extern "C" int edgemv_scan_short_cuda(const void* params, int dtype, int split, int batch, void* stream) {
  const Params& p = *static_cast<const Params*>(params);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (split != short_form::SPLIT || p.length < 1 || p.length > short_form::MAX_L) return (int)cudaErrorInvalidValue;
  return with_dtype(dtype, [&](auto e) {
    using E = decltype(e);
    with_flags(p.softplus, short_form::delta_flat(p), [&](auto softplus, auto flat) {
      // the driver's split of the unified memory between shared memory and L1: asking for all of it as shared
      // memory was 11-14% slower on an H200 (twelfth session, docs/benchmarks.md; the L1 left to the loads, we think)
      const int bytes = short_form::shared_bytes((int)p.length, (int)sizeof(E));
      short_form::scan_short_kernel<E, decltype(softplus)::value, decltype(flat)::value>
          <<<grid_of(p, short_form::CH, batch), WARP, bytes, s>>>(p);
    });
  });
}
#endif

extern "C" int edgemv_scan_params_size() { return (int)sizeof(Params); }
