#include "io/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "recur/error.hpp"

namespace recur::io {
namespace {

std::string reason(int error_number) { return std::strerror(error_number); }

[[noreturn]] void fail(const std::string& path, const std::string& what, int error_number) {
  throw Error(path + ": " + what + ": " + reason(error_number));
}

// Closes the descriptor on every path out of a scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  // Returns close()'s errno (0 on success); the descriptor is released either way.
  int close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void write_all(int fd, std::span<const uint8_t> bytes, const std::string& temp_path) {
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(temp_path, "cannot write", errno);
    }
    written += static_cast<size_t>(n);
  }
}

// Makes the rename itself durable. Some file systems refuse fsync on a directory (EINVAL): the data
// is already safe then, so only real I/O errors count.
void sync_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  FileDescriptor dir(fd);
  if (::fsync(dir.get()) != 0 && errno == EIO) fail(directory, "cannot sync directory", errno);
}

// A name beside `path` that no other writer (thread or process) picks: pid, a counter, the clock.
std::string temporary_path_for(const std::string& path, int attempt) {
  static std::atomic<uint64_t> counter{0};
  uint64_t ticks = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
         std::to_string((ticks + static_cast<uint64_t>(attempt)) % 1000000007u);
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open", errno);
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) fail(path, "cannot stat", errno);
  if (S_ISDIR(info.st_mode)) throw Error(path + ": cannot read: is a directory");
  std::vector<uint8_t> bytes;
  if (info.st_size > 0) bytes.reserve(static_cast<size_t>(info.st_size));
  uint8_t buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(file.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot read", errno);
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  return bytes;
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  std::string temp_path;
  int fd = -1;
  // O_EXCL with mode 0666: the umask applies as for any new file, and an existing file is never reused.
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temp_path = temporary_path_for(path, attempt);
    fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) fail(path, "cannot create the temporary file " + temp_path, errno);
  }
  if (fd < 0) fail(path, "cannot create a temporary file beside it", EEXIST);
  FileDescriptor file(fd);
  try {
    write_all(file.get(), bytes, temp_path);
    if (::fsync(file.get()) != 0) fail(temp_path, "cannot sync", errno);
    if (int error_number = file.close(); error_number != 0) fail(temp_path, "cannot close", error_number);
    if (::rename(temp_path.c_str(), path.c_str()) != 0)
      fail(path, "cannot rename " + temp_path + " to it", errno);
  } catch (...) {
    ::unlink(temp_path.c_str());
    throw;
  }
  sync_directory(directory_of(path));
}

}  // namespace recur::io
