#include "image/decode.hpp"

#include "core/error.hpp"
#include "core/input.hpp"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <stb_image.h>

#include <jpeglib.h>  // after <cstdio>: it needs FILE and size_t
#include <jerror.h>

namespace lowrank {
namespace {

// Larger images are refused rather than decoded into gigabytes (decompression bombs):
// 8192 x 8192. Pillow warns above 89 million pixels and refuses above twice that; stb_image
// needs three frames of RGBA for a GIF.
constexpr std::size_t max_pixels = std::size_t{1} << 26;

void check_dimensions(std::size_t width, std::size_t height, std::string_view path) {
    if (width == 0 || height == 0) throw error_in(path, "cannot decode: the image is empty");
    if (width * height > max_pixels)
        throw error_in(path, fmt::format("cannot decode: {}x{} is more than {} pixels", width, height, max_pixels));
}

// ------------------------------------------------------------------------------ JPEG

// libjpeg reports errors through a callback that must not return: it jumps back to the
// setjmp in run_jpeg with the message saved. Truncated data is only a warning to libjpeg
// (it pads with gray); Pillow refuses it ("image file is truncated"), and so do we.
struct jpeg_failure {
    jpeg_error_mgr manager;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool truncated;
};

extern "C" void jpeg_fail(j_common_ptr info) {
    auto* failure = reinterpret_cast<jpeg_failure*>(info->err);
    info->err->format_message(info, failure->message);
    std::longjmp(failure->jump, 1);
}

extern "C" void jpeg_warn(j_common_ptr info, int level) {
    auto* failure = reinterpret_cast<jpeg_failure*>(info->err);
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) failure->truncated = true;
}

struct jpeg_session {
    jpeg_decompress_struct info;
    jpeg_failure failure;
};

// The largest of 1/1, 1/2, 1/4 and 1/8 that keeps the decoded image at least as large as
// the target in both directions (Pillow's draft rule).
unsigned draft_denominator(std::size_t width, std::size_t height, const decode_options& options) {
    if (!options.draft_target) return 1;
    std::size_t target_width = width, target_height = height;
    options.draft_target(target_width, target_height);
    if (target_width == 0 || target_height == 0) return 1;
    std::size_t scale = std::min(width / target_width, height / target_height);
    return scale >= 8 ? 8 : scale >= 4 ? 4 : scale >= 2 ? 2 : 1;
}

// Pillow's CMYK to RGB: with n = 255 - K, each of R, G, B is n - C·n/255 (rounded the way
// its MULDIV255 rounds). Adobe's files store CMYK inverted (Pillow's "CMYK;I").
void cmyk_to_rgb(image& picture, bool inverted) {
    image rgb(picture.width, picture.height, 3);
    const std::uint8_t* in = picture.pixels.data();
    std::uint8_t* out = rgb.pixels.data();
    for (std::size_t i = 0, pixels = picture.width * picture.height; i < pixels; ++i, in += 4, out += 3) {
        int black = inverted ? 255 - in[3] : in[3];
        int remaining = 255 - black;
        for (int c = 0; c < 3; ++c) {
            int ink = inverted ? 255 - in[c] : in[c];
            int product = ink * remaining + 128;
            int scaled = ((product >> 8) + product) >> 8;
            out[c] = static_cast<std::uint8_t>(std::clamp(remaining - scaled, 0, 255));
        }
    }
    picture = std::move(rgb);
}

// The margin decoded around a region: the chroma upsampling of the pixels at the edge of a
// cropped decode reads beyond it, so those are not a full decode's; 16 pixels (an MCU) on
// each side keep the region's own pixels exact.
constexpr std::size_t region_margin = 16;

// The rows and columns to decode: the region asked for, with its margin, inside the image.
pixel_box decoded_region(const decode_options& options, std::size_t width, std::size_t height) {
    if (!options.region) return {0, 0, width, height};
    pixel_box region = options.region({width, height});
    std::size_t left = region.left > region_margin ? region.left - region_margin : 0;
    std::size_t top = region.top > region_margin ? region.top - region_margin : 0;
    std::size_t right = std::min(width, region.left + region.width + region_margin);
    std::size_t bottom = std::min(height, region.top + region.height + region_margin);
    if (right <= left || bottom <= top) return {0, 0, width, height};
    return {left, top, right - left, bottom - top};
}

// Decodes into `part`. Only references and plain data live in this frame, so the longjmp
// from jpeg_fail skips no destructor. Returns false with the message saved.
bool run_jpeg(jpeg_session& session, std::span<const std::byte> bytes, const decode_options& options,
              image_part& part, std::string_view path) {
    if (setjmp(session.failure.jump)) return false;
    jpeg_create_decompress(&session.info);
    jpeg_mem_src(&session.info, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&session.info, TRUE);
    check_dimensions(session.info.image_width, session.info.image_height, path);  // throws: no longjmp pending
    auto space = session.info.jpeg_color_space;
    bool cmyk = space == JCS_CMYK || space == JCS_YCCK;
    session.info.out_color_space = space == JCS_GRAYSCALE ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    session.info.scale_num = 1;
    session.info.scale_denom = draft_denominator(session.info.image_width, session.info.image_height, options);
    jpeg_start_decompress(&session.info);
    const unsigned height = session.info.output_height;
    part.full = {session.info.output_width, height};
    pixel_box region = decoded_region(options, session.info.output_width, height);
    JDIMENSION left = static_cast<JDIMENSION>(region.left), width = static_cast<JDIMENSION>(region.width);
    if (width < session.info.output_width) jpeg_crop_scanline(&session.info, &left, &width);  // widens to MCUs
    const unsigned top = static_cast<unsigned>(region.top), bottom = static_cast<unsigned>(region.top + region.height);
    part.left = left, part.top = top;
    part.pixels = image(session.info.output_width, bottom - top,
                        static_cast<std::size_t>(session.info.output_components));
    if (top > 0) jpeg_skip_scanlines(&session.info, top);
    while (session.info.output_scanline < bottom) {
        JSAMPROW rows[4];
        unsigned first = session.info.output_scanline;
        unsigned count = std::min(4u, bottom - first);
        for (unsigned i = 0; i < count; ++i) rows[i] = part.pixels.row(first - top + i);
        jpeg_read_scanlines(&session.info, rows, count);
        if (session.failure.truncated) return true;
    }
    // The rows below are still read (not decoded), so that a truncated file is noticed.
    if (bottom < height) jpeg_skip_scanlines(&session.info, height - bottom);
    jpeg_finish_decompress(&session.info);
    return true;
}

image_part decode_jpeg(std::span<const std::byte> bytes, std::string_view path, const decode_options& options,
                       image_size* stored) {
    auto session = std::make_unique<jpeg_session>();
    std::memset(session.get(), 0, sizeof(jpeg_session));
    session->info.err = jpeg_std_error(&session->failure.manager);
    session->failure.manager.error_exit = jpeg_fail;
    session->failure.manager.emit_message = jpeg_warn;
    image_part part;
    bool ok = false;
    try {
        ok = run_jpeg(*session, bytes, options, part, path);
    } catch (...) {
        jpeg_destroy_decompress(&session->info);
        throw;
    }
    bool inverted = session->info.saw_Adobe_marker;
    if (stored) *stored = {session->info.image_width, session->info.image_height};
    jpeg_destroy_decompress(&session->info);
    if (!ok) throw error_in(path, fmt::format("cannot decode JPEG: {}", session->failure.message));
    if (session->failure.truncated) throw error_in(path, "cannot decode JPEG: the file is truncated");
    if (part.pixels.channels == 4) cmyk_to_rgb(part.pixels, inverted);
    return part;
}

// --------------------------------------------------------------------------- stb_image

// A PNG's size, from its IHDR chunk (signature, length, "IHDR", width, height: big-endian).
// stb_image refuses PNGs of over 2^30 bytes of pixels itself, but then tries the other
// formats and reports "unknown image type"; read here, the size gives the real reason.
void check_png_dimensions(std::span<const std::byte> bytes, std::string_view path) {
    static constexpr unsigned char signature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    if (bytes.size() < 24 || std::memcmp(bytes.data(), signature, sizeof signature) != 0) return;
    auto big_endian = [&](std::size_t at) {
        std::size_t value = 0;
        for (std::size_t i = at; i < at + 4; ++i) value = value << 8 | std::to_integer<std::size_t>(bytes[i]);
        return value;
    };
    check_dimensions(big_endian(16), big_endian(20), path);
}

image decode_with_stb(std::span<const std::byte> bytes, std::string_view path, image_size* stored) {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) throw error_in(path, "cannot decode: file too large");
    check_png_dimensions(bytes, path);
    auto data = reinterpret_cast<const stbi_uc*>(bytes.data());
    int length = static_cast<int>(bytes.size());
    int width = 0, height = 0, channels = 0;
    if (!stbi_info_from_memory(data, length, &width, &height, &channels))
        throw error_in(path, fmt::format("cannot decode: {}", stbi_failure_reason()));
    check_dimensions(static_cast<std::size_t>(width), static_cast<std::size_t>(height), path);
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(data, length, &width, &height, &channels, 0),
                                                     stbi_image_free);
    if (!pixels) throw error_in(path, fmt::format("cannot decode: {}", stbi_failure_reason()));
    image picture(static_cast<std::size_t>(width), static_cast<std::size_t>(height),
                  static_cast<std::size_t>(channels));
    std::memcpy(picture.pixels.data(), pixels.get(), picture.pixels.size());
    if (stored) *stored = {picture.width, picture.height};
    return picture;
}

}  // namespace

bool is_jpeg(std::span<const std::byte> bytes) {
    return bytes.size() >= 3 && bytes[0] == std::byte{0xFF} && bytes[1] == std::byte{0xD8} &&
           bytes[2] == std::byte{0xFF};
}

image_part decode_part(std::span<const std::byte> bytes, std::string_view path, const decode_options& options,
                       image_size* stored) {
    if (bytes.empty()) throw error_in(path, "cannot decode: empty file");
    if (is_jpeg(bytes)) return decode_jpeg(bytes, path, options, stored);
    image_part whole{decode_with_stb(bytes, path, stored), 0, 0, {}};
    whole.full = {whole.pixels.width, whole.pixels.height};
    return whole;
}

image decode_image(std::span<const std::byte> bytes, std::string_view path, const decode_options& options,
                   image_size* stored) {
    decode_options whole = options;
    whole.region = nullptr;
    return decode_part(bytes, path, whole, stored).pixels;
}

image_part read_image_part(const std::string& path, const decode_options& options, image_size* stored) {
    input_text input(path);
    auto text = input.text();
    return decode_part({reinterpret_cast<const std::byte*>(text.data()), text.size()}, path, options, stored);
}

image read_image(const std::string& path, const decode_options& options, image_size* stored) {
    decode_options whole = options;
    whole.region = nullptr;
    return read_image_part(path, whole, stored).pixels;
}

}  // namespace lowrank
