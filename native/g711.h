// ITU-T G.711 µ-law / A-law tables, the native twin of codecs/g711.ts. Same reference algorithms
// (Sun/CCITT g711.c), so the native and TypeScript paths produce identical bytes and samples —
// test/unit/codecs/native.test.ts checks every input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace botedge {

void G711Init();

void UlawDecode(const uint8_t* src, int16_t* dst, size_t n);
void UlawEncode(const int16_t* src, uint8_t* dst, size_t n);
void AlawDecode(const uint8_t* src, int16_t* dst, size_t n);
void AlawEncode(const int16_t* src, uint8_t* dst, size_t n);

}  // namespace botedge
