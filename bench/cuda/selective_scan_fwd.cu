// Forward selective scan for N = 8 states, CUDA C++: an experiment (bench/scan_cuda.py builds it with nvcc and
// loads it with ctypes; bench/scan_variants.py times it beside the Triton kernels). Correct, but slower than them
// on an H200 (docs/benchmarks.md, "A CUDA C++ kernel"). Same contract as edgemv.ops.selective_scan:
//   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,  y_t = C_t . h_t + D u_t,  y *= silu(z)
// with delta = softplus(delta + delta_bias) when asked; fp32 arithmetic for fp16/bf16/fp32 inputs; any strides.
//
// Why a staged design: the Triton kernels read every step's u, delta, B, C from global memory (16 scalar B/C loads
// per step and thread) and keep the sequence's arithmetic in one long dependent stream per warp. Here a block of
// CH channels walks the sequence in chunks of T steps; per chunk
//   1. the block loads u, delta (and B, C) of the chunk with coalesced loads (lanes along whichever of L or D is
//      contiguous), computes softplus once per element, and stages delta, u, B, C in shared memory as fp32;
//   2. each thread scans its channel's 8 states over the T steps reading only shared memory (broadcast reads of
//      B_t, C_t as float4), and writes y_t to shared memory;
//   3. the block stores y with coalesced stores (and applies silu(z)).
// The next chunk's global loads are issued into registers before step 2, so their latency hides behind the scan.

#include "scan_common.cuh"  // Params, to_f / from_f, ex2, softplus; N = 8

namespace {

constexpr int CH = 32;   // channels per block: CH * SPLIT threads scan, all THREADS load and store
constexpr int T = 32;    // steps per chunk
constexpr int THREADS = 128;
constexpr int PER_THREAD = CH * T / THREADS;  // elements of a (CH, T) tile each thread loads

// Element i of this thread's share of a (CH, T) tile: lanes run along the contiguous axis of the tensor.
__device__ __forceinline__ void tile_pos(int i, bool l_major, int& c, int& t) {
  int e = threadIdx.x + i * THREADS;
  if (l_major) { c = e / T; t = e % T; } else { c = e % CH; t = e / CH; }
}

template <typename E, int SPLIT>
__global__ void __launch_bounds__(THREADS) scan_n8_kernel(Params p) {
  __shared__ float s_dt[T][CH + 1];  // softplus'd delta, 0 past the end (decay 1, no input: state unchanged)
  __shared__ float s_u[T][CH + 1];
  __shared__ __align__(16) float s_B[T][N];
  __shared__ __align__(16) float s_C[T][N];
  __shared__ float s_y[T][CH + 1];
  constexpr int K = N / SPLIT;  // states per scanning thread
  constexpr int BC = 2 * N * T / THREADS;  // B and C elements each thread loads per chunk

  const int64_t b = blockIdx.y;
  const int c0 = blockIdx.x * CH;
  const int tid = threadIdx.x;
  const bool scanner = tid < CH * SPLIT;  // SPLIT threads per channel, K states each
  const int c = tid / SPLIT, part = tid % SPLIT;
  const int cc = min(c0 + c, (int)p.dim - 1);

  float a[K], h[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    a[j] = scanner ? param_f(p.A, cc * p.sA_d + (part * K + j) * p.sA_n, p.A_dtype) * 1.4426950408889634f : 0.0f;
    h[j] = 0.0f;
  }
  const float dskip = (scanner && part == 0 && p.has_d) ? param_f(p.D, cc, p.D_dtype) : 0.0f;  // D u added once per channel

  const E* up = static_cast<const E*>(p.u) + b * p.su_b;
  const E* dtp = static_cast<const E*>(p.dt) + b * p.sdt_b;
  const E* Bp = static_cast<const E*>(p.B) + b * p.sB_b;
  const E* Cp = static_cast<const E*>(p.C) + b * p.sC_b;
  const E* zp = static_cast<const E*>(p.z) + b * p.sz_b;
  E* yp = static_cast<E*>(p.y) + b * p.sy_b;
  // lanes along whichever axis is contiguous, for coalesced loads and stores
  const bool u_l = p.su_l == 1, dt_l = p.sdt_l == 1 || p.sdt_d != 1, y_l = p.sy_l == 1;
  const bool bc_n = p.sB_n == 1;  // B, C: states contiguous (the model's x_dbl view) or steps contiguous

  E ur[PER_THREAD], dr[PER_THREAD], bcr[BC];  // the next chunk's raw inputs, in flight during the scan
  auto load = [&](int t0) {
#pragma unroll
    for (int i = 0; i < PER_THREAD; ++i) {
      int ci, t;
      tile_pos(i, u_l, ci, t);
      ur[i] = (c0 + ci < p.dim && t0 + t < p.length) ? up[(c0 + ci) * p.su_d + (t0 + t) * p.su_l] : from_f<E>(0.0f);
      tile_pos(i, dt_l, ci, t);
      dr[i] = (c0 + ci < p.dim && t0 + t < p.length) ? dtp[(c0 + ci) * p.sdt_d + (t0 + t) * p.sdt_l]
                                                      : from_f<E>(0.0f);
    }
#pragma unroll
    for (int i = 0; i < BC; ++i) {
      int e = tid + i * THREADS, which = e / (N * T), r = e % (N * T);
      int n = bc_n ? r % N : r / T, t = bc_n ? r / N : r % T;
      const E* base = which ? Cp : Bp;
      int64_t sn = which ? p.sC_n : p.sB_n, sl = which ? p.sC_l : p.sB_l;
      bcr[i] = t0 + t < p.length ? base[n * sn + (t0 + t) * sl] : from_f<E>(0.0f);
    }
  };
  load(0);

  for (int t0 = 0; t0 < p.length; t0 += T) {
    // 1. stage the chunk: softplus once per element, everything as fp32 in shared memory
#pragma unroll
    for (int i = 0; i < PER_THREAD; ++i) {
      int ci, t;
      tile_pos(i, u_l, ci, t);
      s_u[t][ci] = to_f(ur[i]);
      tile_pos(i, dt_l, ci, t);
      float d = to_f(dr[i]);
      if (p.has_bias) d += param_f(p.bias, min(c0 + ci, (int)p.dim - 1), p.bias_dtype);
      if (p.softplus) d = softplus(d);
      s_dt[t][ci] = t0 + t < p.length ? d : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < BC; ++i) {
      int e = tid + i * THREADS, which = e / (N * T), r = e % (N * T);
      int n = bc_n ? r % N : r / T, t = bc_n ? r / N : r % T;
      (which ? s_C : s_B)[t][n] = to_f(bcr[i]);
    }
    __syncthreads();
    if (t0 + T < p.length) load(t0 + T);  // lands while this chunk is scanned
    // 2. scan: each scanning thread walks its K states over the chunk, reading shared memory only
    if (scanner) {
#pragma unroll 8
      for (int t = 0; t < T; ++t) {
        float d = s_dt[t][c], uu = s_u[t][c];
        float bb[K], kk[K];
#pragma unroll
        for (int j = 0; j < K; j += 2) {  // float2 reads of B_t, C_t (the same address across a warp: broadcast)
          float2 bv = *reinterpret_cast<const float2*>(&s_B[t][part * K + j]);
          float2 kv = *reinterpret_cast<const float2*>(&s_C[t][part * K + j]);
          bb[j] = bv.x; bb[j + 1] = bv.y; kk[j] = kv.x; kk[j + 1] = kv.y;
        }
        float du = d * uu, yv = dskip * uu;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          h[j] = fmaf(ex2(d * a[j]), h[j], du * bb[j]);
          yv = fmaf(h[j], kk[j], yv);
        }
#pragma unroll
        for (int off = SPLIT / 2; off > 0; off /= 2) yv += __shfl_xor_sync(0xffffffffu, yv, off);
        if (part == 0) s_y[t][c] = yv;
      }
    }
    __syncthreads();
    // 3. store y, applying silu(z) (the next staging writes only what the scan has finished reading)
#pragma unroll
    for (int i = 0; i < PER_THREAD; ++i) {
      int ci, t;
      tile_pos(i, y_l, ci, t);
      if (c0 + ci < p.dim && t0 + t < p.length) {
        float v = s_y[t][ci];
        if (p.has_z) {
          float zz = to_f(zp[(c0 + ci) * p.sz_d + (t0 + t) * p.sz_l]);
          v *= zz / (1.0f + __expf(-zz));
        }
        yp[(c0 + ci) * p.sy_d + (t0 + t) * p.sy_l] = from_f<E>(v);
      }
    }
  }
}

template <typename E>
void launch(const Params& p, int split, dim3 grid, cudaStream_t s) {
  if (split == 1) scan_n8_kernel<E, 1><<<grid, THREADS, 0, s>>>(p);
  else if (split == 2) scan_n8_kernel<E, 2><<<grid, THREADS, 0, s>>>(p);
  else scan_n8_kernel<E, 4><<<grid, THREADS, 0, s>>>(p);
}
}  // namespace

// dtype: 0 fp32, 1 fp16, 2 bf16; split: threads per channel in the scan (1, 2 or 4). Returns a cudaError_t.
// (the parameter block arrives as void*: a type from the unnamed namespace would give the function internal linkage)
extern "C" int edgemv_scan_n8(const void* params, int dtype, int split, int batch, void* stream) {
  const Params* p = static_cast<const Params*>(params);
  dim3 grid((unsigned)((p->dim + CH - 1) / CH), (unsigned)batch);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) launch<float>(*p, split, grid, s);
  else if (dtype == 1) launch<__half>(*p, split, grid, s);
  else launch<__nv_bfloat16>(*p, split, grid, s);
  return (int)cudaGetLastError();
}

extern "C" int edgemv_scan_params_size() { return (int)sizeof(Params); }
