// The implementations of the single-header stb libraries the image module uses: stb_image
// (decoding) and stb_image_write (PNG previews). Compiled here once; other files include
// the headers for declarations only.
#include <cstddef>
#include <cstring>

namespace {

// stb_image 2.27 copies zero bytes from a null pointer on some malformed PNGs (an empty
// IDAT chunk first): undefined behaviour that lets the compiler drop later null checks.
// Its memcpy calls go through this instead.
void* copy_bytes(void* target, const void* source, std::size_t size) {
    return size == 0 ? target : std::memcpy(target, source, size);
}

}  // namespace

#define memcpy copy_bytes
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // we hand it bytes from memory; file handling is ours
#define STBI_NO_JPEG   // JPEG is libjpeg-turbo's (decode.cpp); stb_image 2.27's JPEG decoder
                       // also overruns a Huffman table on crafted files
#define STBI_NO_PIC    // not a format the tools take
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#undef memcpy
