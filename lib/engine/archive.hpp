// Reading a model file's zip archive before libtorch does (docs/model-file.md, docs/limits.md): the central
// directory checked against each local header, the CRC-32 of every entry, and the attnprox entries read with a
// bound on their size (declared and inflated). No libtorch here; zlib inflates compressed entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnprox::archive {

struct Entry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc = 0;
  uint64_t compressed = 0, size = 0;
  uint64_t data_offset = 0;  // where its data starts in the file
};

/// Throws Error(kNotFound) for a path that does not exist, Error(kInvalidArgument) for one that is not a regular
/// file (a directory, FIFO, socket or device: refused before it is opened, since opening a FIFO blocks), and
/// otherwise nothing. `what` names the file in messages ("model file").
void check_regular_file(const std::string& path, const std::string& what);

class ZipFile {
 public:
  /// Reads the central directory; throws Error(kInvalidModel) "model file '<path>': ..." for a file that is not a
  /// well-formed zip archive (entries outside the file, local headers that disagree with the directory,
  /// encryption, methods other than stored and deflate).
  explicit ZipFile(const std::string& path);

  const std::vector<Entry>& entries() const { return entries_; }
  /// The entry whose name is `record` below the archive's top folder (TorchScript's "<archive>/<record>").
  const Entry* find_record(const std::string& record) const;
  /// Reads every entry once and checks its size and CRC-32; throws Error(kInvalidModel) naming the first entry
  /// that does not match (a corrupt or truncated file).
  void verify_all() const;
  /// An entry's bytes, checked (size, CRC-32); throws Error(kInvalidModel) when it is, or inflates to, more than
  /// `max_bytes` bytes (without inflating further), `what` naming it.
  std::string read(const Entry& entry, uint64_t max_bytes, const std::string& what) const;

 private:
  [[noreturn]] void fail(const std::string& what) const;
  /// Streams the entry's uncompressed bytes to `sink` (at most `limit` in all) and checks size and CRC-32.
  template <typename Sink>
  void stream(const Entry& entry, uint64_t limit, const std::string& what, Sink&& sink) const;

  std::string path_;
  uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace attnprox::archive
