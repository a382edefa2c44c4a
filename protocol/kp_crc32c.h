/*
 * CRC-32C (Castagnoli), as RecordBatch v2 uses. kp_crc32c picks the CPU's CRC instruction
 * (SSE4.2 on x86-64, ARMv8 CRC32C on arm64) when it has it (checked once at run time) and a
 * slicing table otherwise; both are exported so tests can
 * hold them to the same vectors. crc is the running value: start with 0.
 */
#ifndef KP_CRC32C_H
#define KP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t kp_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t kp_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* Returns kp_crc32c_sw's answer on CPUs without the instruction. */
uint32_t kp_crc32c_hw(uint32_t crc, const void *data, size_t len);
int kp_crc32c_hw_available(void);

#endif
