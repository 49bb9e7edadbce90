// Forward selective scan for N = 8, CUDA C++. Same contract as edgemv.ops.selective_scan:
//   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,  y_t = C_t . h_t + D u_t,  y *= silu(z)
// with delta = softplus(delta + delta_bias) when asked; fp32 arithmetic for fp16/bf16/fp32 inputs; any strides.
// edgemv.ops.scan_cuda builds it with nvcc on first use and launches it through ctypes; 'auto' times it beside the
// Triton kernels (edgemv.ops.scan_tune).
//
// Design (each point measured on an H200 with Nsight Compute; docs/benchmarks.md, "The CUDA C++ kernel"):
//   - a block is one warp of 32 / SPLIT channels, SPLIT = 1, 2 or 4 lanes per channel, 8 / SPLIT states each: many
//     small blocks spread evenly over the SMs' schedulers, and no block barriers (__syncwarp);
//   - it walks the sequence in chunks of 32 steps. Each chunk is loaded with lanes along whichever of L or D is
//     contiguous (32-bit offsets from a warp-uniform base, bounds checks only in the last chunk and channel block)
//     and staged in shared memory as fp32; delta's bias and softplus are computed there, once per element, not by
//     every lane of a channel;
//   - the scan reads only shared memory: a pair of steps' (delta, u) and B, C per 128-bit load, the reads of the
//     next pair issued before the current pair is computed (volatile PTX, so ptxas keeps that order); each lane
//     writes its partial y, summed with D u when the chunk is stored (no shuffles);
//   - a full chunk's scan is unrolled (every shared offset is a constant); the last chunk runs only its real steps;
//   - the next chunk's global loads are in flight in registers while the current one is scanned.
// At 160 x 196 batch 128 fp16 on MambaVision's layout it runs in 39.5 us (SPLIT 2) against 60.6 us for the best
// Triton kernel there; its tests on the CPU compile this file with g++ through cpu_emulation.h.

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

// Staging, one element at a time (so that the fast path can spread a chunk's staging over the previous chunk's
// scan): element i of this lane's share of a tile goes to x_index(t, c) = base + offset(i), with (t, c) from
// TileMap; both layouts' offsets are compile-time constants for each i, the layout (which axis the tensor is
// contiguous along) a warp-uniform runtime choice.
template <int CH>
struct StageMap {
  int base_l, base_d;  // x_index of element 0, lanes along the steps / along the channels
  __device__ explicit StageMap(int lane)
      : base_l(x_index<CH>(lane, 0)), base_d(x_index<CH>(lane / CH, lane % CH)) {}
  __device__ int index(bool l_major, int i) const {
    using M = TileMap<CH>;
    // lanes along the channels: t = i ROWS + lane / CH; t's halves and parity split into a per-lane part and a
    // constant when ROWS is even, and t = i when ROWS is 1
    const int d_off = (M::ROWS % 2 == 0) ? i * (M::ROWS / 2) * (CH + 1) * 4 : x_index<CH>(i, 0);
    return l_major ? base_l + 4 * i : base_d + d_off;
  }
};

// delta + bias (softplus'd) of element i into the x tile: once per element, not once per scanning lane
template <typename E, int CH>
__device__ __forceinline__ void stage_delta(E raw, int i, bool l_major, bool softplus_on, const StageMap<CH>& m,
                                            float* s_x, const float* s_bias, int lane) {
  float d = to_f(raw) + s_bias[l_major ? i : lane % CH];
  if (softplus_on) d = (sizeof(E) == 2 || LEAN_FAST_SOFTPLUS) ? softplus_fast(d) : softplus(d);
  s_x[m.index(l_major, i)] = d;
}

template <typename E, int CH>
__device__ __forceinline__ void stage_u(E raw, int i, bool l_major, const StageMap<CH>& m, float* s_x) {
  s_x[m.index(l_major, i) + 1] = to_f(raw);
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

// Shared-memory reads and writes of the scan as volatile PTX: ptxas keeps volatile accesses in program order, so the
// reads of step t + PREFETCH stay ahead of step t's write of y (plain ones were each moved down next to their use,
// and the warp waited on them: Nsight Compute, short scoreboard).
__device__ __forceinline__ float4 lds_f4(const float4* p) {
#ifdef EDGEMV_CPU_EMULATION
  return *p;
#else
  float4 r;
  asm volatile("ld.volatile.shared.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w) : "r"((unsigned)__cvta_generic_to_shared(p)));
  return r;
#endif
}
__device__ __forceinline__ void sts_f(float* p, float v) {
#ifdef EDGEMV_CPU_EMULATION
  *p = v;
#else
  asm volatile("st.volatile.shared.f32 [%0], %1;" :: "r"((unsigned)__cvta_generic_to_shared(p)), "f"(v));
#endif
}

template <typename E, int SPLIT>
__global__ void __launch_bounds__(WARP, min_blocks<SPLIT>()) scan_n8_lean_kernel(Params p) {
  constexpr int CH = WARP / SPLIT;  // channels per block
  constexpr int K = N / SPLIT;      // states per lane
  constexpr int ROWY = WARP + SPLIT;  // s_y row in floats, padded so the vector reads of the store are conflict-free
  constexpr int XSIZE = T / 2 * (CH + 1) * 4, BCSIZE = T / 2 * BC_ROW;
  constexpr int PER_LANE = TileMap<CH>::PER_LANE;
  static_assert(K % 2 == 0 && T % 2 == 0, "operands are read for pairs of steps and pairs of states");
  // two buffers of the staged inputs: the fast path stages chunk k + 1 while it scans chunk k
  __shared__ __align__(16) float s_x[2][XSIZE];  // delta (biased, softplus'd) and u: x_index
  __shared__ __align__(16) float s_B[2][BCSIZE];  // bc_index
  __shared__ __align__(16) float s_C[2][BCSIZE];
  __shared__ __align__(16) float s_y[T * ROWY];   // the chunk's partial y, [t][c * SPLIT + part]
  __shared__ float s_bias[CH], s_D[CH];

  const int64_t bat = blockIdx.y;
  const int c0 = blockIdx.x * CH;
  const int lane = threadIdx.x;
  const int ch = lane / SPLIT, part = lane % SPLIT;  // the scan: this lane's channel and its share of the states
  const int cc = min(c0 + ch, (int)p.dim - 1);
  const bool full_c = c0 + CH <= p.dim;
  const int c_lim = (int)p.dim - c0;
  const int length = (int)p.length;
  const bool softplus_on = p.softplus;
  const bool u_l = p.su_l == 1, dt_l = p.sdt_l == 1 || p.sdt_d != 1, y_l = p.sy_l == 1;
  const StageMap<CH> smap(lane);

  if (lane < CH) {
    const int c = min(c0 + lane, (int)p.dim - 1);
    s_bias[lane] = p.has_bias ? p.bias[c] : 0.0f;
    s_D[lane] = p.has_d ? p.D[c] : 0.0f;
  }
  float a[K], h[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    a[j] = p.A[cc * p.sA_d + (part * K + j) * p.sA_n] * 1.4426950408889634f;
    h[j] = 0.0f;
  }
  __syncwarp();

  // one step of this lane's K states; a full chunk reads a pair of steps' operands PREFETCH pairs ahead of the pair
  // it computes (without that the compiler waited on every step's loads: Nsight Compute, short scoreboard)
  struct Pair {
    float4 x;  // (delta_t, u_t, delta_t+1, u_t+1)
    float b[2][K], c[2][K];
  };
  auto read_pair = [&](int buf, int t, Pair& o) {  // t even
    o.x = lds_f4(reinterpret_cast<const float4*>(&s_x[buf][x_index<CH>(t, ch)]));
#pragma unroll
    for (int j = 0; j < K; j += 2) {
      const float4 bv = lds_f4(reinterpret_cast<const float4*>(&s_B[buf][bc_index(t, part * K + j)]));
      const float4 kv = lds_f4(reinterpret_cast<const float4*>(&s_C[buf][bc_index(t, part * K + j)]));
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
  // rows [t_first, t_last) of the chunk in buffer buf, one step at a time (the last chunk's rows)
  auto scan_rows = [&](int buf, int t_first, int t_last) {
#pragma unroll 1
    for (int t = t_first; t < t_last; ++t) {
      const float2 x = *reinterpret_cast<const float2*>(&s_x[buf][x_index<CH>(t, ch)]);
      float b[K], c[K];
#pragma unroll
      for (int j = 0; j < K; ++j) {
        b[j] = s_B[buf][bc_index(t, part * K + j)];
        c[j] = s_C[buf][bc_index(t, part * K + j)];
      }
      compute_step(t, x.x, x.y, b, c);
    }
  };

  Chunk<E, CH> k;
  // staging of this lane's elements [i0, i1) of the chunk held in k, and of its B_t, C_t values [n0, n1)
  auto stage = [&](int buf, int i0, int i1, int n0, int n1) {
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) {
      if (i >= i0 && i < i1) {
        stage_delta<E, CH>(k.dt[i], i, dt_l, softplus_on, smap, s_x[buf], s_bias, lane);
        stage_u<E, CH>(k.u[i], i, u_l, smap, s_x[buf]);
      }
    }
#pragma unroll
    for (int n = 0; n < N; ++n) {  // this lane's step
      if (n >= n0 && n < n1) {
        s_B[buf][bc_index(lane, n)] = to_f(k.b[n]);
        s_C[buf][bc_index(lane, n)] = to_f(k.c[n]);
      }
    }
  };
  auto store = [&](bool fast, int buf, int t0, int t_first, int t_lim) {
    if (fast) {
      if (y_l) store_y<E, SPLIT, true, true>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x[buf], s_D);
      else store_y<E, SPLIT, false, true>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x[buf], s_D);
    } else {
      if (y_l) store_y<E, SPLIT, true, false>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x[buf], s_D);
      else store_y<E, SPLIT, false, false>(p, bat, c0, t0, lane, c_lim, t_first, t_lim, s_y, s_x[buf], s_D);
    }
  };

  if (full_c && length >= T && !p.has_z) {
    // Fast path: every chunk is a full window of T steps, so no load or store checks bounds. The chunks start at
    // 0, T, 2T, ...; when T does not divide L the last one starts at L - T and scans and stores only its rows past
    // the previous chunk's end. While chunk kk is scanned, chunk kk + 1 (already in registers) is staged into the
    // other buffer, spread over the second half of the scan's steps, so that the staging's softplus and stores
    // fill the scan's waits on its exp2 and shared loads; its global loads were issued a whole scan earlier.
    const int n_full = length / T, rem = length % T;
    const int n_chunks = n_full + (rem > 0);
    auto start_of = [&](int kk) { return kk < n_full ? kk * T : length - T; };
    load_chunk<E, CH, false>(p, bat, c0, 0, lane, u_l, dt_l, k);
    stage(0, 0, PER_LANE, 0, N);
    __syncwarp();
    if (n_chunks > 1) load_chunk<E, CH, false>(p, bat, c0, start_of(1), lane, u_l, dt_l, k);
    for (int kk = 0; kk < n_chunks; ++kk) {
      const int buf = kk & 1;
      const bool has_next = kk + 1 < n_chunks;
      const int t_first = kk < n_full ? 0 : T - rem;
      if (t_first == 0) {
        constexpr int PAIRS = T / 2, HALF = PAIRS / 2;
        Pair ring[kPrefetch + 1];  // registers: every index is a constant in the unrolled loop
#pragma unroll
        for (int q = 0; q < kPrefetch; ++q) read_pair(buf, 2 * q, ring[q]);
#pragma unroll
        for (int q = 0; q < PAIRS; ++q) {
          if (q + kPrefetch < PAIRS) read_pair(buf, 2 * (q + kPrefetch), ring[(q + kPrefetch) % (kPrefetch + 1)]);
          const Pair& o = ring[q % (kPrefetch + 1)];
          compute_step(2 * q, o.x.x, o.x.y, o.b[0], o.c[0]);
          compute_step(2 * q + 1, o.x.z, o.x.w, o.b[1], o.c[1]);
          if (q >= HALF && has_next) {  // the next chunk's share for this pair of steps
            const int r = q - HALF;
            stage(buf ^ 1, r * PER_LANE / HALF, (r + 1) * PER_LANE / HALF, r * N / HALF, (r + 1) * N / HALF);
          }
        }
      } else {
        scan_rows(buf, t_first, T);  // the last chunk: nothing left to stage
      }
      __syncwarp();
      if (kk + 2 < n_chunks) load_chunk<E, CH, false>(p, bat, c0, start_of(kk + 2), lane, u_l, dt_l, k);
      store(t_first == 0, buf, start_of(kk), t_first, T);
      __syncwarp();  // the next chunk's scan overwrites s_y, its staging this chunk's buffer
    }
    return;
  }

  // General path (a partial channel block, L < T, or z): one buffer, each chunk loaded (with bounds checks where
  // needed), staged, scanned and stored in turn; the next chunk's loads in flight during the scan.
  if (full_c && T <= length) load_chunk<E, CH, false>(p, bat, c0, 0, lane, u_l, dt_l, k);
  else load_chunk<E, CH, true>(p, bat, c0, 0, lane, u_l, dt_l, k);
  for (int t0 = 0; t0 < length; t0 += T) {
    const int t_lim = length - t0;
    stage(0, 0, PER_LANE, 0, N);
    __syncwarp();
    if (t0 + T < length) {
      if (full_c && t0 + 2 * T <= length) load_chunk<E, CH, false>(p, bat, c0, t0 + T, lane, u_l, dt_l, k);
      else load_chunk<E, CH, true>(p, bat, c0, t0 + T, lane, u_l, dt_l, k);
    }
    scan_rows(0, 0, min(t_lim, T));
    __syncwarp();
    store(full_c && t_lim >= T && !p.has_z, 0, t0, 0, t_lim);
    __syncwarp();  // the next staging overwrites the shared tiles
  }
}

}  // namespace

#ifdef EDGEMV_CPU_EMULATION
// fp32 only; runs the grid on the CPU (blocks one after another, one std::thread per lane)
extern "C" int edgemv_scan_n8_cpu(const void* params, int split, int batch) {
  const Params* p = static_cast<const Params*>(params);
  const int ch = WARP / split;
  dim3 grid{(unsigned)((p->dim + ch - 1) / ch), (unsigned)batch, 1};
  if (split == 1) emulate_launch(grid, WARP, [p] { scan_n8_lean_kernel<float, 1>(*p); });
  else if (split == 2) emulate_launch(grid, WARP, [p] { scan_n8_lean_kernel<float, 2>(*p); });
  else emulate_launch(grid, WARP, [p] { scan_n8_lean_kernel<float, 4>(*p); });
  return 0;
}
#else
namespace {
template <typename E>
void launch(const Params& p, int split, int batch, cudaStream_t s) {
  const int ch = WARP / split;
  dim3 grid((unsigned)((p.dim + ch - 1) / ch), (unsigned)batch);
  if (split == 1) scan_n8_lean_kernel<E, 1><<<grid, WARP, 0, s>>>(p);
  else if (split == 2) scan_n8_lean_kernel<E, 2><<<grid, WARP, 0, s>>>(p);
  else scan_n8_lean_kernel<E, 4><<<grid, WARP, 0, s>>>(p);
}
}  // namespace

// dtype: 0 fp32, 1 fp16, 2 bf16; split: lanes per channel (1, 2 or 4). Returns a cudaError_t. (void* parameter block:
// see selective_scan_fwd.cu.)
extern "C" int edgemv_scan_n8_cuda(const void* params, int dtype, int split, int batch, void* stream) {
  const Params* p = static_cast<const Params*>(params);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) launch<float>(*p, split, batch, s);
  else if (dtype == 1) launch<__half>(*p, split, batch, s);
  else launch<__nv_bfloat16>(*p, split, batch, s);
  return (int)cudaGetLastError();
}
#endif

extern "C" int edgemv_scan_params_size() { return (int)sizeof(Params); }
