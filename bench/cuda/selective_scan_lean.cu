// Forward selective scan for N = 8, CUDA C++: the "lean" version of the staged experiment
// (selective_scan_fwd.cu). Same contract as edgemv.ops.selective_scan; bench/scan_cuda.py builds and loads it.
//
// The staged kernel fixed the Triton kernels' occupancy and memory waits but executed 2.2x their instructions
// (Nsight Compute, docs/benchmarks.md): 64-bit index arithmetic per element, bounds checks everywhere, and three of
// four warps idle during the scan. Here:
//   - a block is one warp of 32 channels (no idle warps; __syncwarp instead of block barriers);
//   - each lane loads 32 elements of a (32 channels, 32 steps) chunk with 32-bit offsets from a warp-uniform base
//     pointer that moves once per chunk (one add per element), lanes along whichever axis is contiguous;
//   - bounds checks only in the last chunk and the last channel block (a separate, masked path);
//   - the next chunk's loads are in flight in registers while the current chunk is scanned;
//   - the scanning lane (one channel, 8 states) adds the bias and computes the softplus itself (once per
//     channel-step, as in the staged version, but no per-element channel lookup) and reads B_t, C_t as float4
//     broadcasts; y overwrites u in shared memory (the same lane reads and writes that slot).
// Its SASS for sm_90 (nvcc 13.0; 128 registers, no spills) executes about 103 instructions per channel-step in a full
// chunk (76 in the scan loop, 17 loading and staging, 10 storing) against the Triton kernels' ~120 and the staged
// kernel's ~270 (Nsight Compute), on one-warp blocks (640 warps at 160 x 196 batch 128 against Triton's 384).
// Not yet run on a GPU; its logic is tested on the CPU through cpu_emulation.h (tests/test_scan_cuda_emulation.py).

#ifdef EDGEMV_CPU_EMULATION  // g++ on the CPU, float only (cpu_emulation.h; tests/test_scan_cuda_emulation.py)
#include "cpu_emulation.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif
#include <stdint.h>

namespace {

constexpr int N = 8;      // states
constexpr int CH = 32;    // channels per block = lanes
constexpr int T = 32;     // steps per chunk
constexpr int ROW = CH + 1;  // shared-memory row (t) of CH channels, padded: conflict-free by rows and by columns

struct Params {  // the same layout as the staged kernel's (bench/scan_cuda.py fills it)
  const void *u, *dt, *B, *C, *z;
  const float *A, *D, *bias;
  void *y;
  int64_t dim, length;
  int64_t su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n, sB_b, sB_n, sB_l, sC_b, sC_n, sC_l;
  int64_t sz_b, sz_d, sz_l, sy_b, sy_d, sy_l;
  int has_d, has_z, has_bias, softplus;
};

template <typename E> __device__ __forceinline__ float to_f(E x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
#ifndef EDGEMV_CPU_EMULATION
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
#endif

template <typename E> __device__ __forceinline__ E from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
#ifndef EDGEMV_CPU_EMULATION
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
#endif

__device__ __forceinline__ float ex2(float x) {  // 2^x, one MUFU instruction (subnormal results flushed to 0)
#ifdef EDGEMV_CPU_EMULATION
  return std::exp2(x);
#else
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
#endif
}

__device__ __forceinline__ float softplus(float x) {
  // torch's softplus (threshold 20): max(x, 0) + log1p(v), v = exp(-|x|), log1p(v) = 2 atanh(v / (2 + v)) by its
  // odd series to the 17th power (error < 2e-9), as the Triton kernels
  float v = ex2(-fabsf(x) * 1.4426950408889634f);
  float s = __fdividef(v, 2.0f + v);
  float q = s * s;
  float p = 1.0f / 15.0f + q * (1.0f / 17.0f);
  p = 1.0f / 13.0f + q * p;
  p = 1.0f / 11.0f + q * p;
  p = 1.0f / 9.0f + q * p;
  p = 1.0f / 7.0f + q * p;
  p = 1.0f / 5.0f + q * p;
  p = 1.0f / 3.0f + q * p;
  p = 1.0f + q * p;
  return x <= 20.0f ? fmaxf(x, 0.0f) + 2.0f * s * p : x;
}

// One (CH, T) tile of a per-channel input as this lane's 32 elements. l_major (the tensor is contiguous along L):
// element i is (channel i, step lane); otherwise (channel lane, step i). base: the chunk's origin (uniform).
template <typename E, bool MASKED>
__device__ __forceinline__ void load_tile(const E* __restrict__ base, int lane_off, int step, bool l_major,
                                          int lane, int c_lim, int t_lim, E (&out)[T]) {
  int off = lane_off;  // a running 32-bit offset: one add per element (i * step per element was worse in SASS)
#pragma unroll
  for (int i = 0; i < T; ++i) {
    if (MASKED) {
      int c = l_major ? i : lane, t = l_major ? lane : i;
      out[i] = (c < c_lim && t < t_lim) ? base[off] : from_f<E>(0.0f);
    } else {
      out[i] = base[off];
    }
    off += step;
  }
}

template <typename E>
struct Chunk {  // this lane's share of a chunk's raw inputs, held in registers from its load to its staging
  E u[T], dt[T], b[N], c[N];
};

template <typename E, bool MASKED>
__device__ __forceinline__ void load_chunk(const Params& p, int64_t bat, int c0, int t0, int lane, bool u_l,
                                           bool dt_l, Chunk<E>& k) {
  const int c_lim = (int)p.dim - c0, t_lim = (int)p.length - t0;
  const E* u = static_cast<const E*>(p.u) + bat * p.su_b + c0 * p.su_d + t0 * p.su_l;
  load_tile<E, MASKED>(u, lane * (int)(u_l ? p.su_l : p.su_d), (int)(u_l ? p.su_d : p.su_l), u_l, lane, c_lim,
                       t_lim, k.u);
  const E* dt = static_cast<const E*>(p.dt) + bat * p.sdt_b + c0 * p.sdt_d + t0 * p.sdt_l;
  load_tile<E, MASKED>(dt, lane * (int)(dt_l ? p.sdt_l : p.sdt_d), (int)(dt_l ? p.sdt_d : p.sdt_l), dt_l, lane,
                       c_lim, t_lim, k.dt);
  // B and C: lane = step, the 8 states in registers
  const E* B = static_cast<const E*>(p.B) + bat * p.sB_b + t0 * p.sB_l + lane * p.sB_l;
  const E* C = static_cast<const E*>(p.C) + bat * p.sC_b + t0 * p.sC_l + lane * p.sC_l;
  const bool in = !MASKED || lane < t_lim;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    k.b[n] = in ? B[n * (int)p.sB_n] : from_f<E>(0.0f);
    k.c[n] = in ? C[n * (int)p.sC_n] : from_f<E>(0.0f);
  }
}

template <typename E>
__global__ void __launch_bounds__(CH) scan_n8_lean_kernel(Params p) {
  __shared__ float s_u[T * ROW];   // u of the chunk as [t][c]; the scan overwrites it with y
  __shared__ float s_dt[T * ROW];  // raw delta of the chunk, [t][c]
  __shared__ __align__(16) float s_B[T][N];
  __shared__ __align__(16) float s_C[T][N];

  const int64_t bat = blockIdx.y;
  const int c0 = blockIdx.x * CH;
  const int lane = threadIdx.x;
  const int cc = min(c0 + lane, (int)p.dim - 1);
  const bool full_c = c0 + CH <= p.dim;
  const int c_lim = (int)p.dim - c0;
  const bool has_z = p.has_z, softplus_on = p.softplus;
  const bool u_l = p.su_l == 1, dt_l = p.sdt_l == 1 || p.sdt_d != 1, y_l = p.sy_l == 1;

  float a[N], h[N];
#pragma unroll
  for (int n = 0; n < N; ++n) {
    a[n] = p.A[cc * p.sA_d + n * p.sA_n] * 1.4426950408889634f;
    h[n] = 0.0f;
  }
  const float dskip = p.has_d ? p.D[cc] : 0.0f;
  const float dbias = p.has_bias ? p.bias[cc] : 0.0f;
  // shared-memory index of this lane's element i of a tile: l_major -> (t = lane, c = i), else (t = i, c = lane)
  const int su0 = u_l ? lane * ROW : lane, sus = u_l ? 1 : ROW;
  const int sd0 = dt_l ? lane * ROW : lane, sds = dt_l ? 1 : ROW;
  const int sy0 = y_l ? lane * ROW : lane, sys = y_l ? 1 : ROW;

  Chunk<E> k;
  if (full_c && T <= p.length) load_chunk<E, false>(p, bat, c0, 0, lane, u_l, dt_l, k);
  else load_chunk<E, true>(p, bat, c0, 0, lane, u_l, dt_l, k);

  for (int t0 = 0; t0 < p.length; t0 += T) {
    const int t_lim = (int)p.length - t0;
    // 1. stage the chunk as fp32
    {
      int so = su0, sd = sd0;
#pragma unroll
      for (int i = 0; i < T; ++i) {
        s_u[so] = to_f(k.u[i]);
        s_dt[sd] = to_f(k.dt[i]);
        so += sus;
        sd += sds;
      }
    }
    {
      float bv[N], cv[N];
#pragma unroll
      for (int n = 0; n < N; ++n) { bv[n] = to_f(k.b[n]); cv[n] = to_f(k.c[n]); }
      *reinterpret_cast<float4*>(&s_B[lane][0]) = make_float4(bv[0], bv[1], bv[2], bv[3]);
      *reinterpret_cast<float4*>(&s_B[lane][4]) = make_float4(bv[4], bv[5], bv[6], bv[7]);
      *reinterpret_cast<float4*>(&s_C[lane][0]) = make_float4(cv[0], cv[1], cv[2], cv[3]);
      *reinterpret_cast<float4*>(&s_C[lane][4]) = make_float4(cv[4], cv[5], cv[6], cv[7]);
    }
    __syncwarp();
    // 2. the next chunk's loads go out now and land while this one is scanned
    if (t0 + T < p.length) {
      if (full_c && t0 + 2 * T <= p.length) load_chunk<E, false>(p, bat, c0, t0 + T, lane, u_l, dt_l, k);
      else load_chunk<E, true>(p, bat, c0, t0 + T, lane, u_l, dt_l, k);
    }
    // 3. scan: this lane's channel, 8 states, T steps (past the end: delta 0, the state does not change)
#pragma unroll 4
    for (int t = 0; t < T; ++t) {
      float d = s_dt[t * ROW + lane] + dbias;
      if (softplus_on) d = softplus(d);
      if (t >= t_lim) d = 0.0f;
      const float uu = s_u[t * ROW + lane];
      const float4 b0 = *reinterpret_cast<const float4*>(&s_B[t][0]);
      const float4 b1 = *reinterpret_cast<const float4*>(&s_B[t][4]);
      const float4 k0 = *reinterpret_cast<const float4*>(&s_C[t][0]);
      const float4 k1 = *reinterpret_cast<const float4*>(&s_C[t][4]);
      const float bb[N] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      const float kk[N] = {k0.x, k0.y, k0.z, k0.w, k1.x, k1.y, k1.z, k1.w};
      const float du = d * uu;
      float y = dskip * uu;
#pragma unroll
      for (int n = 0; n < N; ++n) {
        h[n] = fmaf(ex2(d * a[n]), h[n], du * bb[n]);
        y = fmaf(h[n], kk[n], y);
      }
      s_u[t * ROW + lane] = y;
    }
    __syncwarp();
    // 4. store y (and silu(z)), lanes along y's contiguous axis; the checks only in the last chunk or block
    {
      E* yb = static_cast<E*>(p.y) + bat * p.sy_b + c0 * p.sy_d + t0 * p.sy_l;
      const int ys = (int)(y_l ? p.sy_d : p.sy_l);
      int so = sy0, go = lane * (int)(y_l ? p.sy_l : p.sy_d);
      if (full_c && t_lim >= T && !has_z) {
#pragma unroll 8
        for (int i = 0; i < T; ++i) {
          yb[go] = from_f<E>(s_u[so]);
          so += sys;
          go += ys;
        }
      } else {
        const E* zb = static_cast<const E*>(p.z) + bat * p.sz_b + c0 * p.sz_d + t0 * p.sz_l;
        const int zs = (int)(y_l ? p.sz_d : p.sz_l);
        int zo = lane * (int)(y_l ? p.sz_l : p.sz_d);
        for (int i = 0; i < T; ++i) {
          const int c = y_l ? i : lane, t = y_l ? lane : i;
          if (c < c_lim && t < t_lim) {
            float v = s_u[so];
            if (has_z) {
              const float zz = to_f(zb[zo]);
              v *= zz / (1.0f + __expf(-zz));
            }
            yb[go] = from_f<E>(v);
          }
          so += sys;
          go += ys;
          zo += zs;
        }
      }
    }
    __syncwarp();  // the next staging overwrites s_u
  }
}

}  // namespace

#ifdef EDGEMV_CPU_EMULATION
// fp32 only; runs the grid on the CPU (blocks one after another, one std::thread per lane)
extern "C" int edgemv_scan_n8_lean_cpu(const void* params, int batch) {
  const Params* p = static_cast<const Params*>(params);
  emulate_launch(dim3{(unsigned)((p->dim + CH - 1) / CH), (unsigned)batch, 1}, CH,
                 [p] { scan_n8_lean_kernel<float>(*p); });
  return 0;
}
#else
// dtype: 0 fp32, 1 fp16, 2 bf16. Returns a cudaError_t. (void* parameter block: see selective_scan_fwd.cu.)
extern "C" int edgemv_scan_n8_lean(const void* params, int dtype, int batch, void* stream) {
  const Params* p = static_cast<const Params*>(params);
  dim3 grid((unsigned)((p->dim + CH - 1) / CH), (unsigned)batch);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) scan_n8_lean_kernel<float><<<grid, CH, 0, s>>>(*p);
  else if (dtype == 1) scan_n8_lean_kernel<__half><<<grid, CH, 0, s>>>(*p);
  else scan_n8_lean_kernel<__nv_bfloat16><<<grid, CH, 0, s>>>(*p);
  return (int)cudaGetLastError();
}
#endif

extern "C" int edgemv_scan_params_size() { return (int)sizeof(Params); }
