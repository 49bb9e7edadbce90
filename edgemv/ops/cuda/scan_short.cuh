// The "short" form of the N = 8 forward scan, for sequences of at most MAX_L steps. MambaVision's last level has
// L = 49: its rows of 16-bit u are 98 bytes, not 8-byte aligned, so the rows form (scan_rows.cuh) cannot take them and
// that level ran on the staged kernel or Triton at half the rows form's speed per step (docs/benchmarks.md).
// Here a block (one warp: 16 channels, 2 lanes per channel with 4 states each, as the rows form) reads its channels'
// whole sequences at once:
//   - u: the block's rows are one contiguous run of 16 L elements (u contiguous along L and D), read as 8-byte words
//     whatever L is, every 32-byte sector whole; y is written back the same way;
//   - delta: along D (the model's layout) a step's 16 channels, or flat as u;
//   - B and C: contiguous along N (the model's layout) in 8-byte groups where the rows are 8-byte aligned, else a
//     value per lane, two steps per access; otherwise a step per lane;
// stages it in shared memory (u as loaded, its 8-byte words; delta as fp32 with its bias and softplus, once per
// element; B and C as fp32), scans, writes each y over its step's u, and stores the run as it was loaded. One load
// phase per block and no chunk loop (the shared memory is sized by L at launch: 8.8 KB at L = 49 in 16 bits).
// edgemv.ops.scan_cuda.short_refusal says what it cannot take; callers run another form then.
#pragma once

#include "scan_rows.cuh"

namespace short_form {

using rows::BC_STRIDE;
using rows::kVec;
using rows::read_bc;
using rows::scan_step;
using rows::StepBC;
using rows::WARP;

constexpr int MAX_L = 64;  // longest sequence (the loads are unrolled for it; edgemv.ops.scan_cuda.SHORT_MAX_L)
constexpr int SPLIT = 2;   // lanes per channel
constexpr int CH = WARP / SPLIT, K = N / SPLIT;
// one-warp blocks per SM the registers must allow (build knobs): 20 would put MambaVision-T's level 3 at batch 128
// (2,560 blocks) in one wave on 132 SMs (how many the driver's split of shared memory and L1 keeps resident was not
// measured; asking for all-shared was slower); float32 holds twice the loads in registers and takes fewer (it
// spilled at 20)
#ifndef SHORT_MIN_BLOCKS
#define SHORT_MIN_BLOCKS 20
#endif
#ifndef SHORT_MIN_BLOCKS_F32
#define SHORT_MIN_BLOCKS_F32 16
#endif

// A channel's row of s_dt holds delta for Lp steps: at least L + 1 (the scan reads two steps at a time, past L when
// L is odd) and 2 mod 4, so a row is an odd number of 8-byte units and the 16 channels' 64-bit reads of one step
// pair fall in distinct banks.
__host__ __device__ constexpr int padded_length(int length) { return (length + 2) / 4 * 4 + 2; }
// s_dt (CH rows of Lp floats), s_bc (Lp steps of BC_STRIDE floats), then s_u (the run of CH L elements of E, whole
// 16-byte units)
__host__ __device__ constexpr int shared_floats(int length) { return padded_length(length) * (CH + BC_STRIDE); }
__host__ __device__ constexpr int shared_bytes(int length, int elem_size) {
  return shared_floats(length) * (int)sizeof(float) + (CH * length * elem_size + 15) / 16 * 16;
}

// delta read as a flat run like u (contiguous along L and D; the step stride of L = 1 is never taken), else along D
// (edgemv.ops.scan_cuda.short_refusal)
__host__ __device__ inline bool delta_flat(const Params& p) {
  return (p.sdt_l == 1 || p.length == 1) && p.sdt_d == p.length;
}

// (channel of the block, step) of element e of the block's flat run of rows of length L; exact for e < 2^17 (the
// quotient's fraction lies at least 0.5 / L from an integer, the float error is below 1e-5)
__device__ __forceinline__ void row_step(int e, int length, float inv_length, int& row, int& t) {
  row = (int)(((float)e + 0.5f) * inv_length);
  t = e - row * length;
}

constexpr int GROUP = 8;  // steps the scan unrolls (a runtime loop over groups, then the last steps one by one)

template <typename E, bool SOFTPLUS, bool DT_FLAT>
__global__ void __launch_bounds__(WARP, sizeof(E) == 4 ? SHORT_MIN_BLOCKS_F32 : SHORT_MIN_BLOCKS)
scan_short_kernel(Params p) {
  constexpr int V = kVec<E>;
  constexpr int UW = CH * MAX_L / V / WARP;  // 8-byte words of u (or flat delta) per lane, at most
  constexpr int ROW_LANES = CH / V, ROW_STEPS = WARP / ROW_LANES;  // delta along D: lanes per step, steps per load
  constexpr int DTW = DT_FLAT ? UW : MAX_L / ROW_STEPS;             // 8-byte words of delta per lane, at most
  constexpr int BCW = MAX_L / 2;                                    // values of B and C per lane
  static_assert(WARP == 4 * N, "B and C along N: an access is two steps of 2 N values");
  static_assert(K == 4, "a lane's B and C of a step are one float4 each");
  EDGEMV_DYNAMIC_SHARED(float, smem);
  __shared__ float s_bias[CH];

  const int length = (int)p.length, lp = padded_length(length);
  const float inv_length = 1.0f / (float)length;
  float* s_dt = smem;                 // [channel][step] delta + bias, softplus'd
  float* s_bc = smem + CH * lp;       // [step] B_0..7, C_0..7, padding
  E* s_u = reinterpret_cast<E*>(smem + shared_floats(length));  // the run of u as loaded; y takes each u's place
  const int lane = threadIdx.x, ch = lane / SPLIT, part = lane % SPLIT;
  const int64_t bat = blockIdx.y;
  const int c0 = blockIdx.x * CH, rows_here = min(CH, (int)p.dim - c0);
  const int cc = min(c0 + ch, (int)p.dim - 1);  // lanes past the last channel compute a copy of it (never stored)
  // the block's run of u and of y: rows_here * L elements from channel c0 (scan_cuda.short_refusal: channel stride L,
  // 8-byte aligned starts), as whole 8-byte words and fewer than V elements after them
  const int elems = rows_here * length, words = elems / V, rest = elems - words * V;
  const E* u_run = static_cast<const E*>(p.u) + bat * p.su_b + (int64_t)c0 * length;
  E* y_run = static_cast<E*>(p.y) + bat * p.sy_b + (int64_t)c0 * length;
  const E* dt_bat = static_cast<const E*>(p.dt) + bat * p.sdt_b;

  // 1. every load of the block goes out before any is used (predicated loads: a select of a loaded value or zero
  // waited there for its load, and held both in registers; the stage below reads only the steps below L)
  uint2 uw[UW], dw[DTW];
  E u_rest = from_f<E>(0.0f), dt_rest = from_f<E>(0.0f);
#pragma unroll
  for (int i = 0; i < UW; ++i) {
    if (lane + i * WARP < words) uw[i] = reinterpret_cast<const uint2*>(u_run)[lane + i * WARP];
  }
  if (lane < rest) u_rest = u_run[words * V + lane];
  // delta along D: lane stages channels dc .. dc + V - 1 of steps dt_step + k ROW_STEPS
  const int dc = (lane % ROW_LANES) * V, dt_step = lane / ROW_LANES;
  float bias[DT_FLAT ? 1 : V];
  if constexpr (DT_FLAT) {
    const E* dt_run = dt_bat + (int64_t)c0 * length;
#pragma unroll
    for (int i = 0; i < DTW; ++i) {
      if (lane + i * WARP < words) dw[i] = reinterpret_cast<const uint2*>(dt_run)[lane + i * WARP];
    }
    if (lane < rest) dt_rest = dt_run[words * V + lane];
  } else {
    const E* q = dt_bat + c0 + dc + dt_step * p.sdt_l;
    const bool in = c0 + dc < p.dim;  // whole groups of V channels (the host checks that V divides D)
#pragma unroll
    for (int k = 0; k < DTW; ++k) {
      if (in && dt_step + k * ROW_STEPS < length) dw[k] = *reinterpret_cast<const uint2*>(q + k * ROW_STEPS * p.sdt_l);
    }
#pragma unroll
    for (int e = 0; e < V; ++e)
      bias[e] = p.has_bias ? param_f(p.bias, min(c0 + dc + e, (int)p.dim - 1), p.bias_dtype) : 0.0f;
  }
  const E* Bb = static_cast<const E*>(p.B) + bat * p.sB_b;
  const E* Cb = static_cast<const E*>(p.C) + bat * p.sC_b;
  const bool bc_along_n = p.sB_n == 1 && p.sC_n == 1;
  // B and C as raw bits: a value per word, or (bc_vec: rows along N 8-byte aligned, MambaVision's layout for every
  // variant but L and L2) 8-byte groups in word pairs, GB groups of a step side by side, SPA steps per access (the
  // value-per-lane loads took 25 accesses at L = 49, each behind 64-bit address arithmetic: about 360 of the
  // block's 2,940 instructions per lane by Nsight Compute's source counters; docs/benchmarks.md). The rows form
  // gained nothing from the same change (its loads are a smaller share of a longer sequence), so it keeps one way.
  constexpr int GB = 2 * N / V, SPA = WARP / GB, BCA = MAX_L / SPA;
  static_assert(2 * BCA <= BCW, "the 8-byte groups fit the words of the value-per-lane loads");
  const int64_t bc_sl_max = p.sB_l > p.sC_l ? p.sB_l : p.sC_l;
  const bool bc_vec = bc_along_n && reinterpret_cast<uintptr_t>(Bb) % 8 == 0
      && reinterpret_cast<uintptr_t>(Cb) % 8 == 0 && (p.sB_l * (int64_t)sizeof(E)) % 8 == 0
      && (p.sC_l * (int64_t)sizeof(E)) % 8 == 0 && (int64_t)(MAX_L + SPA) * bc_sl_max < (int64_t(1) << 31);
  const int bcv_val = (lane % GB) * V, bcv_step = lane / GB;
  uint32_t bc[BCW];
  if (bc_vec) {
    const int64_t sl = bcv_val < N ? p.sB_l : p.sC_l;
    const E* q = (bcv_val < N ? Bb + bcv_val : Cb + (bcv_val - N)) + bcv_step * sl;
    const int stride = SPA * (int)sl;  // 32-bit offsets (checked above)
#pragma unroll
    for (int k = 0; k < BCA; ++k) {
      if (bcv_step + k * SPA < length) {
        const uint2 w = *reinterpret_cast<const uint2*>(q + k * stride);
        bc[2 * k] = w.x;
        bc[2 * k + 1] = w.y;
      }
    }
  } else if (bc_along_n) {  // value lane % 16 (B_0..7, C_0..7) of steps 2 k + lane / 16
    const int val = lane % (2 * N), step = lane / (2 * N);
    const int64_t sl = val < N ? p.sB_l : p.sC_l;
    const E* q = (val < N ? Bb + val : Cb + (val - N)) + step * sl;
#pragma unroll
    for (int k = 0; k < BCW; ++k) {
      if (2 * k + step < length) bc[k] = to_bits(q[2 * k * sl]);
    }
  } else {  // steps lane and lane + 32, all 2 N values of each
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int t = lane + s * WARP;
#pragma unroll
      for (int n = 0; n < N; ++n) {
        if (t < length) {
          bc[s * 2 * N + n] = to_bits(Bb[t * p.sB_l + n * p.sB_n]);
          bc[s * 2 * N + N + n] = to_bits(Cb[t * p.sC_l + n * p.sC_n]);
        }
      }
    }
  }
  if (DT_FLAT && lane < CH)
    s_bias[lane] = p.has_bias ? param_f(p.bias, min(c0 + lane, (int)p.dim - 1), p.bias_dtype) : 0.0f;
  const float dskip = p.has_d ? param_f(p.D, cc, p.D_dtype) : 0.0f;
  float a[K], h[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    a[j] = param_f(p.A, cc * p.sA_d + (part * K + j) * p.sA_n, p.A_dtype) * rows::LOG2E;
    h[j] = 0.0f;
  }

  // 2. stage: u as loaded; delta as fp32 (flat: element by element to its (channel, step), its channel's bias from
  // s_bias; along D: a group of V channels of one step); B and C as fp32, as each lane loaded them
#pragma unroll
  for (int i = 0; i < UW; ++i) {
    if (lane + i * WARP < words) reinterpret_cast<uint2*>(s_u)[lane + i * WARP] = uw[i];
  }
  if (lane < rest) s_u[words * V + lane] = u_rest;
  if constexpr (DT_FLAT) {
    __syncwarp();  // s_bias
#pragma unroll
    for (int i = 0; i < DTW; ++i) {
      const int word = lane + i * WARP;
      if (word < words) {
        float x[V];
        rows::unpack<E>(dw[i], x);
#pragma unroll
        for (int e = 0; e < V; ++e) {
          int r, t;
          row_step(word * V + e, length, inv_length, r, t);
          s_dt[r * lp + t] = step_size<E, SOFTPLUS>(x[e] + s_bias[r]);
        }
      }
    }
    if (lane < rest) {
      int r, t;
      row_step(words * V + lane, length, inv_length, r, t);
      s_dt[r * lp + t] = step_size<E, SOFTPLUS>(to_f(dt_rest) + s_bias[r]);
    }
  } else if (c0 + dc < p.dim) {
#pragma unroll
    for (int k = 0; k < DTW; ++k) {
      const int t = dt_step + k * ROW_STEPS;
      if (t < length) {
        float x[V];
        rows::unpack<E>(dw[k], x);
#pragma unroll
        for (int e = 0; e < V; ++e) s_dt[(dc + e) * lp + t] = step_size<E, SOFTPLUS>(x[e] + bias[e]);
      }
    }
  }
  if (bc_vec) {  // V values of one step: a 128-bit (16-bit inputs) or 64-bit store
#pragma unroll
    for (int k = 0; k < BCA; ++k) {
      const int t = bcv_step + k * SPA;
      if (t < length) {
        float x[V];
        rows::unpack<E>(make_uint2(bc[2 * k], bc[2 * k + 1]), x);
        rows::store_f<V>(&s_bc[t * BC_STRIDE + bcv_val], x);
      }
    }
  } else if (bc_along_n) {
    const int val = lane % (2 * N), step = lane / (2 * N);
#pragma unroll
    for (int k = 0; k < BCW; ++k) {
      if (2 * k + step < length) s_bc[(2 * k + step) * BC_STRIDE + val] = bits_to_f<E>(bc[k]);
    }
  } else {
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int t = lane + s * WARP;
      if (t < length) {
#pragma unroll
        for (int v = 0; v < 2 * N; ++v) s_bc[t * BC_STRIDE + v] = bits_to_f<E>(bc[s * 2 * N + v]);
      }
    }
  }
  __syncwarp();

  // 3. scan: groups of GROUP steps unrolled, B and C read a step ahead (volatile: they stay ahead). y of step t goes
  // to u's place of step t: both lanes of the channel have read it, since the shuffle needs both sums.
  const float* dt_row = s_dt + ch * lp;
  E* u_row = s_u + ch * length;
  auto step = [&](int t, float d, const StepBC<K>& o) {
    const float x = to_f(u_row[t]);
    const float acc = scan_step(d, x, a, h, o);
    if ((t & 1) == part) u_row[t] = from_f<E>(fmaf(dskip, x, acc));
  };
  StepBC<K> ring[2];
  read_bc(s_bc, 0, part, ring[0]);
  int t0 = 0;
  for (; t0 + GROUP <= length; t0 += GROUP) {
    float d[GROUP];
#pragma unroll
    for (int i = 0; i < GROUP; i += 2) {
      const float2 dv = *reinterpret_cast<const float2*>(&dt_row[t0 + i]);
      d[i] = dv.x; d[i + 1] = dv.y;
    }
#pragma unroll
    for (int i = 0; i < GROUP; ++i) {
      read_bc(s_bc, t0 + i + 1, part, ring[(i + 1) & 1]);  // at most row L (s_bc has Lp > L rows)
      step(t0 + i, d[i], ring[i & 1]);
    }
  }
#pragma unroll 1
  for (int t = t0; t < length; ++t) {
    StepBC<K> o;
    read_bc(s_bc, t, part, o);
    step(t, dt_row[t], o);
  }
  __syncwarp();

  // 4. the run of y from u's places, as u was read
#pragma unroll
  for (int i = 0; i < UW; ++i) {
    const int word = lane + i * WARP;
    if (word < words) reinterpret_cast<uint2*>(y_run)[word] = reinterpret_cast<const uint2*>(s_u)[word];
  }
  if (lane < rest) y_run[words * V + lane] = s_u[words * V + lane];
}

}  // namespace short_form
