// Checks of the paths the engine reads, before libtorch opens them: a clear reason for a path that cannot be read.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "internal.hpp"

namespace attnprox {

void check_readable(const std::string& path, const char* what) {
  if (path.find('\0') != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " path holds a NUL character (\"" +
                                                 path.substr(0, path.find('\0')) + "\\0...\"): a path cannot");
  }
  if (path.empty()) throw Error(ErrorCode::kInvalidArgument, std::string(what) + " path is empty");
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    if (error == ENOENT) throw Error(ErrorCode::kNotFound, std::string(what) + " '" + path + "' does not exist");
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + " '" + path + "' cannot be read: " + std::strerror(error) +
                    (error == ENOTDIR ? " (a folder on its path is a file)" : ""));
  }
  if (S_ISDIR(info.st_mode)) return;  // the caller says what a folder is not
  if (::access(path.c_str(), R_OK) != 0) {
    const int error = errno;
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + " '" + path + "' cannot be read: " + std::strerror(error));
  }
}

}  // namespace attnprox
