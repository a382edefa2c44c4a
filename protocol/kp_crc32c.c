/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) behind kp_crc32c.h.
 *
 * Two paths computing the same function: a CRC instruction, eight bytes per step, where the
 * CPU has one (SSE4.2 crc32 on x86-64, the ARMv8 CRC32C instructions on arm64, each checked
 * at run time since a generic build must still start on a CPU without them) and slicing-by-8
 * tables for every other CPU (armhf included). The running value is kept
 * pre- and post-inverted, so crc = kp_crc32c(kp_crc32c(0, a), b) equals the CRC of a||b.
 *
 * Thread-safety: every function may be called from any thread; the tables are built once
 * under pthread_once.
 */
#include "protocol/kp_crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static inline uint64_t load_le64(const uint8_t *p)
{
    /* Byte-wise so the result is the same on big-endian CPUs and no unaligned load occurs. */
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint32_t kp_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, table_build);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

/*
 * The crc32 instruction takes 3 cycles and can start one per cycle, so one dependent chain
 * uses a third of it. Long inputs therefore run three chains over three adjacent lanes of
 * LANE bytes and join them: with the register r (not inverted) after a lane, appending n more
 * bytes is linear, r' = shift_n(r) ^ crc_from_0(those bytes), where shift_n multiplies by
 * x^(8n) mod P. So crc(a||b||c) = shift(shift(ra) ^ rb) ^ rc, with ra started from the running
 * register and rb, rc from 0. shift_LANE is four 256-entry tables (one per byte of r), built
 * once from the 32 single-bit registers run through LANE zero bytes.
 */
#define LANE 4096

static uint32_t shift_tab[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_build(void)
{
    pthread_once(&table_once, table_build);
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) {
        uint32_t c = 1u << bit;
        for (int i = 0; i < LANE; i++) /* one zero byte, on the raw register */
            c = (c >> 8) ^ table[0][c & 0xff];
        basis[bit] = c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                if (b & (1u << i)) v ^= basis[8 * k + i];
            shift_tab[k][b] = v;
        }
}

static inline uint32_t shift_lane(uint32_t r)
{
    return shift_tab[0][r & 0xff] ^ shift_tab[1][(r >> 8) & 0xff] ^
           shift_tab[2][(r >> 16) & 0xff] ^ shift_tab[3][r >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
                                                            size_t len)
{
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    if (len >= 3 * LANE) pthread_once(&shift_once, shift_build);
    while (len >= 3 * LANE) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < LANE; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + LANE + i, 8);
            memcpy(&wd, p + 2 * LANE + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            d = _mm_crc32_u64(d, wd);
        }
        c = shift_lane(shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * LANE;
        len -= 3 * LANE;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* aligned here; memcpy keeps UBSan and strict aliasing quiet */
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

int kp_crc32c_hw_available(void)
{
    static _Atomic int cached = -1;
    int v = cached;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        cached = v;
    }
    return v;
}

uint32_t kp_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    if (!kp_crc32c_hw_available()) return kp_crc32c_sw(crc, data, len);
    return crc_sse42(crc, data, len);
}
#elif defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7) /* arch/arm64/include/uapi/asm/hwcap.h */
#endif

/* Only this function is compiled for +crc: the rest of the build stays plain armv8-a so the
 * binary runs on boards whose cores lack the (optional in ARMv8.0) CRC extension. */
__attribute__((target("+crc"))) static uint32_t crc_armv8(uint32_t crc, const uint8_t *p,
                                                          size_t len)
{
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = __crc32cb(c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* arm64 Linux is little-endian, as the instruction expects */
        c = __crc32cd(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __crc32cb(c, *p++);
    return ~c;
}

int kp_crc32c_hw_available(void)
{
    static _Atomic int cached = -1;
    int v = cached;
    if (v < 0) {
        v = (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
        cached = v;
    }
    return v;
}

uint32_t kp_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    if (!kp_crc32c_hw_available()) return kp_crc32c_sw(crc, data, len);
    return crc_armv8(crc, data, len);
}
#else
int kp_crc32c_hw_available(void)
{
    return 0;
}

uint32_t kp_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return kp_crc32c_sw(crc, data, len);
}
#endif

uint32_t kp_crc32c(uint32_t crc, const void *data, size_t len)
{
    return kp_crc32c_hw(crc, data, len);
}
