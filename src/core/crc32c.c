/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Implementations, one picked at first use:
 *   - x86-64 with SSE4.2: the crc32 instruction, 8 bytes at a time;
 *   - AArch64 with the CRC extension (every Cortex-A53, the Pi 3's core):
 *     the crc32c instructions, 8 bytes at a time;
 *   - 32-bit ARM built for ARMv8 (armhf tuned for the Cortex-A53, i.e.
 *     32-bit Raspberry Pi OS on a Pi 3 or later): the same instructions in
 *     AArch32, 4 bytes at a time;
 *   - otherwise slicing-by-8 tables (built once, thread-safely).
 * The x86-64 and AArch64 paths are compiled with a target attribute and
 * chosen by a runtime CPU check, so one binary runs on CPUs with and
 * without them. gcc's 32-bit ARM cannot switch architecture per function
 * under the hard-float ABI, so that path exists only when the whole build
 * targets ARMv8 with CRC (__ARM_FEATURE_CRC32), and is still chosen by the
 * kernel's HWCAP2_CRC32. All give identical results (tests compare them on
 * every length and alignment up to a few hundred bytes).
 */
#include <pthread.h>
#include <string.h>

#include "core/crc32c.h"
#include "fedl/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FEDL_CRC_X86 1
#include <nmmintrin.h>
#elif defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define FEDL_CRC_ARM 1
#include <arm_acle.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(__arm__) && defined(__ARM_FEATURE_CRC32) && defined(__linux__)
#define FEDL_CRC_ARM32 1
#include <arm_acle.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

/* ------------------------------------------------------------ portable */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int s = 1; s < 8; s++)
            table[s][n] = (table[s - 1][n] >> 8) ^ table[0][table[s - 1][n] & 0xFF];
    }
}

uint32_t fedl_crc32c_portable(uint32_t crc, const void *data, size_t length)
{
    const unsigned char *p = data;
    pthread_once(&table_once, build_table);
    crc = ~crc;
    while (length >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
              table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^
              table[0][p[7]];
        p += 8;
        length -= 8;
    }
    while (length-- > 0)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

/* ------------------------------------------------------------ hardware */

#if defined(FEDL_CRC_X86) || defined(FEDL_CRC_ARM)
/* Eight bytes as a little-endian word, whatever their alignment. */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* x86-64 and AArch64 Linux are little-endian */
    return v;
}
#endif

#if defined(FEDL_CRC_X86)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data,
                                                               size_t length)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (length >= 8) {
        c = _mm_crc32_u64(c, load_le64(p));
        p += 8;
        length -= 8;
    }
    while (length-- > 0)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static int cpu_has_crc(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#define HARDWARE_CRC crc32c_sse42
#define HARDWARE_NAME "sse4.2"
#elif defined(FEDL_CRC_ARM)
__attribute__((target("+crc"))) static uint32_t crc32c_armv8(uint32_t crc, const void *data,
                                                             size_t length)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (length >= 8) {
        c = __crc32cd(c, load_le64(p));
        p += 8;
        length -= 8;
    }
    while (length-- > 0)
        c = __crc32cb(c, *p++);
    return ~c;
}

static int cpu_has_crc(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}
#define HARDWARE_CRC crc32c_armv8
#define HARDWARE_NAME "armv8-crc"
#elif defined(FEDL_CRC_ARM32)
/* Four bytes as a little-endian word, whatever their alignment. */
static inline uint32_t load_le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* armhf Linux is little-endian */
    return v;
}

static uint32_t crc32c_armv8_a32(uint32_t crc, const void *data, size_t length)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (length >= 4) {
        c = __crc32cw(c, load_le32(p));
        p += 4;
        length -= 4;
    }
    while (length-- > 0)
        c = __crc32cb(c, *p++);
    return ~c;
}

static int cpu_has_crc(void)
{
    return (getauxval(AT_HWCAP2) & HWCAP2_CRC32) != 0;
}
#define HARDWARE_CRC crc32c_armv8_a32
#define HARDWARE_NAME "armv8-crc"
#endif

/* ------------------------------------------------------------ dispatch */

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static crc_fn chosen = NULL;
static const char *chosen_name = "portable";
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    chosen = fedl_crc32c_portable;
#ifdef HARDWARE_CRC
    if (cpu_has_crc()) {
        chosen = HARDWARE_CRC;
        chosen_name = HARDWARE_NAME;
    }
#endif
}

uint32_t fedl_crc32c(uint32_t crc, const void *data, size_t length)
{
    pthread_once(&choose_once, choose);
    return chosen(crc, data, length);
}

const char *fedl_crc32c_implementation(void)
{
    pthread_once(&choose_once, choose);
    return chosen_name;
}
