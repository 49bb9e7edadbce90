// The "rows" form of the N = 8 forward scan: each lane scans its channel's row of u into its row of y, for u and y
// contiguous along L (every caller's u, and the y edgemv allocates), moved in 8-byte groups; delta may lie along L
// (mamba_ssm's layout) or along D (MambaVision's). Included by selective_scan_n8.cu; edgemv.ops.scan_cuda checks
// what it needs (rows_refusal: 8-byte aligned rows, L a multiple of the elements per 8 bytes, no z) and callers
// run the staged kernel otherwise.
//
// Why: the staged kernel spends about half of its instructions outside the scan (64-bit address arithmetic of 48
// scalar loads per chunk, the transposing stores and loads of the staging, the store of y from shared memory; Nsight
// Compute, docs/benchmarks.md). Here the scan reads u and writes y in shared memory as 8-byte groups of rows, and
// the warp moves them between global and shared memory whole sectors at a time.
//   - a block is one warp: 16 channels, SPLIT = 2 lanes per channel with 4 states each, their partial y added with
//     one shuffle per step (1 lane per channel with 8 states, and 4 with 2, were slower at every shape measured);
//   - shared memory holds delta (its bias and softplus computed once per element, not by both lanes of a channel),
//     B and C (shared by all channels of a sequence: every lane reads the same row, a broadcast), and the chunk's
//     rows of u and of y (y goes out at the start of the next chunk);
//   - a chunk is 8 groups of 8 bytes per row: 32 steps for 16-bit inputs, 16 for float32; the next chunk's loads
//     are in flight (a second set of registers) while the current one is scanned;
//   - the tail (L not a multiple of the chunk) is one more chunk with its loads and steps checked per 8-byte group.
#pragma once

#include <type_traits>

#include "scan_common.cuh"

namespace rows {

constexpr int WARP = 32;
constexpr float LOG2E = 1.4426950408889634f;
template <typename E> constexpr int kVec = 8 / (int)sizeof(E);  // elements per 8-byte access
#ifndef ROWS_NV  // 8-byte accesses per row and chunk (a build knob; 4 was slower)
#define ROWS_NV 8
#endif
constexpr int NV = ROWS_NV;
template <typename E> constexpr int kSteps = NV * kVec<E>;      // steps per chunk
// s_bc: per step B_0..7, C_0..7 and 4 floats of padding: 80-byte rows make the staging's 128-bit stores (a lane per
// step) conflict-free in each 8-lane phase, and keep the rows 16-byte aligned for the scan's 128-bit reads
constexpr int BC_STRIDE = 2 * N + 4;

// 8 bytes of E <-> kVec<E> floats: 16-bit types through their two-element vector types, float bit for bit
template <typename E> struct Pair;  // a 16-bit type's two-element vector and its float2 conversions
template <> struct Pair<__half> {
  using T = __half2;
  __device__ static float2 to_f2(T v) { return __half22float2(v); }
  __device__ static T from_f2(float a, float b) { return __floats2half2_rn(a, b); }
};
template <> struct Pair<__nv_bfloat16> {
  using T = __nv_bfloat162;
  __device__ static float2 to_f2(T v) { return __bfloat1622float2(v); }
  __device__ static T from_f2(float a, float b) { return __floats2bfloat162_rn(a, b); }
};
template <typename E> __device__ __forceinline__ void unpack(uint2 w, float (&f)[kVec<E>]) {
  using P = Pair<E>;
  const float2 lo = P::to_f2(reinterpret_cast<const typename P::T&>(w.x));
  const float2 hi = P::to_f2(reinterpret_cast<const typename P::T&>(w.y));
  f[0] = lo.x; f[1] = lo.y; f[2] = hi.x; f[3] = hi.y;
}
template <typename E> __device__ __forceinline__ uint2 pack(const float (&f)[kVec<E>]) {
  using P = Pair<E>;
  const typename P::T lo = P::from_f2(f[0], f[1]), hi = P::from_f2(f[2], f[3]);
  return make_uint2(reinterpret_cast<const unsigned&>(lo), reinterpret_cast<const unsigned&>(hi));
}
// kVec floats to 16-byte (4) or 8-byte (2) aligned shared memory, one store
template <int V> __device__ __forceinline__ void store_f(float* dst, const float (&x)[V]) {
  static_assert(V == 2 || V == 4, "8 bytes of a 16- or 32-bit type");
  if constexpr (V == 4) *reinterpret_cast<float4*>(dst) = make_float4(x[0], x[1], x[2], x[3]);
  else *reinterpret_cast<float2*>(dst) = make_float2(x[0], x[1]);
}
template <> __device__ __forceinline__ void unpack<float>(uint2 w, float (&f)[2]) {
  f[0] = __uint_as_float(w.x);
  f[1] = __uint_as_float(w.y);
}
template <> __device__ __forceinline__ uint2 pack<float>(const float (&f)[2]) {
  return make_uint2(__float_as_uint(f[0]), __float_as_uint(f[1]));
}

// one-warp blocks per SM the register allocation must allow with 2 lanes per channel (a build knob: 14 fits 160 x
// 196 batch 128 in one wave, 1,280 warps on 132 SMs; ptxas gives a one-warp block 128, 96 or 80 registers, and 14
// and 16 both give 128, 16 blocks per SM; 12 and 18-20 were slower; docs/benchmarks.md)
#ifndef ROWS_MIN_BLOCKS
#define ROWS_MIN_BLOCKS 14
#endif
// the wide build (float32 only): 96 registers, 20 blocks per SM, for grids it runs in one wave and the default build
// does not (160 x 196 batch 256: 2,560 blocks, one wave of 2,640 against two of 2,112 on 132 SMs; 14% faster there
// on an H200; slower in one wave of both, and no faster at two waves against three). float32 fits 96 registers
// without spilling; the 16-bit kernels spill and were slower at every batch (docs/benchmarks.md).
#ifndef ROWS_WIDE_MIN_BLOCKS
#define ROWS_WIDE_MIN_BLOCKS 18
#endif

constexpr int SPLIT = 2;  // lanes per channel

// u and y move between global and shared memory as whole 8-byte groups of rows, coalesced: in one access the warp
// covers RPI rows of a chunk, NV lanes per row (a chunk's row is NV groups, 64 bytes), so every 32-byte sector is
// read or written whole by one instruction. (Each lane reading and writing its own channel's row, 8 bytes at a time,
// made 16 sectors per instruction, each touched again by the next: at batch 256 the u loads and y stores each cost
// about 9 us of 44, by leaving them out; docs/benchmarks.md.)
constexpr int RPI = WARP / NV;                   // rows per access
constexpr int UPL = (WARP / SPLIT) * NV / WARP;  // a chunk's 8-byte groups of u (and of y) per lane
constexpr int U_STRIDE = NV + 1;                 // s_u / s_y row, in 8-byte groups: conflict-free reads along rows

template <typename E, bool PAIRS = false>
struct Raw {  // one chunk's inputs as loaded: UPL groups of u (rows lane / NV + j RPI, group lane % NV), this
              // lane's share of delta, and 2 N values of B and C: B_0..7, C_0..7 of step `lane`, or (B and C
              // contiguous along N, MambaVision's layout) value lane % 16 of steps 2 k + lane / 16
  uint2 u[UPL], dt[NV / SPLIT];
  E bc[PAIRS ? 1 : 2 * N];
  uint32_t bcw[PAIRS ? kSteps<E> / (WARP / N) : 1];  // PAIRS: 16-bit B and C, two values per 32-bit load (below)
};

template <int K>
struct StepBC {  // a step's B and C for this lane's K states
  float b[K], c[K];
};

// step t's B and C for this lane's K states (part K .. part K + K - 1) from an s_bc of BC_STRIDE-float rows; volatile
// reads (lds_f4), so a read issued a step ahead stays there
template <int K>
__device__ __forceinline__ void read_bc(const float* s_bc, int t, int part, StepBC<K>& o) {
  const float* row = &s_bc[t * BC_STRIDE + part * K];
#pragma unroll
  for (int j = 0; j < K; j += 4) {
    const float4 bv = lds_f4(reinterpret_cast<const float4*>(row + j));
    const float4 cv = lds_f4(reinterpret_cast<const float4*>(row + N + j));
    o.b[j] = bv.x; o.b[j + 1] = bv.y; o.b[j + 2] = bv.z; o.b[j + 3] = bv.w;
    o.c[j] = cv.x; o.c[j + 1] = cv.y; o.c[j + 2] = cv.z; o.c[j + 3] = cv.w;
  }
}

// one step of the scan for this lane's K states (a in log2 units): h = 2^(d a) h + d x B, and the channel's C h, both
// lanes' sums added with one shuffle (every lane of the warp calls it)
template <int K>
__device__ __forceinline__ float scan_step(float d, float x, const float (&a)[K], float (&h)[K], const StepBC<K>& o) {
  const float du = d * x;
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < K; ++j) {
    h[j] = fmaf(ex2(d * a[j]), h[j], du * o.b[j]);
    acc = fmaf(h[j], o.c[j], acc);
  }
  return acc + __shfl_xor_sync(0xffffffffu, acc, 1);  // the other lane's states
}

// whether B and C of element type E can be read two values at a time (PAIRS, below): 16-bit, contiguous along N,
// every pair 4-byte aligned (MambaVision's x_proj output where dt_rank is even)
template <typename E>
inline bool bc_pairs(const Params& p) {
  const auto even = [](int64_t v) { return v % 2 == 0; };
  return sizeof(E) == 2 && p.sB_n == 1 && p.sC_n == 1 && reinterpret_cast<uintptr_t>(p.B) % 4 == 0
      && reinterpret_cast<uintptr_t>(p.C) % 4 == 0 && even(p.sB_b) && even(p.sB_l) && even(p.sC_b) && even(p.sC_l);
}

// PAIRS (16-bit inputs where bc_pairs holds; the entry point checks): a lane loads two values of a step's 2 N at
// once, 4 steps per access, so a chunk's B and C take 8 loads and registers instead of 16 (on an H200 at 160 x 196
// fp16, 3-5% faster; twelfth session, docs/benchmarks.md)
template <typename E, bool SOFTPLUS, bool DT_L, bool WIDE = false, bool PAIRS = false>
__global__ void __launch_bounds__(WARP, WIDE ? ROWS_WIDE_MIN_BLOCKS : ROWS_MIN_BLOCKS) scan_rows_kernel(Params p) {
  constexpr int V = kVec<E>, TT = kSteps<E>, K = N / SPLIT, CH = WARP / SPLIT;
  constexpr int DTV = NV / SPLIT;  // 8-byte groups of delta this lane loads and stages per chunk
  constexpr int DT_ROW = TT + 4;   // s_dt row (a channel's steps): conflict-free 128-bit stores and reads
  constexpr int ROW_LANES = CH / V, ROW_STEPS = WARP / ROW_LANES;  // delta along D: lanes per step, steps per load
  __shared__ __align__(16) float s_bc[TT * BC_STRIDE];
  __shared__ __align__(16) float s_dt[CH * DT_ROW];  // delta + bias, softplus'd, once per element
  __shared__ uint2 s_u[CH * U_STRIDE], s_y[CH * U_STRIDE];  // a chunk's rows of u and of y, 8-byte groups

  const int lane = threadIdx.x, ch = lane / SPLIT, part = lane % SPLIT;
  const int64_t bat = blockIdx.y;
  const int c0 = blockIdx.x * CH, c = c0 + ch;
  const int cc = min(c, (int)p.dim - 1);  // lanes past the last channel compute a copy of it (never stored)
  // the coalesced accesses of u and y: group `grp` of rows row0 + j RPI of the chunk (channel c0 + that row; rows
  // past the last channel read the last one and store nothing), as 32-bit offsets from the sequence's start
  // (scan_cuda.rows_refusal checks that a sequence's rows span less than 2^31 elements)
  const int grp = lane % NV, row0 = lane / NV;
  const E* u_bat = static_cast<const E*>(p.u) + bat * p.su_b;
  E* y_bat = static_cast<E*>(p.y) + bat * p.sy_b;
  int u_off[UPL], y_off[UPL];
#pragma unroll
  for (int j = 0; j < UPL; ++j) {
    const int ch_j = c0 + row0 + j * RPI;
    u_off[j] = min(ch_j, (int)p.dim - 1) * (int)p.su_d + grp * V;
    y_off[j] = ch_j < p.dim ? ch_j * (int)p.sy_d + grp * V : -1;
  }
  const E* Bb = static_cast<const E*>(p.B) + bat * p.sB_b;
  const E* Cb = static_cast<const E*>(p.C) + bat * p.sC_b;
  const float dskip = p.has_d ? param_f(p.D, cc, p.D_dtype) : 0.0f;
  float a[K], h[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    a[j] = param_f(p.A, cc * p.sA_d + (part * K + j) * p.sA_n, p.A_dtype) * LOG2E;
    h[j] = 0.0f;
  }
  // delta: along L, lane (ch, part) stages groups part * DTV .. of its channel's row; along D (the model's layout),
  // lane l stages channels dc .. dc + V - 1 of steps dt_step + k ROW_STEPS
  const int dc = (lane % ROW_LANES) * V, dt_step = lane / ROW_LANES;
  float bias[DT_L ? 1 : V];
#pragma unroll
  for (int e = 0; e < (DT_L ? 1 : V); ++e) {
    const int bc = DT_L ? cc : min(c0 + dc + e, (int)p.dim - 1);
    bias[e] = p.has_bias ? param_f(p.bias, bc, p.bias_dtype) : 0.0f;
  }

  const int length = (int)p.length;
  // one lane's pointers into B and C (its step of a chunk), and a step's stride of delta along D: the chunk loads
  // below are a pointer per chunk plus one multiply-add per load (computing each address from the strides took
  // about 170 instructions per chunk)
  const E* b_lane = Bb + (int64_t)min(lane, TT - 1) * p.sB_l;
  const E* c_lane = Cb + (int64_t)min(lane, TT - 1) * p.sC_l;
  const int sbn = (int)p.sB_n, scn = (int)p.sC_n, dt_rows = ROW_STEPS * (int)p.sdt_l;
  // B and C contiguous along N (MambaVision's x_proj output): a step's 16 values lie together, so the warp reads two
  // steps per access, a lane per value (one access per step and value, a lane per step, touched 32 rows each time:
  // 4.9 of 40.6 us at batch 256 by leaving the loads out; docs/benchmarks.md)
  static_assert(WARP == 4 * N, "B and C along N: an access is two steps of 2 N values");
  const bool bc_along_n = p.sB_n == 1 && p.sC_n == 1;
  const int bc_val = lane % (2 * N), bc_step = lane / (2 * N);
  const int64_t bcn_sl = bc_val < N ? p.sB_l : p.sC_l;
  const E* bcn_lane = (bc_val < N ? Bb + bc_val : Cb + (bc_val - N)) + bc_step * bcn_sl;
  static_assert(!PAIRS || sizeof(E) == 2, "pairs of 16-bit values");
  constexpr int PAIR_SPA = WARP / N;  // steps per access of pairs: N lanes per step
  const int pr_val = 2 * (lane % N), pr_step = lane / N;
  const int64_t pr_sl = pr_val < N ? p.sB_l : p.sC_l;
  const E* pr_lane = (pr_val < N ? Bb + pr_val : Cb + (pr_val - N)) + pr_step * pr_sl;
  const E* dt_lane = static_cast<const E*>(p.dt) + bat * p.sdt_b
      + (DT_L ? cc * p.sdt_d + part * DTV * V : min(c0 + dc, (int)p.dim - V) + dt_step * p.sdt_l);
  // FULL: a whole chunk (no checks); otherwise the tail: nv valid 8-byte groups of a row (NV for a whole chunk),
  // steps below L
  auto load = [&](auto full, int t0, int nv, Raw<E, PAIRS>& r) {
    constexpr bool FULL = decltype(full)::value;
    const E* u_t0 = u_bat + t0;
#pragma unroll
    for (int j = 0; j < UPL; ++j) {
      if (FULL || grp < nv) r.u[j] = *reinterpret_cast<const uint2*>(u_t0 + u_off[j]);
    }
    const E* q = dt_lane + (DT_L ? (int64_t)t0 : (int64_t)t0 * p.sdt_l);
#pragma unroll
    for (int k = 0; k < DTV; ++k) {
      if (DT_L) {
        if (FULL || part * DTV + k < nv) r.dt[k] = reinterpret_cast<const uint2*>(q)[k];
      } else {
        if (FULL || t0 + dt_step + k * ROW_STEPS < length) r.dt[k] = *reinterpret_cast<const uint2*>(q);
        q += dt_rows;
      }
    }
    // B and C: predicated loads, as above (a select of a loaded value or zero would wait there for the load, and the
    // tail's loads go out before the last whole chunk's scan); steps past a tail are staged stale and never read
    if (PAIRS) {
      const E* q2 = pr_lane + t0 * pr_sl;
      const int access = PAIR_SPA * (int)pr_sl;
#pragma unroll
      for (int k = 0; k < TT / PAIR_SPA; ++k) {
        if (FULL || t0 + PAIR_SPA * k + pr_step < length)
          r.bcw[k] = *reinterpret_cast<const uint32_t*>(q2 + k * access);
      }
    } else if (bc_along_n) {
      const E* q2 = bcn_lane + t0 * bcn_sl;
      const int two_steps = 2 * (int)bcn_sl;
#pragma unroll
      for (int k = 0; k < TT / 2; ++k) {
        if (FULL || t0 + 2 * k + bc_step < length) r.bc[k] = q2[k * two_steps];
      }
    } else {
      const bool in = (TT == WARP || lane < TT) && (FULL || t0 + lane < length);
      const E* bp = b_lane + (int64_t)t0 * p.sB_l;
      const E* cp = c_lane + (int64_t)t0 * p.sC_l;
#pragma unroll
      for (int n = 0; n < N; ++n) {  // a 32-bit offset from the chunk's pointer: one wide multiply-add per address
        if (in) {
          r.bc[n] = bp[n * sbn];
          r.bc[N + n] = cp[n * scn];
        }
      }
    }
  };
  auto stage = [&](const Raw<E, PAIRS>& r) {
#pragma unroll
    for (int j = 0; j < UPL; ++j) s_u[(row0 + j * RPI) * U_STRIDE + grp] = r.u[j];
    if (PAIRS) {
#pragma unroll
      for (int k = 0; k < TT / PAIR_SPA; ++k) {
        float f[kVec<E>];
        unpack<E>(make_uint2(r.bcw[k], 0u), f);
        *reinterpret_cast<float2*>(&s_bc[(PAIR_SPA * k + pr_step) * BC_STRIDE + pr_val]) = make_float2(f[0], f[1]);
      }
    } else if (bc_along_n) {
#pragma unroll
      for (int k = 0; k < TT / 2; ++k) s_bc[(2 * k + bc_step) * BC_STRIDE + bc_val] = to_f(r.bc[k]);
    } else if (TT == WARP || lane < TT) {
      float4* row = reinterpret_cast<float4*>(&s_bc[lane * BC_STRIDE]);
#pragma unroll
      for (int q = 0; q < 4; ++q)
        row[q] = make_float4(to_f(r.bc[4 * q]), to_f(r.bc[4 * q + 1]), to_f(r.bc[4 * q + 2]), to_f(r.bc[4 * q + 3]));
    }
#pragma unroll
    for (int k = 0; k < DTV; ++k) {  // (stale values past a tail are staged too, and never read)
      float x[V];
      unpack<E>(r.dt[k], x);
      if (DT_L) {
#pragma unroll
        for (int e = 0; e < V; ++e) x[e] = step_size<E, SOFTPLUS>(x[e] + bias[0]);
        store_f<V>(&s_dt[ch * DT_ROW + (part * DTV + k) * V], x);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e)
          s_dt[(dc + e) * DT_ROW + dt_step + k * ROW_STEPS] = step_size<E, SOFTPLUS>(x[e] + bias[e]);
      }
    }
  };
  // the chunk's steps of its first nv groups (a full chunk: all NV, unrolled into one block of straight code); y
  // into s_y
  auto scan = [&](int nv) {
    StepBC<K> ring[2];
    read_bc(s_bc, 0, part, ring[0]);
#pragma unroll
    for (int v = 0; v < NV; ++v) {
      if (v >= nv) break;
      float d[V], x[V], y[V];
      if (V == 4) {
        const float4 dv = *reinterpret_cast<const float4*>(&s_dt[ch * DT_ROW + v * V]);
        d[0] = dv.x; d[1] = dv.y; d[V > 2 ? 2 : 0] = dv.z; d[V > 3 ? 3 : 0] = dv.w;
      } else {
        const float2 dv = *reinterpret_cast<const float2*>(&s_dt[ch * DT_ROW + v * V]);
        d[0] = dv.x; d[1] = dv.y;
      }
      unpack<E>(s_u[ch * U_STRIDE + v], x);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const int t = v * V + i;
        if (t + 1 < TT) read_bc(s_bc, t + 1, part, ring[(t + 1) & 1]);  // a step ahead (rows past a tail: unused)
        y[i] = fmaf(dskip, x[i], scan_step(d[i], x[i], a, h, ring[t & 1]));
      }
      if (v % SPLIT == part) s_y[ch * U_STRIDE + v] = pack<E>(y);  // each lane writes every other group
    }
  };

  // a scanned chunk's y from s_y to its rows (the first nv groups; rows past the last channel are not stored)
  auto store_y = [&](int t0, int nv) {
    E* y_t0 = y_bat + t0;
#pragma unroll
    for (int j = 0; j < UPL; ++j) {
      if (y_off[j] >= 0 && grp < nv)
        *reinterpret_cast<uint2*>(y_t0 + y_off[j]) = s_y[(row0 + j * RPI) * U_STRIDE + grp];
    }
  };

  const int n_full = length / TT, tail = (length % TT) / V;  // the host checks that V divides L
  Raw<E, PAIRS> cur, nxt;
  const std::true_type full;
  const std::false_type partial;
  if (n_full > 0) load(full, 0, NV, cur);
  else load(partial, 0, tail, cur);
  for (int kk = 0; kk < n_full; ++kk) {
    const int t0 = kk * TT;
    stage(cur);
    if (kk > 0) store_y(t0 - TT, NV);  // the previous chunk's (its scan ended before the last __syncwarp)
    __syncwarp();
    if (kk + 1 < n_full) load(full, t0 + TT, NV, nxt);  // in flight during this chunk's scan
    else if (tail > 0) load(partial, t0 + TT, tail, nxt);
    scan(NV);
    __syncwarp();  // the next staging overwrites s_u, s_bc and s_dt; s_y is complete
    cur = nxt;
  }
  if (tail > 0) {
    stage(cur);
    if (n_full > 0) store_y((n_full - 1) * TT, NV);
    __syncwarp();
    scan(tail);
    __syncwarp();
    store_y(n_full * TT, tail);
  } else if (n_full > 0) {
    store_y((n_full - 1) * TT, NV);
  }
}

}  // namespace rows
