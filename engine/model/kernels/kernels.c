/*
 * Native CPU kernels for a forward pass that computes on a GGUF file's quantized weights and
 * whose per-row results do not depend on how many rows a pass holds ("batch-invariant").
 *
 * Plain C11, no Python or torch headers; built by build.py. Two code paths:
 *   - AVX2 + FMA + F16C intrinsics (when the compiler targets them and SEK_FORCE_SCALAR is
 *     not defined),
 *   - a portable scalar path that computes every output with the same floating-point
 *     operations in the same order, so both give the same bits (tests build both and compare).
 * Must be compiled with -ffp-contract=off (build.py does): the scalar path writes a*b+c where
 * it means two roundings and fmaf() where it means one, and the compiler may not fuse them.
 *
 * Invariance rules, for every function:
 *   - OpenMP threads split only output rows, columns, or (row, head) pairs (attention hands
 *     out runs of heads that share a KV head); no reduction is split across threads, so the
 *     thread count, and which thread computes what, never changes a result.
 *   - every output element is computed by one fixed sequence of float operations that depends
 *     only on the element's own inputs (its activation row, weight row, cache contents), never
 *     on M, the tile it fell in, or which micro-kernel computed it. Integer partial sums are
 *     exact and are grouped freely; float partial results that wait in memory between
 *     K-chunks or key blocks come back with the same bits.
 *   - float reductions run in 8 "lanes" (lane l takes the terms with index = l mod 8, in
 *     increasing order, by fused multiply-add), then fold as
 *     ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Padding terms (zeros past the end) leave a lane
 *     unchanged: a lane starts at +0 and a round-to-nearest sum is -0 only if both addends
 *     are, so adding +-0 never changes a lane's bits.
 *
 * Exported (each documented where it is defined):
 *   sek_quantize_rows_q8, sek_q8_row_bytes   a. activations to int8 blocks of 32
 *   sek_matmul, sek_matmul_q8                b. y = x @ W^T (+ bias), W in its GGUF bytes
 *   sek_attention                            c. causal attention, grouped KV heads
 *   sek_rms_norm                             d.
 *   sek_silu_mul                             e.
 *   sek_get_rows                             f. dequantized rows (token embeddings)
 *   sek_forward                              g. a whole decoder pass composed of a-f
 *   sek_simd, sek_openmp, sek_exp            how it was built; the exp used by c and e
 * All sizes are int64_t, thread counts int. Functions return 0 or a negative error code
 * (SEK_ERR_*), never abort.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && !defined(SEK_FORCE_SCALAR)
#define SEK_SIMD 1
#include <immintrin.h>
#else
#define SEK_SIMD 0
#endif

#define SEK_INLINE static inline __attribute__((always_inline))
#define SEK_SCALAR_ONLY __attribute__((unused)) /* unused where the AVX2 path is compiled */

/* Error codes. */
#define SEK_OK 0
#define SEK_ERR_TYPE (-1)  /* unsupported ggml type for this operation */
#define SEK_ERR_SHAPE (-2) /* a size is not a multiple of the block, or out of range */
#define SEK_ERR_NOMEM (-3) /* scratch allocation failed */
#define SEK_ERR_ARG (-4)   /* other bad argument (null pointer, index out of range, ...) */

/* ggml type ids (gguf.GGMLQuantizationType). */
enum {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30
};

/* Block size (values) and block bytes of a ggml type; 0 if unsupported. */
static int type_info(int t, int64_t *blk, int64_t *bytes) {
    int64_t b, s;
    switch (t) {
    case T_F32: b = 1; s = 4; break;
    case T_F16: b = 1; s = 2; break;
    case T_BF16: b = 1; s = 2; break;
    case T_Q4_0: b = 32; s = 18; break;
    case T_Q4_1: b = 32; s = 20; break;
    case T_Q5_0: b = 32; s = 22; break;
    case T_Q5_1: b = 32; s = 24; break;
    case T_Q8_0: b = 32; s = 34; break;
    case T_Q4_K: b = 256; s = 144; break;
    case T_Q5_K: b = 256; s = 176; break;
    case T_Q6_K: b = 256; s = 210; break;
    default: return 0;
    }
    if (blk) *blk = b;
    if (bytes) *bytes = s;
    return 1;
}

static int is_dense(int t) { return t == T_F32 || t == T_F16 || t == T_BF16; }

/* ------------------------------------------------------------------------------------------
 * Shared scalar helpers (used by both paths where a value is computed once per row/block).
 * ---------------------------------------------------------------------------------------- */

/* IEEE half -> float, exact. */
static inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    float f;
    if (ex == 0) {
        f = (float)man * 5.9604644775390625e-08f; /* man * 2^-24, exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (ex == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((ex + 112u) << 23) | (man << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

static inline float bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float rd_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

static inline uint16_t rd_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* The fixed fold of 8 lanes. */
static inline float tree8(const float a[8]) {
    float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
    float t0 = s0 + s2, t1 = s1 + s3;
    return t0 + t1;
}

/* exp(x): Cody-Waite reduction by ln 2 and a degree-5 polynomial (the Cephes expf scheme),
 * all steps explicit so the vector version below computes the same bits. Accurate to ~1-2
 * ulp on [-87, 88]; returns 0 below -87 and exp(88) above 88. Finite inputs only. */
#define EXP_LO (-87.0f)
#define EXP_HI (88.0f)
#define EXP_LOG2E 1.44269504088896341f
#define EXP_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer (nearest even) */
#define EXP_C1 0.693359375f
#define EXP_C2 (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_s(float x0) {
    float x = x0 < EXP_LO ? EXP_LO : x0;
    x = x > EXP_HI ? EXP_HI : x;
    float t = x * EXP_LOG2E;
    float n = (t + EXP_MAGIC) - EXP_MAGIC;
    float r = fmaf(n, -EXP_C1, x);
    r = fmaf(n, -EXP_C2, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    float z = r * r;
    float y = fmaf(p, z, r);
    y = y + 1.0f;
    int32_t ni = (int32_t)n;
    uint32_t bits = (uint32_t)(ni + 127) << 23;
    float sc;
    memcpy(&sc, &bits, 4);
    y = y * sc;
    return x0 < EXP_LO ? 0.0f : y;
}

/* silu(g) * u = g / (1 + exp(-g)) * u */
static inline float silu_mul_s(float g, float u) {
    float e = exp_s(-g);
    float s = g / (1.0f + e);
    return s * u;
}

#if SEK_SIMD
SEK_INLINE float hsum_tree(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                 /* s0..s3 */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s)); /* t0 = s0+s2, t1 = s1+s3 */
    __m128 u = _mm_add_ss(t, _mm_movehdup_ps(t));  /* t0 + t1 */
    return _mm_cvtss_f32(u);
}

/* Eight hsum_tree folds at once: lane j of the result is hsum_tree(a[j]), bit for bit (the
 * same additions on the same pairs). */
SEK_INLINE __m256 hsum8_tree(const __m256 a[8]) {
    __m256 s04 = _mm256_add_ps(_mm256_permute2f128_ps(a[0], a[4], 0x20), _mm256_permute2f128_ps(a[0], a[4], 0x31));
    __m256 s15 = _mm256_add_ps(_mm256_permute2f128_ps(a[1], a[5], 0x20), _mm256_permute2f128_ps(a[1], a[5], 0x31));
    __m256 s26 = _mm256_add_ps(_mm256_permute2f128_ps(a[2], a[6], 0x20), _mm256_permute2f128_ps(a[2], a[6], 0x31));
    __m256 s37 = _mm256_add_ps(_mm256_permute2f128_ps(a[3], a[7], 0x20), _mm256_permute2f128_ps(a[3], a[7], 0x31));
    __m256 t0145 = _mm256_add_ps(_mm256_shuffle_ps(s04, s15, 0x44), _mm256_shuffle_ps(s04, s15, 0xEE));
    __m256 t2367 = _mm256_add_ps(_mm256_shuffle_ps(s26, s37, 0x44), _mm256_shuffle_ps(s26, s37, 0xEE));
    return _mm256_add_ps(_mm256_shuffle_ps(t0145, t2367, 0x88), _mm256_shuffle_ps(t0145, t2367, 0xDD));
}

/* A tile's outputs from their lanes: y[r * ldy + c] = hsum_tree(lanes of (r, c)) (+ bias[c])
 * for rows < rows and columns < nn, the lanes of (r, c) at facc + (r * NT + c) * 8; eight
 * columns at a time through hsum8_tree (a tile of a short K spent ~9% of its time here). */
static void fold_tile(const float *facc, int64_t rows, int64_t NT, int64_t nn, const float *bias,
                      float *y, int64_t ldy) {
    for (int64_t r = 0; r < rows; r++) {
        const float *f = facc + r * NT * 8;
        float *yr = y + r * ldy;
        int64_t c = 0;
        for (; c + 8 <= nn; c += 8) {
            __m256 a[8];
            for (int j = 0; j < 8; j++) a[j] = _mm256_loadu_ps(f + (c + j) * 8);
            __m256 v = hsum8_tree(a);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            _mm256_storeu_ps(yr + c, v);
        }
        for (; c < nn; c++) {
            float v = hsum_tree(_mm256_loadu_ps(f + c * 8));
            if (bias) v = v + bias[c];
            yr[c] = v;
        }
    }
}

SEK_INLINE __m256 exp_v(__m256 x0) {
    const __m256 lo = _mm256_set1_ps(EXP_LO), hi = _mm256_set1_ps(EXP_HI);
    __m256 x = _mm256_min_ps(_mm256_max_ps(x0, lo), hi);
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E));
    const __m256 magic = _mm256_set1_ps(EXP_MAGIC);
    __m256 n = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_C1), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_C2), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_fmadd_ps(p, z, r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvttps_epi32(n);
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
    __m256 under = _mm256_cmp_ps(x0, lo, _CMP_LT_OQ);
    return _mm256_andnot_ps(under, y);
}

SEK_INLINE __m256 silu_mul_v(__m256 g, __m256 u) {
    __m256 e = exp_v(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f))); /* -g, as the scalar path */
    __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(s, u);
}
#endif

static inline int clamp_threads(int n) { return n < 1 ? 1 : n; }

/* Threads worth waking for `work` operations: a parallel region costs its fork and join,
 * and on a machine whose other cores are busy a join can wait a whole scheduler slice for a
 * descheduled thread, so small calls (a one-token pass's norms, SiLU, quantization) run on
 * the calling thread. Which thread computes what never changes a result's bits. */
#define SEK_WORK_PER_THREAD (1 << 17)
static inline int threads_for(int n, double work) {
    n = clamp_threads(n);
    double most = work / SEK_WORK_PER_THREAD;
    return most < 1.0 ? 1 : most < n ? (int)most : n;
}

/* ------------------------------------------------------------------------------------------
 * Small informational exports.
 * ---------------------------------------------------------------------------------------- */

/* 1 if the AVX2 path was compiled in, 0 for the scalar path. */
int sek_simd(void) { return SEK_SIMD; }

/* The _OPENMP version this was compiled with, 0 without OpenMP. */
int sek_openmp(void) {
#ifdef _OPENMP
    return _OPENMP;
#else
    return 0;
#endif
}

/* exp as used by attention and silu_mul, elementwise over n floats (for tests). */
int sek_exp(const float *x, float *y, int64_t n) {
    if (!x || !y || n < 0) return SEK_ERR_ARG;
    int64_t i = 0;
#if SEK_SIMD
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_v(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = exp_s(x[i]);
    return SEK_OK;
}

/* ------------------------------------------------------------------------------------------
 * a. quantize_rows_q8
 *
 * Activations are quantized per row in blocks of 32: d = max|x| / 127, q = round(x / d)
 * (round half to even; q = 0 where d = 0). Blocks are stored in groups of 8 (256 values) in
 * an interleaved order: group byte q[t*32 + j*4 + e] is value 4t+e of block j, so one 32-byte
 * load holds 4 values of each of 8 blocks, and an int32 lane j of a vector product belongs to
 * block j alone. Each group also carries, per block j: d[j], s[j] = sum of the block's q,
 * sf[j] = (float)s[j], and sh[2j], sh[2j+1] = the sums of its first and second 16 values.
 * A row has ceil(K/256) groups; blocks past K/32 in the last group are all zero.
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int8_t q[256];
    float d[8];
    float sf[8];
    int32_t s[8];
    int16_t sh[16];
} q8g; /* 384 bytes */

/* Bytes of one quantized row of K values (K a multiple of 32), 0 otherwise. */
int64_t sek_q8_row_bytes(int64_t K) {
    if (K <= 0 || K % 32) return 0;
    return ((K / 32 + 7) / 8) * (int64_t)sizeof(q8g);
}

SEK_SCALAR_ONLY static void quantize_group_scalar(const float *x, int64_t nblk, q8g *o) {
    memset(o, 0, sizeof(*o));
    for (int j = 0; j < 8 && j < nblk; j++) {
        const float *b = x + 32 * j;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            float a = fabsf(b[i]);
            amax = a > amax ? a : amax;
        }
        float d = amax / 127.0f;
        int32_t lo = 0, hi = 0;
        for (int i = 0; i < 32; i++) {
            int32_t q = d != 0.0f ? (int32_t)nearbyintf(b[i] / d) : 0;
            o->q[(i / 4) * 32 + j * 4 + (i % 4)] = (int8_t)q;
            if (i < 16) lo += q; else hi += q;
        }
        o->d[j] = d;
        o->s[j] = lo + hi;
        o->sf[j] = (float)(lo + hi);
        o->sh[2 * j] = (int16_t)lo;
        o->sh[2 * j + 1] = (int16_t)hi;
    }
}

#if SEK_SIMD
/* Transpose 8x8 int32: r[j] lane t -> o[t] lane j. */
SEK_INLINE void transpose8_epi32(__m256i r[8]) {
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

SEK_INLINE int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static void quantize_group_simd(const float *x, int64_t nblk, q8g *o) {
    __m256i r[8];
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int j = 0; j < 8; j++) {
        if (j >= nblk) {
            r[j] = _mm256_setzero_si256();
            o->d[j] = 0.0f; o->s[j] = 0; o->sf[j] = 0.0f; o->sh[2 * j] = 0; o->sh[2 * j + 1] = 0;
            continue;
        }
        const float *b = x + 32 * j;
        __m256 v0 = _mm256_loadu_ps(b), v1 = _mm256_loadu_ps(b + 8);
        __m256 v2 = _mm256_loadu_ps(b + 16), v3 = _mm256_loadu_ps(b + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        __m256i i0, i1, i2, i3;
        if (d != 0.0f) {
            const __m256 dv = _mm256_set1_ps(d);
#define RNE(v) _mm256_cvtps_epi32(_mm256_round_ps(_mm256_div_ps(v, dv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
            i0 = RNE(v0);
            i1 = RNE(v1);
            i2 = RNE(v2);
            i3 = RNE(v3);
#undef RNE
        } else {
            i0 = i1 = i2 = i3 = _mm256_setzero_si256();
        }
        int32_t lo = hsum_epi32(_mm256_add_epi32(i0, i1)), hi = hsum_epi32(_mm256_add_epi32(i2, i3));
        /* pack 32 int32 -> 32 int8 in order */
        __m256i p01 = _mm256_packs_epi32(i0, i1); /* 0-3,8-11 | 4-7,12-15 (per lane) */
        __m256i p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        r[j] = p;
        o->d[j] = d;
        o->s[j] = lo + hi;
        o->sf[j] = (float)(lo + hi);
        o->sh[2 * j] = (int16_t)lo;
        o->sh[2 * j + 1] = (int16_t)hi;
    }
    transpose8_epi32(r);
    for (int t = 0; t < 8; t++) _mm256_storeu_si256((__m256i *)(o->q + 32 * t), r[t]);
}
#endif

static void quantize_row(const float *x, int64_t K, q8g *o) {
    int64_t nb = K / 32, ng = (nb + 7) / 8;
    for (int64_t g = 0; g < ng; g++) {
        int64_t nblk = nb - 8 * g < 8 ? nb - 8 * g : 8;
#if SEK_SIMD
        quantize_group_simd(x + 256 * g, nblk, o + g);
#else
        quantize_group_scalar(x + 256 * g, nblk, o + g);
#endif
    }
}

/* x [M, K] (row stride ldx floats) -> out, M rows of sek_q8_row_bytes(K) bytes. */
int sek_quantize_rows_q8(const float *x, int64_t M, int64_t K, int64_t ldx, void *out, int nthreads) {
    if (!x || !out || M < 0 || ldx < K) return SEK_ERR_ARG;
    if (K <= 0 || K % 32) return SEK_ERR_SHAPE;
    int64_t rowb = sek_q8_row_bytes(K);
    nthreads = threads_for(nthreads, 4.0 * (double)M * (double)K);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (M > 1)
    for (int64_t m = 0; m < M; m++)
        quantize_row(x + m * ldx, K, (q8g *)((uint8_t *)out + m * rowb));
    return SEK_OK;
}

/* ------------------------------------------------------------------------------------------
 * Weight unpacking. A weight row is K/blk blocks as in the GGUF file. The matmul works on
 * "groups" of 8 blocks of 32 values (for k-quants: one 256-value super-block); each group of
 * a weight row is unpacked into a panel entry with the same interleaved layout as the
 * activations: w[t*32 + j*4 + e] = value 4t+e of block j, as an unsigned quant u (for Q8_0:
 * the signed int8), plus per block j a float scale dw[j] and offset mw[j], so that the
 * weight's value is  dw*(u - o) + mw  (o: 8 for Q4_0, 16 for Q5_0, else 0; mw = 0 for types
 * without a min). Q6_K keeps u = q+32 in 0..63 and its 16 int8 sub-scales separately.
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    uint8_t w[256];
    float dw[8];
    float mw[8];
    int16_t sclo[16]; /* Q6_K: lane j = (sc[2j], sc[2j]) */
    int16_t schi[16]; /* Q6_K: lane j = (sc[2j+1], sc[2j+1]) */
    int16_t scp[16];  /* Q6_K: lane j = (sc[2j], sc[2j+1]) */
} wpg; /* 416 bytes */

/* Q4_K / Q5_K 6-bit scale and min of sub-block j from the 12 packed bytes. */
static inline void kq_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
    }
}

/* Natural-order unpack of group g of a weight row: q[j][i] = u of value i of block j,
 * dw/mw per block, sc = Q6_K's 16 sub-scales. Blocks past the row's end are zero.
 * Returns the number of valid blocks. */
static int unpack_group_scalar(int t, const uint8_t *row, int64_t g, int64_t nb, uint8_t q[8][32],
                               float dw[8], float mw[8], int8_t sc[16]) {
    memset(q, 0, 256);
    for (int j = 0; j < 8; j++) dw[j] = mw[j] = 0.0f;
    memset(sc, 0, 16);
    int64_t blk = 0, bytes = 0;
    type_info(t, &blk, &bytes);
    if (blk == 32) {
        int64_t j0 = 8 * g;
        int n = nb - j0 < 8 ? (int)(nb - j0) : 8;
        for (int j = 0; j < n; j++) {
            const uint8_t *b = row + (j0 + j) * bytes;
            switch (t) {
            case T_Q4_0:
                dw[j] = rd_f16(b);
                for (int i = 0; i < 16; i++) {
                    q[j][i] = b[2 + i] & 15;
                    q[j][i + 16] = b[2 + i] >> 4;
                }
                break;
            case T_Q4_1:
                dw[j] = rd_f16(b);
                mw[j] = rd_f16(b + 2);
                for (int i = 0; i < 16; i++) {
                    q[j][i] = b[4 + i] & 15;
                    q[j][i + 16] = b[4 + i] >> 4;
                }
                break;
            case T_Q5_0:
            case T_Q5_1: {
                int off = t == T_Q5_0 ? 2 : 4;
                dw[j] = rd_f16(b);
                if (t == T_Q5_1) mw[j] = rd_f16(b + 2);
                uint32_t qh;
                memcpy(&qh, b + off, 4);
                const uint8_t *qs = b + off + 4;
                for (int i = 0; i < 16; i++) {
                    q[j][i] = (uint8_t)((qs[i] & 15) | (((qh >> i) & 1u) << 4));
                    q[j][i + 16] = (uint8_t)((qs[i] >> 4) | (((qh >> (i + 16)) & 1u) << 4));
                }
                break;
            }
            case T_Q8_0:
                dw[j] = rd_f16(b);
                memcpy(q[j], b + 2, 32);
                break;
            }
        }
        return n;
    }
    const uint8_t *b = row + g * bytes;
    if (t == T_Q4_K || t == T_Q5_K) {
        float d = rd_f16(b), dmin = rd_f16(b + 2);
        const uint8_t *s = b + 4;
        const uint8_t *qh = b + 16;
        const uint8_t *qs = t == T_Q4_K ? b + 16 : b + 48;
        for (int j = 0; j < 8; j++) {
            int scv, mn;
            kq_scale_min(s, j, &scv, &mn);
            dw[j] = d * (float)scv;
            mw[j] = -(dmin * (float)mn);
            for (int i = 0; i < 32; i++) {
                int u = (qs[32 * (j / 2) + i] >> (4 * (j % 2))) & 15;
                if (t == T_Q5_K) u |= ((qh[i] >> j) & 1) << 4;
                q[j][i] = (uint8_t)u;
            }
        }
    } else { /* Q6_K */
        const uint8_t *ql = b, *qh = b + 128;
        float d = rd_f16(b + 208);
        memcpy(sc, b + 192, 16);
        for (int j = 0; j < 8; j++) {
            int h = j / 4, jj = j % 4;
            dw[j] = d;
            for (int i = 0; i < 32; i++) {
                int lo = (ql[h * 64 + (jj % 2) * 32 + i] >> (4 * (jj / 2))) & 15;
                int hi = (qh[h * 32 + i] >> (2 * jj)) & 3;
                q[j][i] = (uint8_t)(lo | (hi << 4));
            }
        }
    }
    return 8;
}

static void fill_q6k_scales(const int8_t sc[16], wpg *p) {
    for (int j = 0; j < 8; j++) {
        p->sclo[2 * j] = p->sclo[2 * j + 1] = sc[2 * j];
        p->schi[2 * j] = p->schi[2 * j + 1] = sc[2 * j + 1];
        p->scp[2 * j] = sc[2 * j];
        p->scp[2 * j + 1] = sc[2 * j + 1];
    }
}

SEK_SCALAR_ONLY static void build_group_scalar(int t, const uint8_t *row, int64_t g, int64_t nb, wpg *p) {
    uint8_t q[8][32];
    int8_t sc[16];
    unpack_group_scalar(t, row, g, nb, q, p->dw, p->mw, sc);
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) p->w[(i / 4) * 32 + j * 4 + (i % 4)] = q[j][i];
    if (t == T_Q6_K) fill_q6k_scales(sc, p);
}

#if SEK_SIMD
SEK_INLINE __m256i nibbles32(const uint8_t *qs16) {
    __m128i x = _mm_loadu_si128((const __m128i *)qs16);
    const __m128i m = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(x, m), hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    return _mm256_set_m128i(hi, lo);
}

/* bytes i of the result = 0x10 where bit i of qh is set */
SEK_INLINE __m256i hibits32(uint32_t qh) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                            0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* One 32-value block of a 32-block type: its 32 quants in order, scale and min. */
SEK_INLINE __m256i unpack_block_simd(const int T, const uint8_t *b, float *dw, float *mw) {
    *dw = _cvtsh_ss(rd_u16(b));
    *mw = T == T_Q4_1 || T == T_Q5_1 ? _cvtsh_ss(rd_u16(b + 2)) : 0.0f;
    uint32_t qh;
    switch (T) {
    case T_Q4_0: return nibbles32(b + 2);
    case T_Q4_1: return nibbles32(b + 4);
    case T_Q5_0: memcpy(&qh, b + 2, 4); return _mm256_or_si256(nibbles32(b + 6), hibits32(qh));
    case T_Q5_1: memcpy(&qh, b + 4, 4); return _mm256_or_si256(nibbles32(b + 8), hibits32(qh));
    default: return _mm256_loadu_si256((const __m256i *)(b + 2)); /* Q8_0 */
    }
}

/* Group g of a weight row unpacked in natural order: r[j] = the 32 quants u of block j (zero
 * past the row's end), dw/mw the blocks' scales and offsets (zero past the end), and for
 * Q6_K sc16 = its 16 sub-scales as int16. */
SEK_INLINE void unpack_group_simd(const int T, const uint8_t *row, int64_t g, int64_t nb, __m256i r[8],
                                  __m256 *dwv, __m256 *mwv, __m256i *sc16v) {
    if (T == T_Q4_0 || T == T_Q4_1 || T == T_Q5_0 || T == T_Q5_1 || T == T_Q8_0) {
        const int64_t bytes = T == T_Q4_0 ? 18 : T == T_Q4_1 ? 20 : T == T_Q5_0 ? 22 : T == T_Q5_1 ? 24 : 34;
        const int64_t j0 = 8 * g;
        const uint8_t *b = row + j0 * bytes;
        float dw[8], mw[8];
        if (nb - j0 >= 8) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) r[j] = unpack_block_simd(T, b + j * bytes, &dw[j], &mw[j]);
        } else { /* the row's last, partial group */
            for (int j = 0; j < 8; j++) {
                if (j < nb - j0) {
                    r[j] = unpack_block_simd(T, b + j * bytes, &dw[j], &mw[j]);
                } else {
                    r[j] = _mm256_setzero_si256();
                    dw[j] = mw[j] = 0.0f;
                }
            }
        }
        *dwv = _mm256_loadu_ps(dw);
        *mwv = _mm256_loadu_ps(mw);
    } else if (T == T_Q4_K || T == T_Q5_K) {
        const uint8_t *b = row + g * (T == T_Q4_K ? 144 : 176);
        const uint8_t *s = b + 4;
        const uint8_t *qs = T == T_Q4_K ? b + 16 : b + 48;
        const __m256i m15 = _mm256_set1_epi8(15);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            r[2 * c] = _mm256_and_si256(x, m15);
            r[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m15);
        }
        if (T == T_Q5_K) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
            const __m256i x10 = _mm256_set1_epi8(0x10);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m256i bit = _mm256_set1_epi8((char)(1 << j));
                __m256i h = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
                r[j] = _mm256_or_si256(r[j], _mm256_and_si256(h, x10));
            }
        }
        /* kq_scale_min for all 8 sub-blocks at once, on the three 32-bit words of scales */
        uint32_t sa, sb, scw;
        memcpy(&sa, s, 4);
        memcpy(&sb, s + 4, 4);
        memcpy(&scw, s + 8, 4);
        uint64_t sc8 = (uint64_t)(sa & 0x3f3f3f3fu) |
                       (uint64_t)((scw & 0x0f0f0f0fu) | ((sa >> 2) & 0x30303030u)) << 32;
        uint64_t mn8 = (uint64_t)(sb & 0x3f3f3f3fu) |
                       (uint64_t)(((scw >> 4) & 0x0f0f0f0fu) | ((sb >> 2) & 0x30303030u)) << 32;
        __m256i scv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc8));
        __m256i mnv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn8));
        __m256 d = _mm256_set1_ps(_cvtsh_ss(rd_u16(b))), dmin = _mm256_set1_ps(_cvtsh_ss(rd_u16(b + 2)));
        __m256 dw = _mm256_mul_ps(d, _mm256_cvtepi32_ps(scv));
        __m256 dm = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mnv));
        *dwv = dw;
        *mwv = _mm256_sub_ps(_mm256_setzero_ps(), dm);
    } else { /* Q6_K */
        const uint8_t *b = row + g * 210;
        const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i la = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
            __m256i lb = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
            r[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(la, m15),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            r[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(lb, m15),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            r[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m15),
                                           _mm256_and_si256(qh, m30));
            r[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m15),
                                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        }
        *dwv = _mm256_set1_ps(_cvtsh_ss(rd_u16(b + 208)));
        *mwv = _mm256_setzero_ps();
        *sc16v = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    }
}

SEK_INLINE void build_group_simd(const int T, const uint8_t *row, int64_t g, int64_t nb, wpg *p) {
    __m256i r[8], sc16 = _mm256_setzero_si256();
    __m256 dw, mw;
    unpack_group_simd(T, row, g, nb, r, &dw, &mw, &sc16);
    _mm256_storeu_ps(p->dw, dw);
    _mm256_storeu_ps(p->mw, mw);
    if (T == T_Q6_K) {
        /* sclo / schi: each sub-scale twice; scp: the 16 sub-scales as int16 */
        __m256i ev = _mm256_shufflelo_epi16(_mm256_shufflehi_epi16(sc16, 0xA0), 0xA0); /* even ones twice */
        __m256i od = _mm256_shufflelo_epi16(_mm256_shufflehi_epi16(sc16, 0xF5), 0xF5); /* odd ones twice */
        _mm256_storeu_si256((__m256i *)p->sclo, ev);
        _mm256_storeu_si256((__m256i *)p->schi, od);
        _mm256_storeu_si256((__m256i *)p->scp, sc16);
    }
    transpose8_epi32(r);
#pragma GCC unroll 8
    for (int tt = 0; tt < 8; tt++) _mm256_storeu_si256((__m256i *)(p->w + 32 * tt), r[tt]);
}

#endif


/* ------------------------------------------------------------------------------------------
 * b. matmul on quantized weights
 *
 * For output (m, n) and each block b (32 values) of K, with a = the activation block's
 * int8 values, da its scale, S its sum, and the weight block as above:
 *   I  = sum(u*a) - o*S              (Q6_K: sum over its two halves h of sc_h*(sum(u*a) - 32*S_h))
 *   A  = (float)I * dw
 *   A  = fmaf(sf, mw, A)             (types with a min: Q4_1, Q5_1, Q4_K, Q5_K)
 *   lane[b % 8] = fmaf(A, da, lane[b % 8])
 * and y = fold(lanes) (+ bias[n]). I is an exact integer however it is summed.
 * ---------------------------------------------------------------------------------------- */

static inline int has_min(int t) { return t == T_Q4_1 || t == T_Q5_1 || t == T_Q4_K || t == T_Q5_K; }

/* One output, scalar: activation row a, weight panel column w, ng groups. */
SEK_SCALAR_ONLY static float qdot_scalar(int t, const q8g *a, const wpg *w, int64_t ng) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int hm = has_min(t);
    for (int64_t g = 0; g < ng; g++) {
        const q8g *ag = a + g;
        const wpg *wg = w + g;
        for (int j = 0; j < 8; j++) {
            int32_t xlo = 0, xhi = 0;
            for (int tt = 0; tt < 8; tt++)
                for (int e = 0; e < 4; e++) {
                    int idx = tt * 32 + j * 4 + e;
                    int32_t wv = t == T_Q8_0 ? (int32_t)(int8_t)wg->w[idx] : (int32_t)wg->w[idx];
                    int32_t pr = wv * (int32_t)ag->q[idx];
                    if (tt < 4) xlo += pr; else xhi += pr;
                }
            int32_t I;
            if (t == T_Q6_K) {
                int32_t s0 = wg->scp[2 * j], s1 = wg->scp[2 * j + 1];
                I = s0 * xlo + s1 * xhi - 32 * (ag->sh[2 * j] * s0 + ag->sh[2 * j + 1] * s1);
            } else {
                I = xlo + xhi;
                if (t == T_Q4_0) I -= 8 * ag->s[j];
                else if (t == T_Q5_0) I -= 16 * ag->s[j];
            }
            float A = (float)I * wg->dw[j];
            if (hm) A = fmaf(ag->sf[j], wg->mw[j], A);
            acc[j] = fmaf(A, ag->d[j], acc[j]);
        }
    }
    return tree8(acc);
}

/* How many 32-byte steps of int16 maddubs sums fit in int16 before widening: a pair of
 * products is at most 2*umax*127 (Q8_0, sign trick: 2*128*127 = 32512, so 1 step). */
#define QSPAN(T) ((T) == T_Q4_0 || (T) == T_Q4_1 || (T) == T_Q4_K ? 8 \
                  : (T) == T_Q5_0 || (T) == T_Q5_1 || (T) == T_Q5_K ? 4 : (T) == T_Q6_K ? 2 : 1)
/* Register tile (rows x columns) of the AVX2 micro-kernel: four rows for every type. Where
 * the int16 span is short (Q5_0, Q6_K) a 4x2 tile's accumulators outnumber the 16 registers
 * and a few spill, and it still beats 2x2 (0.5B/1.5B shapes, one thread, Zen 3: Q5_0
 * 0.73-0.85x, Q6_K 0.89-0.91x the time; the same bits). */
#define QRB 4
#define QCB 2

#if SEK_SIMD
/* An empty asm that claims to change v: keeps the compiler from re-associating a running
 * integer sum into a tree of all 64 products of a group (which spills registers). */
#define SEK_OPAQUE(v) __asm__("" : "+x"(v))

/* R x C outputs over groups [0, ng) of the given activation rows and panel columns, adding
 * to the lanes facc (R x ldf x 8 floats, column c of row r at (r*ldf + c)*8), which hold the
 * earlier groups' sums (zero before the first). Each (r, c) gets the operations of
 * qdot_scalar in the same order; only integer sums are grouped differently. */
SEK_INLINE void qmk(const int T, const int R, const int C, const q8g *const *a,
                    const wpg *const *w, int64_t ng, float *facc, int64_t ldf) {
    const int span = QSPAN(T);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t g = 0; g < ng; g++) {
        __m256i i32[4][2], i16[4][2];
#pragma GCC unroll 8
        for (int tt = 0; tt < 8; tt++) {
            __m256i av[4], wv[2], wa[2];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) av[r] = _mm256_loadu_si256((const __m256i *)(a[r][g].q + 32 * tt));
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) {
                wv[c] = _mm256_loadu_si256((const __m256i *)(w[c][g].w + 32 * tt));
                if (T == T_Q8_0) wa[c] = _mm256_abs_epi8(wv[c]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
#pragma GCC unroll 2
                for (int c = 0; c < C; c++) {
                    __m256i pr = T == T_Q8_0 ? _mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(av[r], wv[c]))
                                             : _mm256_maddubs_epi16(wv[c], av[r]);
                    i16[r][c] = tt % span == 0 ? pr : _mm256_add_epi16(i16[r][c], pr);
                    SEK_OPAQUE(i16[r][c]);
                    if (tt % span == span - 1) {
                        __m256i mul = ones;
                        if (T == T_Q6_K)
                            mul = _mm256_loadu_si256((const __m256i *)(tt < 4 ? w[c][g].sclo : w[c][g].schi));
                        __m256i s = _mm256_madd_epi16(i16[r][c], mul);
                        i32[r][c] = tt == span - 1 ? s : _mm256_add_epi32(i32[r][c], s);
                        SEK_OPAQUE(i32[r][c]);
                    }
                }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const q8g *ag = a[r] + g;
            __m256 da = _mm256_loadu_ps(ag->d);
            __m256i corr = _mm256_setzero_si256();
            if (T == T_Q4_0) corr = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 3);
            if (T == T_Q5_0) corr = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 4);
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) {
                const wpg *wg = w[c] + g;
                __m256i I = i32[r][c];
                if (T == T_Q4_0 || T == T_Q5_0) I = _mm256_sub_epi32(I, corr);
                if (T == T_Q6_K)
                    I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_madd_epi16(
                        _mm256_loadu_si256((const __m256i *)ag->sh), _mm256_loadu_si256((const __m256i *)wg->scp)), 5));
                __m256 A = _mm256_mul_ps(_mm256_cvtepi32_ps(I), _mm256_loadu_ps(wg->dw));
                if (T == T_Q4_1 || T == T_Q5_1 || T == T_Q4_K || T == T_Q5_K)
                    A = _mm256_fmadd_ps(_mm256_loadu_ps(ag->sf), _mm256_loadu_ps(wg->mw), A);
                float *f = facc + (r * ldf + c) * 8;
                _mm256_storeu_ps(f, _mm256_fmadd_ps(A, da, _mm256_loadu_ps(f)));
            }
        }
    }
}

SEK_INLINE void qmk_rc(const int T, int R, int C, const q8g *const *a, const wpg *const *w,
                       int64_t ng, float *facc, int64_t ldf) {
#define QMK_CASE(r_, c_) if (R == r_ && C == c_) { qmk(T, r_, c_, a, w, ng, facc, ldf); return; }
    QMK_CASE(4, 2) QMK_CASE(4, 1) QMK_CASE(3, 2) QMK_CASE(3, 1)
    QMK_CASE(2, 2) QMK_CASE(2, 1) QMK_CASE(1, 2) QMK_CASE(1, 1)
#undef QMK_CASE
}

/* Groups per K-chunk: a chunk of 4 activation rows and 2 panel columns stays in L1. */
#define QKC 8
/* Passes of at most this many rows take the direct kernel (no panel), which unpacks each
 * weight group once for all of them. Chosen by measurement (0.5B pass, 1 thread, Zen 3): the
 * direct kernel's cost per extra row is above the panel's, so past 5 rows the panel wins. */
#define SEK_DIRECT_ROWS 5
#define QDM SEK_DIRECT_ROWS /* the most rows the direct kernel takes at once (qdirect_dispatch) */

/* One column tile [n0, n0+nn) for rows [m0, m1): K in chunks of QKC groups; the panel
 * holds one chunk of nn columns (column c's groups at panel + c*QKC); the lanes of every
 * (row, column) of the tile wait in facc (rows x NT x 8) between chunks. */
SEK_INLINE void q_tile(const int T, const uint8_t *xq, int64_t rowb, int64_t m0, int64_t m1,
                       const uint8_t *wb, int64_t wrow, int64_t nb, int64_t ng, int64_t n0,
                       int64_t nn, int64_t NT, wpg *panel, float *facc, const float *bias,
                       float *y, int64_t ldy) {
    const int RB = QRB;
    memset(facc, 0, (size_t)((m1 - m0) * NT * 8) * sizeof(float));
    for (int64_t g0 = 0; g0 < ng; g0 += QKC) {
        const int64_t gn = ng - g0 < QKC ? ng - g0 : QKC;
        for (int64_t c = 0; c < nn; c++)
            for (int64_t g = 0; g < gn; g++)
                build_group_simd(T, wb + (n0 + c) * wrow, g0 + g, nb, panel + c * QKC + g);
        for (int64_t r = m0; r < m1; r += RB) {
            const int R = m1 - r >= RB ? RB : (int)(m1 - r);
            const q8g *a[4];
            for (int i = 0; i < 4; i++) a[i] = (const q8g *)(xq + (r + (i < R ? i : 0)) * rowb) + g0;
            for (int64_t c = 0; c < nn; c += QCB) {
                const int C = nn - c >= QCB ? QCB : (int)(nn - c);
                const wpg *w[2] = {panel + c * QKC, panel + (c + C - 1) * QKC};
                qmk_rc(T, R, C, a, w, gn, facc + ((r - m0) * NT + c) * 8, NT);
            }
        }
    }
    fold_tile(facc, m1 - m0, NT, nn, bias ? bias + n0 : NULL, y + m0 * ldy + n0, ldy);
}

static void q_tile_dispatch(int t, const uint8_t *xq, int64_t rowb, int64_t m0, int64_t m1,
                            const uint8_t *wb, int64_t wrow, int64_t nb, int64_t ng, int64_t n0,
                            int64_t nn, int64_t NT, wpg *panel, float *facc, const float *bias,
                            float *y, int64_t ldy) {
#define QT_CASE(T_) case T_: q_tile(T_, xq, rowb, m0, m1, wb, wrow, nb, ng, n0, nn, NT, panel, facc, bias, y, ldy); break;
    switch (t) {
    QT_CASE(T_Q4_0) QT_CASE(T_Q4_1) QT_CASE(T_Q5_0) QT_CASE(T_Q5_1) QT_CASE(T_Q8_0)
    QT_CASE(T_Q4_K) QT_CASE(T_Q5_K) QT_CASE(T_Q6_K)
    }
#undef QT_CASE
}

/* The sums of eight int32 vectors: lane j of the result = the sum of v[j]'s lanes. */
SEK_INLINE __m256i sum8x8_epi32(const __m256i v[8]) {
    __m256i x01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i x23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i x45 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[4], v[5]), _mm256_unpackhi_epi32(v[4], v[5]));
    __m256i x67 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[6], v[7]), _mm256_unpackhi_epi32(v[6], v[7]));
    __m256i y0 = _mm256_add_epi32(_mm256_unpacklo_epi64(x01, x23), _mm256_unpackhi_epi64(x01, x23));
    __m256i y4 = _mm256_add_epi32(_mm256_unpacklo_epi64(x45, x67), _mm256_unpackhi_epi64(x45, x67));
    return _mm256_add_epi32(_mm256_permute2x128_si256(y0, y4, 0x20), _mm256_permute2x128_si256(y0, y4, 0x31));
}

#define SEK_PREFETCH 4096 /* bytes ahead of the weight group being read */

/* Whether the direct kernel takes a type's blocks two at a time ("paired": Q4_0, Q4_1, Q5_0,
 * Q5_1, whose 16 bytes of nibbles hold values i and i+16): one 256-bit register then holds
 * the first 16 values of blocks j and j+1, another their last 16, and the activations are
 * laid out to match (q8_natural). */
#define QPAIRED(T) ((T) == T_Q4_0 || (T) == T_Q4_1 || (T) == T_Q5_0 || (T) == T_Q5_1)

/* The sums of four int32 vectors v0..v3 whose low halves belong to blocks 0, 2, 4, 6 and high
 * halves to blocks 1, 3, 5, 7 (v_p = blocks 2p, 2p+1), given as x = v0, v1 and y = v2, v3
 * folded (fold2x4_epi32): lane j of the result = block j's. */
SEK_INLINE __m256i fold2x4_epi32(__m256i u, __m256i v) {
    return _mm256_add_epi32(_mm256_unpacklo_epi32(u, v), _mm256_unpackhi_epi32(u, v));
}

SEK_INLINE __m256i sum2x2x4_epi32(__m256i x, __m256i y) {
    __m256i z = _mm256_add_epi32(_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y));
    return _mm256_permutevar8x32_epi32(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The 32-bit words at byte offset off of the 8 blocks of a full group (blocks `bytes` apart). */
SEK_INLINE int32_t rd_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

SEK_INLINE __m256i gather_words(const uint8_t *b, int64_t bytes, int off) {
    b += off;
    return _mm256_setr_epi32(rd_i32(b), rd_i32(b + bytes), rd_i32(b + 2 * bytes), rd_i32(b + 3 * bytes),
                             rd_i32(b + 4 * bytes), rd_i32(b + 5 * bytes), rd_i32(b + 6 * bytes), rd_i32(b + 7 * bytes));
}

/* Low (hi = 0) or high (hi = 1) float16 halves of 8 int32 lanes, as floats (exact). */
SEK_INLINE __m256 halves_to_float(__m256i v, const int hi) {
    __m256i h = hi ? _mm256_srli_epi32(v, 16) : _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
    h = _mm256_packus_epi32(h, h); /* per 128-bit lane: 4 halves, twice */
    h = _mm256_permute4x64_epi64(h, 0x08); /* lanes 0 and 2: the 8 halves in order */
    return _mm256_cvtph_ps(_mm256_castsi256_si128(h));
}

/* Direct kernel for a few rows (the one-token pass): R activation rows against one weight
 * row, computed on the weight's own blocks without a panel. The activations are in natural
 * order (an: block b's 32 values at an + 32*b) or, for the paired types, in pairs (from
 * q8_natural). A block's integer sum I is the same exact integer as qmk's (grouped
 * differently), and every float step is qmk's. */
SEK_INLINE void qdirect(const int T, const int R, const int8_t *const *an, const q8g *const *a,
                        const uint8_t *wrow, int64_t nb, int64_t ng, const float *bias, float *const *y) {
    __m256 lane[QDM];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) lane[r] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t full = nb / 8; /* groups with all 8 blocks */
    const int64_t gbytes = T == T_Q4_0 ? 144 : T == T_Q4_1 ? 160 : T == T_Q5_0 ? 176 : T == T_Q5_1 ? 192
                         : T == T_Q8_0 ? 272 : T == T_Q4_K ? 144 : T == T_Q5_K ? 176 : 210;
    for (int64_t g = 0; g < ng; g++) {
        /* The weights stream from memory (rows are contiguous, so this runs ahead into the
         * next rows); the hardware prefetcher alone left a third of the bandwidth unused. */
        const char *ahead = (const char *)(wrow + g * gbytes + SEK_PREFETCH);
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        _mm_prefetch(ahead + 128, _MM_HINT_T0);
        if (gbytes > 192) _mm_prefetch(ahead + 192, _MM_HINT_T0);
        __m256i w[8], mul[8], sc16 = _mm256_setzero_si256();
        __m256 dw, mw = _mm256_setzero_ps();
        if (QPAIRED(T) && g < full) {
            const int64_t bytes = T == T_Q4_0 ? 18 : T == T_Q4_1 ? 20 : T == T_Q5_0 ? 22 : 24;
            const int qs = T == T_Q4_0 ? 2 : T == T_Q4_1 ? 4 : T == T_Q5_0 ? 6 : 8;
            const uint8_t *b = wrow + 8 * g * bytes;
            __m256i head = gather_words(b, bytes, 0); /* d, then m (Q4_1, Q5_1) or qh's low half */
            dw = halves_to_float(head, 0);
            if (T == T_Q4_1 || T == T_Q5_1) mw = halves_to_float(head, 1);
            __m256i qh = _mm256_setzero_si256();
            if (T == T_Q5_0 || T == T_Q5_1) { /* blocks 0, 2, 4, 6 in the low half, 1, 3, 5, 7 high */
                const uint8_t *h = b + (T == T_Q5_0 ? 2 : 4);
                qh = _mm256_setr_epi32(rd_i32(h), rd_i32(h + 2 * bytes), rd_i32(h + 4 * bytes), rd_i32(h + 6 * bytes),
                                       rd_i32(h + bytes), rd_i32(h + 3 * bytes), rd_i32(h + 5 * bytes), rd_i32(h + 7 * bytes));
            }
            const __m256i m15 = _mm256_set1_epi8(15);
            __m256i v[QDM][2];
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                const uint8_t *b0 = b + 2 * p * bytes;
                __m256i x = _mm256_loadu2_m128i((const __m128i *)(b0 + bytes + qs), (const __m128i *)(b0 + qs));
                __m256i wl = _mm256_and_si256(x, m15);                        /* values 0-15 */
                __m256i wh = _mm256_and_si256(_mm256_srli_epi16(x, 4), m15); /* values 16-31 */
                if (T == T_Q5_0 || T == T_Q5_1) {
                    /* byte i of lane h: 0x10 where bit i (values 0-15) or 16+i of qh of block 2p+h */
                    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
                    const __m256i x10 = _mm256_set1_epi8(0x10);
                    const long long c0 = 0x0101010101010101LL * (4 * p), c1 = c0 + 0x0101010101010101LL;
                    const long long c2 = c1 + 0x0101010101010101LL, c3 = c2 + 0x0101010101010101LL;
                    __m256i lo = _mm256_shuffle_epi8(qh, _mm256_setr_epi64x(c0, c1, c0, c1));
                    __m256i hi = _mm256_shuffle_epi8(qh, _mm256_setr_epi64x(c2, c3, c2, c3));
                    lo = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(lo, bit), bit), x10);
                    hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hi, bit), bit), x10);
                    wl = _mm256_or_si256(wl, lo);
                    wh = _mm256_or_si256(wh, hi);
                }
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    const int8_t *ar = an[r] + 256 * g + 64 * p;
                    /* int16: two products of at most 31 * 127, twice */
                    __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(wl, _mm256_loadu_si256((const __m256i *)ar)),
                                                  _mm256_maddubs_epi16(wh, _mm256_loadu_si256((const __m256i *)(ar + 32))));
                    __m256i vp = _mm256_madd_epi16(pr, ones);
                    /* folded as soon as two pairs are in: at most two vectors a row live */
                    v[r][p >> 1] = p & 1 ? fold2x4_epi32(v[r][p >> 1], vp) : vp;
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m256i I = sum2x2x4_epi32(v[r][0], v[r][1]);
                const q8g *ag = a[r] + g;
                if (T == T_Q4_0) I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 3));
                if (T == T_Q5_0) I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 4));
                __m256 A = _mm256_mul_ps(_mm256_cvtepi32_ps(I), dw);
                if (T == T_Q4_1 || T == T_Q5_1) A = _mm256_fmadd_ps(_mm256_loadu_ps(ag->sf), mw, A);
                lane[r] = _mm256_fmadd_ps(A, _mm256_loadu_ps(ag->d), lane[r]);
            }
            continue;
        }
        if (T == T_Q8_0 && g < full) {
            const uint8_t *b = wrow + 8 * g * 34;
            dw = halves_to_float(gather_words(b, 34, 0), 0);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) w[j] = _mm256_loadu_si256((const __m256i *)(b + 34 * j + 2));
        } else {
            unpack_group_simd(T, wrow, g, nb, w, &dw, &mw, &sc16);
        }
        if (T == T_Q6_K) { /* block j: its first 16 products times sc[2j], the others sc[2j+1] */
            __m256i lo = _mm256_permute2x128_si256(sc16, sc16, 0x00), hi = _mm256_permute2x128_si256(sc16, sc16, 0x11);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const int jj = j & 3;
                __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)((4 * jj + 2) | (4 * jj + 3) << 8)),
                                               _mm_set1_epi16((short)((4 * jj) | (4 * jj + 1) << 8)));
                mul[j] = _mm256_shuffle_epi8(j < 4 ? lo : hi, ctl);
            }
        }
        if (T == T_Q8_0) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) mul[j] = _mm256_abs_epi8(w[j]);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const int8_t *ar = an[r] + 256 * g;
            __m256i v[8];
            if (QPAIRED(T)) { /* the last, partial group of a paired type: natural order here */
                for (int j = 0; j < 8; j++) {
                    const int p = j / 2, h = j % 2;
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(ar + 64 * p));
                    __m256i hi = _mm256_loadu_si256((const __m256i *)(ar + 64 * p + 32));
                    __m256i av = h ? _mm256_permute2x128_si256(lo, hi, 0x31) : _mm256_permute2x128_si256(lo, hi, 0x20);
                    v[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(w[j], av), ones);
                }
            } else {
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    __m256i av = _mm256_loadu_si256((const __m256i *)(ar + 32 * j));
                    __m256i pr = T == T_Q8_0 ? _mm256_maddubs_epi16(mul[j], _mm256_sign_epi8(av, w[j]))
                                             : _mm256_maddubs_epi16(w[j], av);
                    v[j] = _mm256_madd_epi16(pr, T == T_Q6_K ? mul[j] : ones);
                }
            }
            __m256i I = sum8x8_epi32(v);
            const q8g *ag = a[r] + g;
            if (T == T_Q4_0) I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 3));
            if (T == T_Q5_0) I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ag->s), 4));
            if (T == T_Q6_K)
                I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_madd_epi16(
                    _mm256_loadu_si256((const __m256i *)ag->sh), sc16), 5));
            __m256 A = _mm256_mul_ps(_mm256_cvtepi32_ps(I), dw);
            if (T == T_Q4_1 || T == T_Q5_1 || T == T_Q4_K || T == T_Q5_K)
                A = _mm256_fmadd_ps(_mm256_loadu_ps(ag->sf), mw, A);
            lane[r] = _mm256_fmadd_ps(A, _mm256_loadu_ps(ag->d), lane[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        float v = hsum_tree(lane[r]);
        if (bias) v = v + *bias;
        *y[r] = v;
    }
}

_Static_assert(QDM >= 1 && QDM <= 5, "qdirect_dispatch instantiates the direct kernel for 1-5 rows");

static void qdirect_dispatch(int t, int R, const int8_t *const *an, const q8g *const *a, const uint8_t *wrow,
                             int64_t nb, int64_t ng, const float *bias, float *const *y) {
#define QD_R(T_, R_) case R_: qdirect(T_, R_, an, a, wrow, nb, ng, bias, y); break;
#define QD_CASE(T_) case T_: switch (R) { QD_R(T_, 1) QD_R(T_, 2) QD_R(T_, 3) QD_R(T_, 4) QD_R(T_, 5) } break;
    switch (t) {
    QD_CASE(T_Q4_0) QD_CASE(T_Q4_1) QD_CASE(T_Q5_0) QD_CASE(T_Q5_1) QD_CASE(T_Q8_0)
    QD_CASE(T_Q4_K) QD_CASE(T_Q5_K) QD_CASE(T_Q6_K)
    }
#undef QD_CASE
#undef QD_R
}

/* A quantized row's values in natural order (block b's 32 values at an + 32*b), or paired:
 * per pair of blocks (2p, 2p+1) of a group, 64 bytes: the first 16 values of each, then
 * their last 16. */
static void q8_natural(const q8g *a, int64_t ng, int paired, int8_t *an) {
    for (int64_t g = 0; g < ng; g++) {
        __m256i r[8];
        for (int t = 0; t < 8; t++) r[t] = _mm256_loadu_si256((const __m256i *)(a[g].q + 32 * t));
        transpose8_epi32(r);
        if (paired)
            for (int p = 0; p < 4; p++) {
                __m256i lo = _mm256_permute2x128_si256(r[2 * p], r[2 * p + 1], 0x20);
                __m256i hi = _mm256_permute2x128_si256(r[2 * p], r[2 * p + 1], 0x31);
                r[2 * p] = lo;
                r[2 * p + 1] = hi;
            }
        for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(an + 256 * g + 32 * j), r[j]);
    }
}
#endif

/* The quantized matmul; with x given, quantizes x into xq first, in the same parallel
 * region (one fork and join per call). Arguments are checked by the callers. */
static int q8_matmul(const float *x, int64_t ldx, const void *xq, int64_t M, int64_t K, const void *w,
                     int wtype, int64_t N, const float *bias, float *y, int64_t ldy, int nthreads) {
    int64_t blk = 0, bytes = 0;
    type_info(wtype, &blk, &bytes);
    const int64_t nb = K / 32, ng = (nb + 7) / 8;
    const int64_t rowb = ng * (int64_t)sizeof(q8g), wrow = K / blk * bytes;
    const uint8_t *xb = (const uint8_t *)xq, *wb = (const uint8_t *)w;
    int err = SEK_OK;
#if SEK_SIMD
    if (M <= SEK_DIRECT_ROWS) {
        /* A few rows: the direct kernel, streaming each weight row once. */
        if (x)
            for (int64_t m = 0; m < M; m++) quantize_row(x + m * ldx, K, (q8g *)((uint8_t *)xq + m * rowb));
        int8_t *an = (int8_t *)aligned_alloc(64, (size_t)(M * ng * 256));
        if (!an) return SEK_ERR_NOMEM;
        const int8_t *anr[QDM];
        const q8g *ar[QDM];
        for (int64_t m = 0; m < M; m++) {
            q8_natural((const q8g *)(xb + m * rowb), ng, QPAIRED(wtype), an + m * ng * 256);
            anr[m] = an + m * ng * 256;
            ar[m] = (const q8g *)(xb + m * rowb);
        }
        /* Each thread streams long runs of consecutive weight rows. With 16-row chunks the
         * threads took turns through the matrix, and at every chunk's end the prefetchers
         * (ours, SEK_PREFETCH ahead, and the hardware's) fetched rows another thread would
         * read: a one-token pass took 1.2-1.4x as long. Eight chunks a thread still let a
         * thread that is preempted leave its share to the others. */
        const int64_t per = (N + 8 * nthreads - 1) / (8 * nthreads);
        const int64_t chunk = per > 16 ? per : 16;
        const int64_t nchunks = (N + chunk - 1) / chunk;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (nchunks > 1)
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t n1 = (c + 1) * chunk < N ? (c + 1) * chunk : N;
            for (int64_t n = c * chunk; n < n1; n++) {
                float *yr[QDM];
                for (int64_t m = 0; m < M; m++) yr[m] = y + m * ldy + n;
                qdirect_dispatch(wtype, (int)M, anr, ar, wb + n * wrow, nb, ng, bias ? bias + n : NULL, yr);
            }
        }
        free(an);
        return SEK_OK;
    }
    /* Column tiles of up to 32 (a panel chunk of ~106 KiB), at least 4 per thread where N
     * allows; row tiles of up to 64 (weights are unpacked once per row tile). */
    int64_t NT = (N + 4 * nthreads - 1) / (4 * nthreads);
    NT = NT < 2 ? 2 : NT > 32 ? 32 : (NT + 1) & ~(int64_t)1;
    const int64_t MT = 64;
    const int64_t ntiles = (N + NT - 1) / NT;
#pragma omp parallel num_threads(nthreads) if (ntiles > 1 || M > 1)
    {
        if (x) {
#pragma omp for schedule(static)
            for (int64_t m = 0; m < M; m++) quantize_row(x + m * ldx, K, (q8g *)((uint8_t *)xq + m * rowb));
        }
        wpg *panel = (wpg *)aligned_alloc(64, (size_t)NT * QKC * sizeof(wpg));
        float *facc = (float *)aligned_alloc(64, (size_t)(MT * NT * 8) * sizeof(float));
        if (!panel || !facc) {
#pragma omp atomic write
            err = SEK_ERR_NOMEM;
        }
        for (int64_t m0 = 0; m0 < M; m0 += MT) {
            int64_t m1 = m0 + MT < M ? m0 + MT : M;
#pragma omp for schedule(dynamic, 1) /* a preempted thread's tiles go to the others */
            for (int64_t tile = 0; tile < ntiles; tile++) {
                if (!panel || !facc) continue;
                int64_t n0 = tile * NT, nn = N - n0 < NT ? N - n0 : NT;
                q_tile_dispatch(wtype, xb, rowb, m0, m1, wb, wrow, nb, ng, n0, nn, NT, panel, facc,
                                bias, y, ldy);
            }
        }
        free(panel);
        free(facc);
    }
#else
    /* Scalar: one column at a time, its whole panel unpacked, then every row. */
#pragma omp parallel num_threads(nthreads) if (N > 1 || M > 1)
    {
        if (x) {
#pragma omp for schedule(static)
            for (int64_t m = 0; m < M; m++) quantize_row(x + m * ldx, K, (q8g *)((uint8_t *)xq + m * rowb));
        }
        wpg *panel = (wpg *)malloc((size_t)ng * sizeof(wpg));
        if (!panel) {
#pragma omp atomic write
            err = SEK_ERR_NOMEM;
        }
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            if (!panel) continue;
            for (int64_t g = 0; g < ng; g++) build_group_scalar(wtype, wb + n * wrow, g, nb, panel + g);
            for (int64_t m = 0; m < M; m++) {
                float v = qdot_scalar(wtype, (const q8g *)(xb + m * rowb), panel, ng);
                if (bias) v = v + bias[n];
                y[m * ldy + n] = v;
            }
        }
        free(panel);
    }
#endif
    return err;
}


/* y[M, N] (row stride ldy) = xq @ W^T (+ bias), xq from sek_quantize_rows_q8 (rows of
 * sek_q8_row_bytes(K) bytes), W = N rows of K values in ggml type wtype (raw GGUF bytes). */
int sek_matmul_q8(const void *xq, int64_t M, int64_t K, const void *w, int wtype, int64_t N,
                  const float *bias, float *y, int64_t ldy, int nthreads) {
    int64_t blk, bytes;
    if (!type_info(wtype, &blk, &bytes) || is_dense(wtype)) return SEK_ERR_TYPE;
    if (!xq || !w || !y || M < 0 || N < 0 || ldy < N) return SEK_ERR_ARG;
    if (K <= 0 || K % blk || K % 32) return SEK_ERR_SHAPE;
    if (M == 0 || N == 0) return SEK_OK;
    return q8_matmul(NULL, 0, xq, M, K, w, wtype, N, bias, y, ldy,
                     threads_for(nthreads, (double)M * (double)N * (double)K));
}

/* ------------------------------------------------------------------------------------------
 * b'. matmul on dense weights (F32, F16, BF16): the activation is not quantized.
 * y[m, n] = fold(lanes), lane l = fmaf(x[k], w[k], lane) for k = l, l+8, ... in order.
 * ---------------------------------------------------------------------------------------- */

static inline float dense_w(int t, const uint8_t *w, int64_t k) {
    if (t == T_F32) {
        float f;
        memcpy(&f, w + 4 * k, 4);
        return f;
    }
    return t == T_F16 ? fp16_to_fp32(rd_u16(w + 2 * k)) : bf16_to_fp32(rd_u16(w + 2 * k));
}

SEK_SCALAR_ONLY static float ddot_scalar(int t, const float *x, const uint8_t *w, int64_t K) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < K; k++) acc[k & 7] = fmaf(x[k], dense_w(t, w, k), acc[k & 7]);
    return tree8(acc);
}

#if SEK_SIMD
SEK_INLINE __m256 load_w8(const int T, const uint8_t *w, int64_t k) {
    if (T == T_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)(w + 2 * k));
    if (T == T_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* R x C outputs (R, C <= 3) over values [0, kn) of the given rows (pointers already at
 * the chunk), adding to the lanes in facc (row r, column c at (r*ldf + c)*8). */
SEK_INLINE void dmk(const int T, const int R, const int C, const float *const *x,
                    const uint8_t *const *w, int64_t kn, float *facc, int64_t ldf) {
    __m256 acc[4][3];
    const int64_t esz = T == T_F32 ? 4 : 2;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_loadu_ps(facc + (r * ldf + c) * 8);
    const int64_t K8 = kn & ~(int64_t)7;
    for (int64_t k = 0; k < K8; k += 8) {
        __m256 wv[3];
#pragma GCC unroll 3
        for (int c = 0; c < C; c++) {
            wv[c] = load_w8(T, w[c], k);
            SEK_OPAQUE(wv[c]); /* keep it in a register: no reload per row */
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_loadu_ps(x[r] + k);
            SEK_OPAQUE(xv);
#pragma GCC unroll 3
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (K8 < kn) { /* tail: zero padding leaves the other lanes unchanged */
        float xt[8], wt[8];
        for (int c = 0; c < C; c++) {
            for (int i = 0; i < 8; i++) wt[i] = K8 + i < kn ? dense_w(T, w[c] + K8 * esz, i) : 0.0f;
            __m256 wv = _mm256_loadu_ps(wt);
            for (int r = 0; r < R; r++) {
                for (int i = 0; i < 8; i++) xt[i] = K8 + i < kn ? x[r][K8 + i] : 0.0f;
                acc[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(xt), wv, acc[r][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int c = 0; c < C; c++) _mm256_storeu_ps(facc + (r * ldf + c) * 8, acc[r][c]);
}

SEK_INLINE void dmk_rc(const int T, int R, int C, const float *const *x, const uint8_t *const *w,
                       int64_t kn, float *facc, int64_t ldf) {
#define DMK_CASE(r_, c_) if (R == r_ && C == c_) { dmk(T, r_, c_, x, w, kn, facc, ldf); return; }
    DMK_CASE(3, 3) DMK_CASE(3, 2) DMK_CASE(3, 1)
    DMK_CASE(2, 3) DMK_CASE(2, 2) DMK_CASE(2, 1)
    DMK_CASE(1, 3) DMK_CASE(1, 2) DMK_CASE(1, 1)
#undef DMK_CASE
}

#define DKC 256 /* values per K-chunk: a chunk of a column tile's weights stays in L1 */
#define DRB 3   /* rows per register tile: 3x3 accumulators, 3 weight vectors and 1 x vector */

/* Rows [m0, m1) x columns [n0, n0+nn): K in chunks, lanes waiting in facc (rows x NT x 8). */
SEK_INLINE void d_tile(const int T, const float *x, int64_t ldx, int64_t m0, int64_t m1,
                       const uint8_t *w, int64_t wrow, int64_t n0, int64_t nn, int64_t NT,
                       int64_t K, float *facc, const float *bias, float *y, int64_t ldy) {
    const int64_t esz = T == T_F32 ? 4 : 2;
    memset(facc, 0, (size_t)((m1 - m0) * NT * 8) * sizeof(float));
    for (int64_t k0 = 0; k0 < K; k0 += DKC) {
        const int64_t kn = K - k0 < DKC ? K - k0 : DKC;
        for (int64_t m = m0; m < m1; m += DRB) {
            const int R = m1 - m >= DRB ? DRB : (int)(m1 - m);
            const float *xp[4];
            for (int r = 0; r < 4; r++) xp[r] = x + (m + (r < R ? r : 0)) * ldx + k0;
            for (int64_t c = 0; c < nn; c += 3) {
                const int C = nn - c >= 3 ? 3 : (int)(nn - c);
                const uint8_t *wp[3];
                for (int i = 0; i < 3; i++) wp[i] = w + (n0 + c + (i < C ? i : 0)) * wrow + k0 * esz;
                dmk_rc(T, R, C, xp, wp, kn, facc + ((m - m0) * NT + c) * 8, NT);
            }
        }
    }
    fold_tile(facc, m1 - m0, NT, nn, bias ? bias + n0 : NULL, y + m0 * ldy + n0, ldy);
}
#endif

static int matmul_dense(const float *x, int64_t M, int64_t K, int64_t ldx, const uint8_t *w,
                        int t, int64_t N, const float *bias, float *y, int64_t ldy, int nthreads) {
    const int64_t wrow = K * (t == T_F32 ? 4 : 2);
    int err = SEK_OK;
#if SEK_SIMD
    /* Column tiles of up to 12 (at least 4 per thread where N allows), row tiles of 64. */
    int64_t NT = (N + 4 * nthreads - 1) / (4 * nthreads);
    NT = NT < 3 ? 3 : NT > 12 ? 12 : (NT + 2) / 3 * 3;
    const int64_t MT = 64;
    const int64_t ntiles = (N + NT - 1) / NT;
#pragma omp parallel num_threads(nthreads) if (ntiles > 1)
    {
        float *facc = (float *)aligned_alloc(64, (size_t)(MT * NT * 8) * sizeof(float));
        if (!facc) {
#pragma omp atomic write
            err = SEK_ERR_NOMEM;
        }
        for (int64_t m0 = 0; m0 < M; m0 += MT) {
            int64_t m1 = m0 + MT < M ? m0 + MT : M;
#pragma omp for schedule(dynamic, 1) /* a preempted thread's tiles go to the others */
            for (int64_t tile = 0; tile < ntiles; tile++) {
                if (!facc) continue;
                int64_t n0 = tile * NT, nn = N - n0 < NT ? N - n0 : NT;
                switch (t) {
                case T_F32: d_tile(T_F32, x, ldx, m0, m1, w, wrow, n0, nn, NT, K, facc, bias, y, ldy); break;
                case T_F16: d_tile(T_F16, x, ldx, m0, m1, w, wrow, n0, nn, NT, K, facc, bias, y, ldy); break;
                default: d_tile(T_BF16, x, ldx, m0, m1, w, wrow, n0, nn, NT, K, facc, bias, y, ldy); break;
                }
            }
        }
        free(facc);
    }
#else
#pragma omp parallel for num_threads(nthreads) schedule(static) if (N > 1)
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float v = ddot_scalar(t, x + m * ldx, w + n * wrow, K);
            if (bias) v = v + bias[n];
            y[m * ldy + n] = v;
        }
#endif
    return err;
}

/* y[M, N] (row stride ldy) = x[M, K] (row stride ldx) @ W^T (+ bias). Quantized types
 * quantize x once (sek_quantize_rows_q8) into a scratch buffer; dense types use x as is. */
int sek_matmul(const float *x, int64_t M, int64_t K, int64_t ldx, const void *w, int wtype,
               int64_t N, const float *bias, float *y, int64_t ldy, int nthreads) {
    int64_t blk, bytes;
    if (!type_info(wtype, &blk, &bytes)) return SEK_ERR_TYPE;
    if (!x || !w || !y || M < 0 || N < 0 || ldx < K || ldy < N) return SEK_ERR_ARG;
    if (K <= 0 || K % blk) return SEK_ERR_SHAPE;
    nthreads = threads_for(nthreads, (double)M * (double)N * (double)K);
    if (M == 0 || N == 0) return SEK_OK;
    if (is_dense(wtype)) return matmul_dense(x, M, K, ldx, (const uint8_t *)w, wtype, N, bias, y, ldy, nthreads);
    if (K % 32) return SEK_ERR_SHAPE;
    int64_t rowb = sek_q8_row_bytes(K);
    void *xq = aligned_alloc(64, (size_t)((M * rowb + 63) / 64 * 64));
    if (!xq) return SEK_ERR_NOMEM;
    int rc = q8_matmul(x, ldx, xq, M, K, w, wtype, N, bias, y, ldy, nthreads);
    free(xq);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * c. attention: causal, grouped KV heads, float32 KV cache.
 * q, out: [M, Hq, D] contiguous. Cache element (head h, position p, i) at
 * k[h * kv_head_stride + p * kv_row_stride + i] (same strides for v). Row m sits at position
 * start + m and attends keys 0..start+m. Query head h reads KV head h / (Hq / Hkv).
 * Per (m, h): s_p = fold(q . k_p lanes over i) * scale; mx = max s_p; e_p = exp(s_p - mx);
 * sum = fold(lanes over p of e_p); out_i = (sum over p in order of fmaf(e_p, v_p,i, .)) *
 * (1 / sum). Every step depends only on the position, the head and the cache.
 * ---------------------------------------------------------------------------------------- */

static float dot_lanes(const float *a, const float *b, int64_t D) {
#if SEK_SIMD
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    if (i < D) {
        float ta[8] = {0}, tb[8] = {0};
        for (int64_t k = i; k < D; k++) { ta[k - i] = a[k]; tb[k - i] = b[k]; }
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(ta), _mm256_loadu_ps(tb), acc);
    }
    return hsum_tree(acc);
#else
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < D; i++) acc[i & 7] = fmaf(a[i], b[i], acc[i & 7]);
    return tree8(acc);
#endif
}

/* Scores of keys [p0, p1) for one query: s[p] = dot_lanes(q, k_p) * scale. */
static void scores_block(const float *q, const float *kh, int64_t rs, int64_t p0, int64_t p1,
                         int64_t D, float scale, float *s) {
    int64_t p = p0;
#if SEK_SIMD
    if ((D & 7) == 0) { /* eight keys at a time: eight independent chains, each as
                           * dot_lanes, folded together by hsum8_tree */
        const __m256 sv = _mm256_set1_ps(scale);
        for (; p + 8 <= p1; p += 8) {
            const float *k0 = kh + p * rs;
            __m256 a[8];
            for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
            for (int64_t i = 0; i < D; i += 8) {
                __m256 qv = _mm256_loadu_ps(q + i);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + j * rs + i), a[j]);
            }
            _mm256_storeu_ps(s + p, _mm256_mul_ps(hsum8_tree(a), sv));
        }
        for (; p + 4 <= p1; p += 4) {
            const float *k0 = kh + p * rs, *k1 = k0 + rs, *k2 = k1 + rs, *k3 = k2 + rs;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t i = 0; i < D; i += 8) {
                __m256 qv = _mm256_loadu_ps(q + i);
                a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
            }
            s[p] = hsum_tree(a0) * scale;
            s[p + 1] = hsum_tree(a1) * scale;
            s[p + 2] = hsum_tree(a2) * scale;
            s[p + 3] = hsum_tree(a3) * scale;
        }
    }
#endif
    for (; p < p1; p++) s[p] = dot_lanes(q, kh + p * rs, D) * scale;
}

/* out[i] += sum over p in [p0, p1), in order, of fmaf(e[p], v_p[i], .) */
static void pv_block(const float *e, const float *vh, int64_t rs, int64_t p0, int64_t p1, int64_t D,
                     float *out) {
    int64_t i = 0;
#if SEK_SIMD
    for (; i + 64 <= D; i += 64) { /* eight independent chains */
        __m256 o[8];
        for (int j = 0; j < 8; j++) o[j] = _mm256_loadu_ps(out + i + 8 * j);
        for (int64_t p = p0; p < p1; p++) {
            const float *v = vh + p * rs + i;
            __m256 ev = _mm256_set1_ps(e[p]);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) o[j] = _mm256_fmadd_ps(ev, _mm256_loadu_ps(v + 8 * j), o[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + i + 8 * j, o[j]);
    }
    for (; i + 8 <= D; i += 8) {
        __m256 o = _mm256_loadu_ps(out + i);
        for (int64_t p = p0; p < p1; p++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(e[p]), _mm256_loadu_ps(vh + p * rs + i), o);
        _mm256_storeu_ps(out + i, o);
    }
#endif
    for (; i < D; i++) {
        float o = out[i];
        for (int64_t p = p0; p < p1; p++) o = fmaf(e[p], vh[p * rs + i], o);
        out[i] = o;
    }
}

/* exp(s[p] - max) in place for p < nk; returns the fold of their 8 lanes (lane p % 8). */
static float softmax_numerators(float *s, int64_t nk) {
    float mx = s[0];
    for (int64_t p = 1; p < nk; p++) mx = s[p] > mx ? s[p] : mx;
#if SEK_SIMD
    __m256 acc = _mm256_setzero_ps();
    const __m256 mv = _mm256_set1_ps(mx);
    int64_t p = 0;
    for (; p + 8 <= nk; p += 8) {
        __m256 e = exp_v(_mm256_sub_ps(_mm256_loadu_ps(s + p), mv));
        _mm256_storeu_ps(s + p, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (p < nk) {
        float t[8] = {0};
        for (int64_t k = p; k < nk; k++) t[k - p] = exp_s(s[k] - mx);
        for (int64_t k = p; k < nk; k++) s[k] = t[k - p];
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(t));
    }
    return hsum_tree(acc);
#else
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t p = 0; p < nk; p++) {
        s[p] = exp_s(s[p] - mx);
        acc[p & 7] = acc[p & 7] + s[p];
    }
    return tree8(acc);
#endif
}

/* Keys per block: a block of K (then of V) is read by every head of a group while it is in
 * L1 (32 keys of 128 floats: 16 KiB); 256-key blocks, left to L2, took 1.3-1.6x the time. */
#define ATT_KB 32

/* Query heads [h0, h0+nh) of one row (nh heads sharing the KV head kh/vh), nk keys.
 * q and out point at head h0 (heads D floats apart); s: nh * (nk + 8) floats of scratch. */
static void attend_heads(const float *q, int64_t nh, const float *kh, const float *vh, int64_t rs,
                         int64_t nk, int64_t D, float scale, float *s, float *out) {
    const int64_t ls = nk + 8;
    for (int64_t p0 = 0; p0 < nk; p0 += ATT_KB) {
        int64_t p1 = p0 + ATT_KB < nk ? p0 + ATT_KB : nk;
        for (int64_t j = 0; j < nh; j++) scores_block(q + j * D, kh, rs, p0, p1, D, scale, s + j * ls);
    }
    float inv[64];
    for (int64_t j = 0; j < nh; j++) {
        inv[j] = 1.0f / softmax_numerators(s + j * ls, nk);
        memset(out + j * D, 0, (size_t)D * sizeof(float));
    }
    for (int64_t p0 = 0; p0 < nk; p0 += ATT_KB) {
        int64_t p1 = p0 + ATT_KB < nk ? p0 + ATT_KB : nk;
        for (int64_t j = 0; j < nh; j++) pv_block(s + j * ls, vh, rs, p0, p1, D, out + j * D);
    }
    for (int64_t j = 0; j < nh; j++)
        for (int64_t i = 0; i < D; i++) out[j * D + i] = out[j * D + i] * inv[j];
}

int sek_attention(const float *q, int64_t M, int64_t Hq, int64_t D, const float *k, const float *v,
                  int64_t Hkv, int64_t capacity, int64_t kv_head_stride, int64_t kv_row_stride,
                  int64_t start, float scale, float *out, int nthreads) {
    if (!q || !k || !v || !out || M < 0 || Hq <= 0 || D <= 0 || Hkv <= 0 || start < 0)
        return SEK_ERR_ARG;
    if (Hq % Hkv || start + M > capacity || kv_row_stride < D) return SEK_ERR_SHAPE;
    if (M == 0) return SEK_OK;
    nthreads = threads_for(nthreads, 2.0 * (double)M * (double)Hq * (double)(start + M) * (double)D);
    const int64_t grp = Hq / Hkv, nmax = start + M;
    /* A work item is (row, a run of heads sharing a KV head): whole groups when there are
     * enough items for the threads, else single heads. Either way each (row, head) gets the
     * same operations. */
    int64_t per = grp > 64 ? 64 : grp;
    while (per > 1 && M * (Hq / per + (Hq % per != 0)) < 2 * nthreads) per = (per + 1) / 2;
    while (grp % per) per--;
    const int64_t runs = Hq / per, items = M * runs;
    int err = SEK_OK;
#pragma omp parallel num_threads(nthreads) if (items > 1)
    {
        float *s = (float *)malloc((size_t)(per * (nmax + 8)) * sizeof(float));
        if (!s) {
#pragma omp atomic write
            err = SEK_ERR_NOMEM;
        }
        /* run-major, so consecutive items of a thread share the KV head's cache lines */
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!s) continue;
            int64_t h0 = (it / M) * per, m = it % M;
            const float *kh = k + (h0 / grp) * kv_head_stride, *vh = v + (h0 / grp) * kv_head_stride;
            attend_heads(q + (m * Hq + h0) * D, per, kh, vh, kv_row_stride, start + m + 1, D, scale, s,
                         out + (m * Hq + h0) * D);
        }
        free(s);
    }
    return err;
}

/* ------------------------------------------------------------------------------------------
 * d. rms_norm: y = x * (1 / sqrtf(fold(lanes of x*x) / H + eps)) * weight, per row.
 * ---------------------------------------------------------------------------------------- */

int sek_rms_norm(const float *x, int64_t M, int64_t H, const float *weight, float eps, float *y,
                 int nthreads) {
    if (!x || !weight || !y || M < 0 || H <= 0) return SEK_ERR_ARG;
    nthreads = threads_for(nthreads, 3.0 * (double)M * (double)H);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (M > 1)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * H;
        float *yr = y + m * H;
        float ss = dot_lanes(xr, xr, H);
        float mean = ss / (float)H;
        float r = 1.0f / sqrtf(mean + eps);
        int64_t i = 0;
#if SEK_SIMD
        const __m256 rv = _mm256_set1_ps(r);
        for (; i + 8 <= H; i += 8)
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), rv),
                                                   _mm256_loadu_ps(weight + i)));
#endif
        for (; i < H; i++) yr[i] = (xr[i] * r) * weight[i];
    }
    return SEK_OK;
}

/* ------------------------------------------------------------------------------------------
 * e. silu_mul: y = gate / (1 + exp(-gate)) * up, elementwise over [M, F] (row strides given).
 * ---------------------------------------------------------------------------------------- */

int sek_silu_mul(const float *gate, int64_t ldg, const float *up, int64_t ldu, int64_t M, int64_t F,
                 float *y, int64_t ldy, int nthreads) {
    if (!gate || !up || !y || M < 0 || F < 0 || ldg < F || ldu < F || ldy < F) return SEK_ERR_ARG;
    nthreads = threads_for(nthreads, 16.0 * (double)M * (double)F);
    /* parallel over rows, or over column chunks of a single row */
    const int64_t CH = 1024;
    const int64_t nch = (F + CH - 1) / CH, items = M * nch;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (items > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t m = it / nch, c0 = (it % nch) * CH, c1 = c0 + CH < F ? c0 + CH : F;
        const float *g = gate + m * ldg, *u = up + m * ldu;
        float *o = y + m * ldy;
        int64_t i = c0;
#if SEK_SIMD
        for (; i + 8 <= c1; i += 8)
            _mm256_storeu_ps(o + i, silu_mul_v(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
#endif
        for (; i < c1; i++) o[i] = silu_mul_s(g[i], u[i]);
    }
    return SEK_OK;
}

/* ------------------------------------------------------------------------------------------
 * f. get_rows: out[i, :] = dequantized row ids[i] of W [V, K] in ggml type wtype, with the
 * arithmetic of the format's definition (gguf.quants' numpy dequantize):
 *   Q4_0: d*(q-8)  Q5_0: d*(q-16)  Q8_0: d*q  Q4_1/Q5_1: d*q + m
 *   Q4_K/Q5_K: (d*sc)*q - dmin*m   Q6_K: (d*sc16)*(q-32)   F16/BF16: converted, F32: copied.
 * ---------------------------------------------------------------------------------------- */

static void dequant_row(int t, const uint8_t *row, int64_t K, float *o) {
    if (is_dense(t)) {
        for (int64_t k = 0; k < K; k++) o[k] = dense_w(t, row, k);
        return;
    }
    const int64_t nb = K / 32, ng = (nb + 7) / 8;
    uint8_t q[8][32];
    float dw[8], mw[8];
    int8_t sc[16];
    for (int64_t g = 0; g < ng; g++) {
        int n = unpack_group_scalar(t, row, g, nb, q, dw, mw, sc);
        float d6 = dw[0];
        for (int j = 0; j < n; j++) {
            float *oj = o + (8 * g + j) * 32;
            for (int i = 0; i < 32; i++) {
                int u = q[j][i];
                float v;
                switch (t) {
                case T_Q4_0: v = dw[j] * (float)(u - 8); break;
                case T_Q5_0: v = dw[j] * (float)(u - 16); break;
                case T_Q8_0: v = dw[j] * (float)(int8_t)q[j][i]; break;
                case T_Q6_K: v = (d6 * (float)sc[2 * j + i / 16]) * (float)(u - 32); break;
                default: v = dw[j] * (float)u + mw[j]; break; /* Q4_1, Q5_1, Q4_K, Q5_K */
                }
                oj[i] = v;
            }
        }
    }
}

int sek_get_rows(const void *w, int wtype, int64_t V, int64_t K, const int64_t *ids, int64_t n,
                 float *out, int nthreads) {
    int64_t blk, bytes;
    if (!type_info(wtype, &blk, &bytes)) return SEK_ERR_TYPE;
    if (!w || !ids || !out || V < 0 || n < 0) return SEK_ERR_ARG;
    if (K <= 0 || K % blk) return SEK_ERR_SHAPE;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) return SEK_ERR_ARG;
    nthreads = threads_for(nthreads, 4.0 * (double)n * (double)K);
    const int64_t wrow = K / blk * bytes;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (n > 1)
    for (int64_t i = 0; i < n; i++) dequant_row(wtype, (const uint8_t *)w + ids[i] * wrow, K, out + i * K);
    return SEK_OK;
}

/* ------------------------------------------------------------------------------------------
 * g. forward: a whole pass of a llama-family decoder, the composition of the kernels above
 * with the elementwise steps between them, in one call (the same operations, in the same
 * order, as composing them one call at a time; the decoder's tests hold it to that).
 *
 * For the M tokens ids at positions start..start+M-1, per layer:
 *   h = rms_norm(x, attn_norm)
 *   q, k, v = h @ Wq^T + bq, h @ Wk^T + bk, h @ Wv^T + bv   (h quantized once for all three)
 *   q, k = rotary(q), rotary(k); k and v written to the layer's cache at the positions
 *   x = x + attention(q, cache) @ Wo^T
 *   h = rms_norm(x, ffn_norm)
 *   x = x + (silu(h @ Wgate^T) * (h @ Wup^T)) @ Wdown^T     (h quantized once for both)
 * then logits of the last `keep` rows = rms_norm(x, final_norm) @ Woutput^T.
 * Rotary, per head, pair (a, b) = (x[i], x[i + D/2]) ("halves") or (x[2i], x[2i+1])
 * ("pairs"), c, s = cos, sin of row m, frequency i: (a*c - b*s, b*c + a*s), each product
 * and sum rounded (as torch computes it elementwise). Residual adds are float adds.
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    const void *data;   /* GGUF bytes (or dense values) */
    int64_t type;       /* ggml type */
    int64_t rows, cols; /* N, K */
    const float *bias;  /* N floats or NULL */
} sek_mat;

typedef struct {
    sek_mat q, k, v, o, gate, up, down;
    const float *attn_norm, *ffn_norm;
} sek_layer;

typedef struct {
    int64_t layers, hidden, ffn, heads, kv_heads, head_dim, vocab;
    int64_t rope_pairs; /* 0: halves, 1: adjacent pairs */
    float eps, scale;
    sek_mat embed, output;
    const float *final_norm;
    const sek_layer *layer;
} sek_model;

/* y = x @ W^T (+ bias): quantized W from xq (x quantized once by the caller), dense from x. */
static int mat_apply(const sek_mat *w, const float *x, const void *xq, int64_t M, float *y, int nthreads) {
    if (is_dense((int)w->type))
        return sek_matmul(x, M, w->cols, w->cols, w->data, (int)w->type, w->rows, w->bias, y, w->rows, nthreads);
    return sek_matmul_q8(xq, M, w->cols, w->data, (int)w->type, w->rows, w->bias, y, w->rows, nthreads);
}

static int needs_q8(const sek_mat *a, const sek_mat *b, const sek_mat *c) {
    return !is_dense((int)a->type) || !is_dense((int)b->type) || (c && !is_dense((int)c->type));
}

/* Rotary of `heads` heads of D values at x (heads D apart), in place, into out (may be x). */
static void rotary(const float *x, int64_t heads, int64_t D, const float *c, const float *s, int pairs, float *out) {
    const int64_t half = D / 2;
    for (int64_t h = 0; h < heads; h++) {
        const float *xh = x + h * D;
        float *oh = out + h * D;
        if (pairs) {
            for (int64_t i = 0; i < half; i++) {
                float a = xh[2 * i], b = xh[2 * i + 1];
                float ac = a * c[i], bs = b * s[i], bc = b * c[i], as = a * s[i];
                oh[2 * i] = ac - bs;
                oh[2 * i + 1] = bc + as;
            }
        } else {
            float tmp[256]; /* D <= 512: the first half's results wait while the second reads */
            for (int64_t i = 0; i < half; i++) {
                float a = xh[i], b = xh[i + half];
                float ac = a * c[i], bs = b * s[i];
                tmp[i] = ac - bs;
            }
            for (int64_t i = 0; i < half; i++) {
                float a = xh[i], b = xh[i + half];
                float bc = b * c[i], as = a * s[i];
                oh[i + half] = bc + as;
            }
            memcpy(oh, tmp, (size_t)half * sizeof(float));
        }
    }
}

/* ids [M] -> logits [keep, vocab] (the last keep rows); keys[l], values[l]: layer l's cache,
 * [kv_heads, capacity, head_dim] contiguous, positions 0..start-1 filled; cos, sin: [M,
 * head_dim/2], rows for positions start..start+M-1. */
int sek_forward(const sek_model *m, const int64_t *ids, int64_t M, int64_t start, float *const *keys,
                float *const *values, int64_t capacity, const float *cos, const float *sin, int64_t keep,
                float *logits, int nthreads) {
    if (!m || !ids || !keys || !values || !cos || !sin || !logits || M <= 0 || start < 0 || keep < 1 || keep > M)
        return SEK_ERR_ARG;
    const int64_t H = m->hidden, F = m->ffn, Hq = m->heads, Hkv = m->kv_heads, D = m->head_dim;
    if (D % 2 || D > 512 || start + M > capacity) return SEK_ERR_SHAPE;
    const int64_t QD = Hq * D, KD = Hkv * D, half = D / 2;
    const int64_t qrow = sek_q8_row_bytes(H); /* 0 where H % 32: then only dense weights work */
    /* scratch: x, h, q, k, v, att, o (M x ...), gate, up (M x F), the quantized rows */
    const size_t nf = (size_t)M * (size_t)(2 * H + QD + 2 * KD + QD + H + 2 * F);
    float *buf = (float *)aligned_alloc(64, (nf * sizeof(float) + (size_t)(M * qrow) + 63) / 64 * 64);
    if (!buf) return SEK_ERR_NOMEM;
    float *x = buf, *h = x + M * H, *q = h + M * H, *k = q + M * QD, *v = k + M * KD, *att = v + M * KD;
    float *o = att + M * QD, *gate = o + M * H, *up = gate + M * F;
    void *xq = up + M * F;
    int rc = sek_get_rows(m->embed.data, (int)m->embed.type, m->embed.rows, m->embed.cols, ids, M, x, nthreads);
    for (int64_t l = 0; l < m->layers && rc == SEK_OK; l++) {
        const sek_layer *L = m->layer + l;
        float *kc = keys[l], *vc = values[l];
        if ((rc = sek_rms_norm(x, M, H, L->attn_norm, m->eps, h, nthreads))) break;
        if (needs_q8(&L->q, &L->k, &L->v) && (rc = sek_quantize_rows_q8(h, M, H, H, xq, nthreads))) break;
        if ((rc = mat_apply(&L->q, h, xq, M, q, nthreads))) break;
        if ((rc = mat_apply(&L->k, h, xq, M, k, nthreads))) break;
        if ((rc = mat_apply(&L->v, h, xq, M, v, nthreads))) break;
        for (int64_t r = 0; r < M; r++) {
            const float *c = cos + r * half, *s = sin + r * half;
            rotary(q + r * QD, Hq, D, c, s, (int)m->rope_pairs, q + r * QD);
            for (int64_t j = 0; j < Hkv; j++) {
                float *kd = kc + (j * capacity + start + r) * D, *vd = vc + (j * capacity + start + r) * D;
                rotary(k + r * KD + j * D, 1, D, c, s, (int)m->rope_pairs, kd);
                memcpy(vd, v + r * KD + j * D, (size_t)D * sizeof(float));
            }
        }
        if ((rc = sek_attention(q, M, Hq, D, kc, vc, Hkv, capacity, capacity * D, D, start, m->scale, att, nthreads))) break;
        if ((rc = sek_matmul(att, M, QD, QD, L->o.data, (int)L->o.type, H, L->o.bias, o, H, nthreads))) break;
        for (int64_t i = 0; i < M * H; i++) x[i] = x[i] + o[i];
        if ((rc = sek_rms_norm(x, M, H, L->ffn_norm, m->eps, h, nthreads))) break;
        if (needs_q8(&L->gate, &L->up, NULL) && (rc = sek_quantize_rows_q8(h, M, H, H, xq, nthreads))) break;
        if ((rc = mat_apply(&L->gate, h, xq, M, gate, nthreads))) break;
        if ((rc = mat_apply(&L->up, h, xq, M, up, nthreads))) break;
        if ((rc = sek_silu_mul(gate, F, up, F, M, F, gate, F, nthreads))) break;
        if ((rc = sek_matmul(gate, M, F, F, L->down.data, (int)L->down.type, H, L->down.bias, o, H, nthreads))) break;
        for (int64_t i = 0; i < M * H; i++) x[i] = x[i] + o[i];
    }
    if (rc == SEK_OK) rc = sek_rms_norm(x + (M - keep) * H, keep, H, m->final_norm, m->eps, h, nthreads);
    if (rc == SEK_OK)
        rc = sek_matmul(h, keep, H, H, m->output.data, (int)m->output.type, m->output.rows, m->output.bias, logits,
                        m->output.rows, nthreads);
    free(buf);
    return rc;
}
