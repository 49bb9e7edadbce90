// How fast can a GPU do the N = 8 scan's arithmetic alone? A standalone program (no edgemv code, no global loads in
// the scan loops) that measures, on the card it runs on:
//   1. the rate of MUFU.EX2 and of FFMA per SM and clock (independent chains, many warps);
//   2. the scan's arithmetic at the work of MambaVision-T level 2 (160 channels x L 196) at a batch, laid out as the
//      rows form (edgemv/ops/cuda/scan_rows.cuh: one-warp blocks of 16 channels, 2 lanes per channel with 4 states,
//      B and C read from shared memory as float4, partial y added with one shuffle per step), with parts left out
//      or replaced: what is left is a ceiling for any kernel of that design.
// Per state and step the scan needs 2^(delta a) (MUFU.EX2, or a polynomial on the FMA pipe), delta u B, the state's
// multiply-add and C h: a lower bound of 5 instructions, 1 of them on the MUFU pipe.
//
//   nvcc -arch=sm_90 -O3 -o /tmp/scan_ceiling bench/cuda/scan_ceiling.cu && /tmp/scan_ceiling [batch ...]
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { \
  std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); std::exit(1); } } while (0)

__device__ __forceinline__ float ex2(float x) {
  float r;
  asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ float lg2(float x) {
  float r;
  asm volatile("lg2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

// 2^x for x <= 0 on the FMA pipe: x = i + f, |f| <= 1/2, 2^f by a degree-4 polynomial (constant term exactly 1),
// 2^i added to the exponent bits; x below -126 clamped (2^-126 is 0 for the scan). 8 instructions.
__device__ __forceinline__ float ex2_poly(float x) {
  x = fmaxf(x, -126.0f);
  const float t = x + 12582912.0f;  // 1.5 * 2^23: round to the nearest integer, held in t's low mantissa bits
  const float f = x - (t - 12582912.0f);
  float p = fmaf(fmaf(fmaf(9.618129e-3f, f, 5.550411e-2f), f, 2.402265e-1f), f, 6.931472e-1f);
  p = fmaf(p, f, 1.0f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
}

// softplus on the FMA pipe: max(x, 0) + log1p(2^(-|x| log2 e)), 2^ by a degree-5 polynomial (2e-7), log1p(v) =
// v q(v) with q of degree 6 (9e-7 on [0, 1]; least squares on Chebyshev nodes). About 20 instructions, no MUFU.
__device__ __forceinline__ float softplus_poly(float x) {
  float z = fmaxf(-fabsf(x) * 1.4426950408889634f, -126.0f);
  const float t = z + 12582912.0f;
  const float f = z - (t - 12582912.0f);
  float p = fmaf(fmaf(fmaf(fmaf(fmaf(1.3390867e-3f, f, 9.666374e-3f), f, 5.550357e-2f), f, 2.4022348e-1f), f,
                      6.931472e-1f), f, 1.0f);
  const float v = __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
  float q = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(1.4202826e-2f, v, -6.658805e-2f), v, 1.4943458e-1f), v, -2.3514864e-1f), v,
                           3.3112052e-1f), v, -4.998719e-1f), v, 9.9999875e-1f);
  return fmaf(v, q, fmaxf(x, 0.0f));
}

// per SM: cycles of its blocks (first start to last end, from clock64), written by the blocks
__device__ unsigned long long g_start[1024], g_end[1024];

__device__ __forceinline__ unsigned smid() {
  unsigned r;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(r));
  return r;
}
__device__ __forceinline__ void mark_start() {
  if (threadIdx.x == 0) atomicMin(&g_start[smid()], (unsigned long long)clock64());
}
__device__ __forceinline__ void mark_end() {
  __syncthreads();
  if (threadIdx.x == 0) atomicMax(&g_end[smid()], (unsigned long long)clock64());
}

// 1. rates: ITER x 8 independent chains per thread
template <bool MUFU>
__global__ void rate_kernel(float* out, int iters) {
  mark_start();
  float v[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = -1e-3f * (threadIdx.x + j);
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = MUFU ? ex2(v[j]) - 1.5f : fmaf(v[j], 0.999f, -1e-4f);
  }
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) s += v[j];
  mark_end();
  if (s == 12345.0f) out[threadIdx.x] = s;  // keeps the loop
}

// 2. the scan's arithmetic, rows-form layout. POLY: states of 4 whose 2^x is ex2_poly; SHFL: the per-step shuffle;
// SMEM: B and C from shared memory (else from registers, changed per step by one FFMA each); SP: a softplus every
// other step (the rows form's share: each lane computes delta for 16 of the 512 elements per chunk), 1 with 2 MUFU
// operations, 2 on the FMA pipe (softplus_poly)
constexpr int STEPS = 28;  // unrolled steps per loop (196 = 7 x 28)
template <int POLY, bool SHFL, bool SMEM, int SP = 0>
__global__ void __launch_bounds__(32, 12) scan_core(const float* A, float* out, int length) {
  mark_start();
  __shared__ __align__(16) float4 s_bc[STEPS * 5];
  const int lane = threadIdx.x, part = lane & 1;
  for (int i = lane; i < STEPS * 5; i += 32) s_bc[i] = make_float4(0.1f * i, -0.2f, 0.3f, 0.01f * i);
  __syncwarp();
  float a[4], h[4], rb[4], rc[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    a[j] = A[(blockIdx.x * 16 + lane / 2) * 8 + part * 4 + j] * 1.4426950408889634f;
    h[j] = 0.0f;
    rb[j] = 0.1f * j;
    rc[j] = 0.2f * j;
  }
  float d = 0.01f + 1e-3f * lane, u = 1.0f - 1e-3f * lane, ysum = 0.0f;
  for (int t0 = 0; t0 < length; t0 += STEPS) {
    const float chunk_x = -1e-3f * t0;
#pragma unroll
    for (int i = 0; i < STEPS; ++i) {
      float b[4], c[4];
      if (SMEM) {
        const float4 bv = s_bc[i * 5 + part], cv = s_bc[i * 5 + 2 + part];
        b[0] = bv.x; b[1] = bv.y; b[2] = bv.z; b[3] = bv.w;
        c[0] = cv.x; c[1] = cv.y; c[2] = cv.z; c[3] = cv.w;
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) { rb[j] = fmaf(rb[j], 0.5f, 0.25f); b[j] = rb[j]; c[j] = rc[j]; }
      }
      d = fmaf(d, 0.999f, 1e-3f);  // stands for the step's delta
      // a softplus of an element of the chunk (off the chain of d, as the real staging)
      if (SP && i % 2 == 0) {
        const float xs = fmaf(u, (float)i, chunk_x);
        d = fmaf(1e-6f, SP == 1 ? lg2(1.0f + ex2(xs)) : softplus_poly(xs), d);
      }
      const float du = d * u;
      float acc = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float e = j < POLY ? ex2_poly(d * a[j]) : ex2(d * a[j]);
        h[j] = fmaf(e, h[j], du * b[j]);
        acc = fmaf(h[j], c[j], acc);
      }
      if (SHFL) acc += __shfl_xor_sync(0xffffffffu, acc, 1);
      ysum += acc;  // stands for the store of y
    }
  }
  mark_end();
  out[(blockIdx.y * gridDim.x + blockIdx.x) * 32 + lane] = ysum;
}

struct Timer {
  cudaEvent_t a, b;
  Timer() { CHECK(cudaEventCreate(&a)); CHECK(cudaEventCreate(&b)); }
};

int num_sms() {
  int n;
  CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
  return n;
}

// device time of `launch`: 20 launches back to back between two events (as a CUDA graph's replays: no launch
// latency in the time), best of 5 after a warm-up; mean SM cycles (first block's start to last block's end on each
// SM) of the last single launch
template <typename F>
void time_it(F launch, float& us, double& cycles) {
  static Timer tm;
  const int sms = num_sms();
  float best = 1e30f;
  for (int r = 0; r < 6; ++r) {
    CHECK(cudaEventRecord(tm.a));
    for (int k = 0; k < 20; ++k) launch();
    CHECK(cudaEventRecord(tm.b));
    CHECK(cudaEventSynchronize(tm.b));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, tm.a, tm.b));
    if (r > 0 && ms / 20 < best) best = ms / 20;
  }
  {
    unsigned long long init_start[1024], init_end[1024];
    for (int i = 0; i < 1024; ++i) { init_start[i] = ~0ull; init_end[i] = 0; }
    CHECK(cudaMemcpyToSymbol(g_start, init_start, sizeof(init_start)));
    CHECK(cudaMemcpyToSymbol(g_end, init_end, sizeof(init_end)));
    launch();
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpyFromSymbol(init_start, g_start, sizeof(init_start)));
    CHECK(cudaMemcpyFromSymbol(init_end, g_end, sizeof(init_end)));
    double sum = 0;
    int n = 0;
    for (int i = 0; i < sms; ++i)
      if (init_end[i]) { sum += (double)(init_end[i] - init_start[i]); ++n; }
    cycles = n ? sum / n : 0;
  }
  CHECK(cudaGetLastError());
  us = best * 1e3f;
}

int main(int argc, char** argv) {
  const int sms = num_sms();
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, sms);
  float* out;
  float* A;
  CHECK(cudaMalloc(&out, 64 << 20));
  CHECK(cudaMalloc(&A, 320 * 8 * sizeof(float)));
  {
    float h[320 * 8];
    for (int i = 0; i < 320 * 8; ++i) h[i] = -(1.0f + (i % 8)) * (1.0f + 0.001f * (i / 8));
    CHECK(cudaMemcpy(A, h, sizeof(h), cudaMemcpyHostToDevice));
  }

  std::printf("\n| pipe | ops per SM and clock | clock (GHz, from SM cycles / time) |\n|---|---|---|\n");
  for (int mufu = 1; mufu >= 0; --mufu) {
    const int blocks = sms * 8, threads = 256, iters = 4096;
    float us;
    double cyc;
    if (mufu) time_it([&] { rate_kernel<true><<<blocks, threads>>>(out, iters); }, us, cyc);
    else time_it([&] { rate_kernel<false><<<blocks, threads>>>(out, iters); }, us, cyc);
    const double ops = (double)blocks * threads * iters * 8;
    std::printf("| %s | %.1f | %.2f |\n", mufu ? "MUFU.EX2" : "FFMA", ops / sms / cyc, cyc / (us * 1e3));
  }

  int batches[8] = {128, 256}, nb = 2;
  if (argc > 1) { nb = 0; for (int i = 1; i < argc && nb < 8; ++i) batches[nb++] = std::atoi(argv[i]); }
  const int length = 196, dim = 160;
  std::printf("\n| scan arithmetic, 160 x 196 | batch | blocks per SM | time (us) | state-steps per SM and clock | "
              "decay MUFU ops per SM and clock | %% of copy at 4,181 GB/s if this were the kernel |\n"
              "|---|---|---|---|---|---|---|\n");
  for (int bi = 0; bi < nb; ++bi) {
    const int batch = batches[bi];
    const dim3 grid(dim / 16, batch);
    // cap: one-warp blocks per SM allowed (dynamic shared memory that only limits residency; 0: as registers allow;
    // 12 is the rows form's own limit, from its 165 registers)
    struct V { const char* name; int poly, cap; void (*k)(const float*, float*, int); };
    const V variants[] = {
        {"B, C in registers, no shuffle (5 per state and step)", 0, 0, scan_core<0, false, false>},
        {"+ shuffle, B and C from shared memory (the rows form's arithmetic)", 0, 0, scan_core<0, true, true>},
        {"+ the softplus's MUFU share (the rows form's MUFU load)", 0, 0, scan_core<0, true, true, 1>},
        {"the same, at most 12 blocks per SM", 0, 12, scan_core<0, true, true, 1>},
        {"the same, at most 8 blocks per SM", 0, 8, scan_core<0, true, true, 1>},
        {"rows arithmetic + softplus on the FMA pipe", 0, 0, scan_core<0, true, true, 2>},
        {"registers, no shuffle + softplus on the FMA pipe", 0, 0, scan_core<0, false, false, 2>},
        {"rows arithmetic + softplus, 1 of 4 exp2 a polynomial", 1, 0, scan_core<1, true, true, 1>},
        {"rows arithmetic + softplus, 2 of 4 exp2 a polynomial", 2, 0, scan_core<2, true, true, 1>},
    };
    // bytes the issue counts: u, delta, y (2 bytes each) and B, C (8 states) per step, fp16
    const double bytes = (double)batch * length * (3.0 * dim * 2 + 2.0 * 8 * 2);
    for (const V& v : variants) {
      float us;
      double cyc;
      size_t dyn = 0;
      if (v.cap) {
        cudaFuncAttributes fa;
        CHECK(cudaFuncGetAttributes(&fa, v.k));
        dyn = (size_t)(prop.sharedMemPerMultiprocessor / (v.cap + 0.5)) - fa.sharedSizeBytes - 1024;
        CHECK(cudaFuncSetAttribute(v.k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn));
      }
      int resident;
      CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, v.k, 32, dyn));
      time_it([&] { v.k<<<grid, 32, dyn>>>(A, out, length); }, us, cyc);
      const double state_steps = (double)batch * dim * length * 8;
      const double mufu = (double)batch * dim * length * (8 - 2 * v.poly);
      std::printf("| %s | %d | %d | %.1f | %.1f | %.1f | %.1f%% |\n", v.name, batch, resident, us,
                  state_steps / sms / cyc, mufu / sms / cyc, 100.0 * bytes / (us * 1e-6) / 4.181e12);
    }
  }
  return 0;
}
