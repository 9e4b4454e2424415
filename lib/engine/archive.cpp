// Reading a model file's zip archive (see archive.hpp). Zip format: PKWARE APPNOTE 6.3 (classic and ZIP64 end
// records, ZIP64 extra fields, stored and deflated entries).
#include "archive.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "attnprox/error.hpp"

namespace attnprox::archive {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50,
                   kEnd64 = 0x06064b50, kEnd64Locator = 0x07064b50;
constexpr size_t kMaxEntries = size_t{1} << 20;  // TorchScript files have one entry per tensor and code file
constexpr size_t kBlock = size_t{1} << 20;
constexpr uint64_t kMaxInflatedBytes = uint64_t{1} << 30;  // a compressed entry (torch stores tensors uncompressed)

uint16_t u16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const unsigned char* p) {
  return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

class Reader {
 public:
  explicit Reader(std::ifstream& in) : in_(in) {}
  bool read(uint64_t offset, void* out, size_t size) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(size));
    return static_cast<size_t>(in_.gcount()) == size;
  }

 private:
  std::ifstream& in_;
};

}  // namespace

void check_regular_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(ErrorCode::kNotFound, what + " '" + path + "' does not exist");
  if (fs::is_directory(status)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + path + "' is a directory, expected a " + what +
                    (what == "model file" ? " (a Hugging Face directory becomes one with `attnprox export`)" : ""));
  }
  if (!fs::is_regular_file(status)) {
    throw Error(ErrorCode::kInvalidArgument, what + " '" + path +
                                                 "' is not a regular file (a FIFO, socket or device); attnprox "
                                                 "reads files only");
  }
}

void ZipFile::fail(const std::string& what) const {
  throw Error(ErrorCode::kInvalidModel, "model file '" + path_ + "': " + what);
}

ZipFile::ZipFile(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "model file '" + path + "' cannot be read");
  in.seekg(0, std::ios::end);
  file_size_ = static_cast<uint64_t>(in.tellg());
  Reader reader(in);
  const char* not_zip = "not a TorchScript archive (a model file is a zip archive written by `attnprox export`)";
  if (file_size_ < 22) fail(not_zip);

  // The end of central directory record: the last one in the final 64 KiB + 22 bytes whose comment ends the file.
  const uint64_t tail_size = std::min<uint64_t>(file_size_, 65535 + 22);
  std::vector<unsigned char> tail(tail_size);
  if (!reader.read(file_size_ - tail_size, tail.data(), tail.size())) fail("cannot read its end");
  size_t end = std::string::npos;
  for (size_t i = tail.size() - 22 + 1; i-- > 0;) {
    if (u32(&tail[i]) == kEnd && i + 22 + u16(&tail[i + 20]) == tail.size()) {
      end = i;
      break;
    }
  }
  if (end == std::string::npos) fail(std::string(not_zip) + ": no end of central directory record");
  const unsigned char* e = &tail[end];
  uint64_t count = u16(e + 10), directory_size = u32(e + 12), directory_offset = u32(e + 16);
  if (u16(e + 4) != 0 || u16(e + 6) != 0 || u16(e + 8) != u16(e + 10)) fail("a multi-part zip archive");
  const uint64_t end_offset = file_size_ - tail_size + end;
  if (count == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    // ZIP64: the locator just before the end record points at the ZIP64 end record.
    unsigned char locator[20], end64[56];
    if (end_offset < 20 || !reader.read(end_offset - 20, locator, sizeof locator) || u32(locator) != kEnd64Locator) {
      fail("a ZIP64 archive without its ZIP64 end record locator");
    }
    const uint64_t at = u64(locator + 8);
    if (at > end_offset || !reader.read(at, end64, sizeof end64) || u32(end64) != kEnd64) {
      fail("the ZIP64 end of central directory record is missing");
    }
    count = u64(end64 + 32);
    directory_size = u64(end64 + 40);
    directory_offset = u64(end64 + 48);
  }
  if (count > kMaxEntries) fail("more than " + std::to_string(kMaxEntries) + " entries");
  if (directory_offset > end_offset || directory_size > end_offset - directory_offset) {
    fail("its central directory lies outside the file");
  }
  std::vector<unsigned char> directory(directory_size);
  if (!reader.read(directory_offset, directory.data(), directory.size())) fail("cannot read its central directory");

  size_t pos = 0;
  entries_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    if (pos + 46 > directory.size() || u32(&directory[pos]) != kCentralHeader) {
      fail("its central directory is damaged (entry " + std::to_string(k) + ")");
    }
    const unsigned char* c = &directory[pos];
    const uint16_t flags = u16(c + 8), name_size = u16(c + 28), extra_size = u16(c + 30), comment_size = u16(c + 32);
    if (pos + 46 + name_size + extra_size + comment_size > directory.size()) {
      fail("its central directory is damaged (entry " + std::to_string(k) + ")");
    }
    Entry entry;
    entry.name.assign(reinterpret_cast<const char*>(c + 46), name_size);
    entry.method = u16(c + 10);
    entry.crc = u32(c + 16);
    entry.compressed = u32(c + 20);
    entry.size = u32(c + 24);
    uint64_t header_offset = u32(c + 42);
    // ZIP64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
    for (size_t x = 0; x + 4 <= extra_size;) {
      const unsigned char* field = c + 46 + name_size + x;
      const uint16_t id = u16(field), size = u16(field + 2);
      if (x + 4 + size > extra_size) fail("entry '" + entry.name + "' has a damaged extra field");
      if (id == 0x0001) {
        size_t at = 4;
        auto take = [&](uint64_t& value) {
          if (value != 0xFFFFFFFF) return;
          if (at + 8 > 4u + size) fail("entry '" + entry.name + "' has a damaged ZIP64 field");
          value = u64(field + at);
          at += 8;
        };
        take(entry.size);
        take(entry.compressed);
        take(header_offset);
      }
      x += 4 + size;
    }
    if (flags & 0x0041) fail("entry '" + entry.name + "' is encrypted");
    if (entry.method != 0 && entry.method != 8) {
      fail("entry '" + entry.name + "' uses compression method " + std::to_string(entry.method) +
           " (stored and deflate are read)");
    }
    if (entry.method == 8 && entry.size > kMaxInflatedBytes) {
      fail("entry '" + entry.name + "' inflates to " + std::to_string(entry.size) + " bytes, more than the " +
           std::to_string(kMaxInflatedBytes) + " attnprox reads (libtorch would hold it in memory whole)");
    }
    if (entry.method == 0 && entry.compressed != entry.size) {
      fail("entry '" + entry.name + "' is stored but its sizes differ");
    }
    // The local header must name the same entry, with the same method (and, where it gives them, CRC and sizes).
    unsigned char local[30];
    if (header_offset > directory_offset || !reader.read(header_offset, local, sizeof local) ||
        u32(local) != kLocalHeader) {
      fail("entry '" + entry.name + "' has no local header where the central directory says");
    }
    const uint16_t local_flags = u16(local + 6), local_name = u16(local + 26), local_extra = u16(local + 28);
    std::string name(local_name, '\0');
    if (!reader.read(header_offset + 30, name.data(), name.size()) || name != entry.name ||
        u16(local + 8) != entry.method) {
      fail("entry '" + entry.name + "': its local header disagrees with the central directory");
    }
    if (!(local_flags & 0x0008)) {
      const uint32_t local_compressed = u32(local + 18), local_size = u32(local + 22);
      if (u32(local + 14) != entry.crc ||
          (local_compressed != 0xFFFFFFFF && local_compressed != entry.compressed) ||
          (local_size != 0xFFFFFFFF && local_size != entry.size)) {
        fail("entry '" + entry.name + "': its local header disagrees with the central directory");
      }
    }
    entry.data_offset = header_offset + 30 + local_name + local_extra;
    if (entry.data_offset > directory_offset || entry.compressed > directory_offset - entry.data_offset) {
      fail("entry '" + entry.name + "' extends past the end of the data");
    }
    entries_.push_back(std::move(entry));
    pos += 46 + name_size + extra_size + comment_size;
  }
  if (pos != directory.size()) fail("its central directory is damaged (its size and entries disagree)");
}

const Entry* ZipFile::find_record(const std::string& record) const {
  for (const Entry& entry : entries_) {
    const size_t slash = entry.name.find('/');
    if (slash != std::string::npos && entry.name.compare(slash + 1, std::string::npos, record) == 0) return &entry;
  }
  return nullptr;
}

template <typename Sink>
void ZipFile::stream(const Entry& entry, uint64_t limit, const std::string& what, Sink&& sink) const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "model file '" + path_ + "' cannot be read");
  in.seekg(static_cast<std::streamoff>(entry.data_offset));
  std::vector<unsigned char> input(std::min<uint64_t>(kBlock, std::max<uint64_t>(entry.compressed, 1)));
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t produced = 0, remaining = entry.compressed;
  auto take = [&](const unsigned char* data, size_t size) {
    produced += size;
    if (produced > entry.size) {
      fail(what + " is corrupt: it holds more data than its declared " + std::to_string(entry.size) + " bytes");
    }
    if (produced > limit) fail(what + " is larger than the " + std::to_string(limit) + " bytes attnprox reads");
    crc = crc32(crc, data, static_cast<uInt>(size));
    sink(data, size);
  };
  auto next_block = [&]() -> size_t {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(remaining, input.size()));
    in.read(reinterpret_cast<char*>(input.data()), static_cast<std::streamsize>(size));
    if (static_cast<size_t>(in.gcount()) != size) fail(what + " is truncated");
    remaining -= size;
    return size;
  };
  if (entry.method == 0) {
    while (remaining > 0) {
      const size_t size = next_block();
      take(input.data(), size);
    }
  } else {
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw std::bad_alloc();
    struct End {
      z_stream* z;
      ~End() { inflateEnd(z); }
    } end{&z};
    std::vector<unsigned char> output(kBlock);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      if (z.avail_in == 0) {
        if (remaining == 0) fail(what + " is corrupt: its compressed data ends early");
        z.avail_in = static_cast<uInt>(next_block());
        z.next_in = input.data();
      }
      z.next_out = output.data();
      z.avail_out = static_cast<uInt>(output.size());
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) fail(what + " is corrupt: its compressed data does not inflate");
      take(output.data(), output.size() - z.avail_out);
    }
  }
  if (produced != entry.size) {
    fail(what + " is corrupt: it holds " + std::to_string(produced) + " bytes, its header says " +
         std::to_string(entry.size));
  }
  if (crc != entry.crc) fail(what + " is corrupt: its CRC-32 does not match");
}

void ZipFile::verify_all() const {
  for (const Entry& entry : entries_) {
    stream(entry, UINT64_MAX, "entry '" + entry.name + "'", [](const unsigned char*, size_t) {});
  }
}

std::string ZipFile::read(const Entry& entry, uint64_t max_bytes, const std::string& what) const {
  if (entry.size > max_bytes) {
    fail(what + " is " + std::to_string(entry.size) + " bytes, more than the " + std::to_string(max_bytes) +
         " attnprox reads");
  }
  std::string out;
  out.reserve(static_cast<size_t>(entry.size));
  stream(entry, max_bytes, what, [&](const unsigned char* data, size_t size) {
    out.append(reinterpret_cast<const char*>(data), size);
  });
  return out;
}

}  // namespace attnprox::archive
