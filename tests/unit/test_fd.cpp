// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
#include "dmaplane/fd.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/result.hpp"

using dmaplane::result;
using dmaplane::unique_fd;
namespace sys = dmaplane::detail::sys;

static_assert(!std::is_copy_constructible_v<unique_fd>);
static_assert(!std::is_copy_assignable_v<unique_fd>);
static_assert(std::is_nothrow_move_constructible_v<unique_fd>);
static_assert(std::is_nothrow_move_assignable_v<unique_fd>);
static_assert(std::is_nothrow_destructible_v<unique_fd>);
static_assert(std::is_nothrow_default_constructible_v<unique_fd>);
static_assert(!std::is_convertible_v<int, unique_fd>);       // explicit adoption only
static_assert(!std::is_convertible_v<unique_fd, bool>);      // explicit operator bool
static_assert(std::is_nothrow_move_constructible_v<result<unique_fd>>);
static_assert(noexcept(std::declval<unique_fd&>().reset()));
static_assert(noexcept(std::declval<unique_fd&>().release()));

namespace {

// True while `fd` names an open file description in this process.
bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

// True when `fd` is closed: F_GETFD fails with EBADF.
bool is_closed(int fd) {
    errno = 0;
    const int rc = ::fcntl(fd, F_GETFD);
    return rc == -1 && errno == EBADF;
}

struct pipe_pair {
    unique_fd read_end;
    unique_fd write_end;
};

pipe_pair make_pipe() {
    std::array<int, 2> fds{-1, -1};
    REQUIRE(::pipe2(fds.data(), O_CLOEXEC) == 0);
    return {unique_fd{fds[0]}, unique_fd{fds[1]}};
}

result<unique_fd> open_fd(const char* path) {
    result<int> fd = sys::open(path, O_RDONLY);
    if (!fd)
        return dmaplane::unexpected{fd.error()};
    return unique_fd{*fd};
}

} // namespace

TEST_CASE("an empty unique_fd holds -1") {
    unique_fd fd;
    CHECK(fd.get() == -1);
    CHECK(fd.native_handle() == -1);
    CHECK(!fd);
    fd.reset(); // closing nothing is fine
    CHECK(fd.get() == -1);
    CHECK(fd.release() == -1);

    unique_fd negative{-42};
    CHECK(negative.get() == -1);
    CHECK(!negative);
}

TEST_CASE("destruction closes the descriptor") {
    int raw = -1;
    {
        pipe_pair p = make_pipe();
        raw = p.read_end.get();
        CHECK(static_cast<bool>(p.read_end));
        CHECK(p.read_end.native_handle() == raw);
        CHECK(is_open(raw));
    }
    CHECK(is_closed(raw));
}

TEST_CASE("reset closes the old descriptor and adopts the new one") {
    pipe_pair p = make_pipe();
    const int r = p.read_end.get();
    const int w = p.write_end.release();
    CHECK(!p.write_end);

    p.read_end.reset(w);
    CHECK(is_closed(r));
    CHECK(p.read_end.get() == w);
    CHECK(is_open(w));

    p.read_end.reset(w); // same descriptor: kept, not closed
    CHECK(is_open(w));
    CHECK(p.read_end.get() == w);

    p.read_end.reset();
    CHECK(is_closed(w));
    CHECK(p.read_end.get() == -1);
}

TEST_CASE("release gives up ownership without closing") {
    pipe_pair p = make_pipe();
    const int r = p.read_end.get();
    const int released = p.read_end.release();
    CHECK(released == r);
    CHECK(p.read_end.get() == -1);
    CHECK(!p.read_end);
    CHECK(is_open(r));
    CHECK(::close(r) == 0);
}

TEST_CASE("moving transfers ownership and leaves the source empty") {
    pipe_pair p = make_pipe();
    const int r = p.read_end.get();
    const int w = p.write_end.get();

    unique_fd a = std::move(p.read_end);
    CHECK(a.get() == r);
    CHECK(p.read_end.get() == -1); // NOLINT(bugprone-use-after-move)
    CHECK(!p.read_end);            // NOLINT(bugprone-use-after-move)

    // Move-assignment closes what the target held.
    a = std::move(p.write_end);
    CHECK(is_closed(r));
    CHECK(a.get() == w);
    CHECK(p.write_end.get() == -1); // NOLINT(bugprone-use-after-move)
    CHECK(is_open(w));

    unique_fd& alias = a;
    a = std::move(alias); // self-move: unchanged
    CHECK(a.get() == w);
    CHECK(is_open(w));

    unique_fd b;
    swap(a, b);
    CHECK(a.get() == -1);
    CHECK(b.get() == w);
}

TEST_CASE("data flows through the owned descriptors") {
    pipe_pair p = make_pipe();
    const char msg[] = "dmaplane";
    REQUIRE(::write(p.write_end.get(), msg, sizeof msg) == static_cast<ssize_t>(sizeof msg));
    p.write_end.reset();
    std::array<char, 16> buf{};
    CHECK(::read(p.read_end.get(), buf.data(), buf.size()) == static_cast<ssize_t>(sizeof msg));
    CHECK(std::strcmp(buf.data(), msg) == 0);
    CHECK(::read(p.read_end.get(), buf.data(), buf.size()) == 0); // writer closed: EOF
}

TEST_CASE("result<unique_fd>") {
    result<unique_fd> ok = open_fd("/dev/null");
    REQUIRE(ok);
    const int raw = ok->get();
    CHECK(is_open(raw));

    result<unique_fd> moved = std::move(ok);
    REQUIRE(moved);
    CHECK(moved->get() == raw);
    CHECK(ok->get() == -1); // NOLINT(bugprone-use-after-move): moved-from value is empty

    unique_fd owned = std::move(moved).value();
    CHECK(owned.get() == raw);
    CHECK(moved->get() == -1); // NOLINT(bugprone-use-after-move)
    owned.reset();
    CHECK(is_closed(raw));

    result<unique_fd> missing = open_fd("/nonexistent/dmaplane");
    CHECK(!missing);
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    CHECK_THROWS_AS((void)missing.value(), std::system_error);
}

TEST_CASE("sys::open sets O_CLOEXEC and reports errno") {
    result<int> fd = sys::open("/dev/null", O_RDWR);
    REQUIRE(fd);
    unique_fd owner{*fd};
    CHECK((::fcntl(owner.get(), F_GETFD) & FD_CLOEXEC) != 0);

    result<int> missing = sys::open("/nonexistent/dmaplane", O_RDONLY);
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    CHECK(missing.error().category() == std::system_category());

    result<int> dir = sys::open("/", O_WRONLY);
    CHECK(dir.error() == std::errc::is_a_directory);
}

TEST_CASE("sys::close") {
    pipe_pair p = make_pipe();
    const int r = p.read_end.release();
    CHECK(sys::close(r).has_value());
    CHECK(is_closed(r));
    result<void> again = sys::close(r);
    CHECK(again.error() == std::errc::bad_file_descriptor);
    CHECK(sys::close(-1).error() == std::errc::bad_file_descriptor);
}

TEST_CASE("sys::ioctl reports errno") {
    pipe_pair p = make_pipe();
    int queued = -1;
    result<int> ok = sys::ioctl(p.read_end.get(), FIONREAD, &queued);
    REQUIRE(ok);
    CHECK(*ok == 0);
    CHECK(queued == 0);

    result<int> notty = sys::ioctl(p.read_end.get(), TCGETS, nullptr);
    CHECK(notty.error() == std::errc::inappropriate_io_control_operation);

    result<int> badf = sys::ioctl(-1, FIONREAD, &queued);
    CHECK(badf.error() == std::errc::bad_file_descriptor);
}

TEST_CASE("sys::mmap and sys::munmap") {
    const std::size_t len = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    result<void*> m = sys::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
    REQUIRE(m);
    CHECK(*m != MAP_FAILED);
    auto* bytes = static_cast<unsigned char*>(*m);
    bytes[0] = 0xab;
    bytes[len - 1] = 0xcd;
    CHECK(bytes[0] == 0xab);
    CHECK(sys::munmap(*m, len).has_value());

    result<void*> bad = sys::mmap(nullptr, len, PROT_READ, MAP_SHARED, -1, 0);
    CHECK(bad.error() == std::errc::bad_file_descriptor);

    result<void*> zero = sys::mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(zero.error() == std::errc::invalid_argument);

    // munmap of a misaligned address is EINVAL.
    result<void> unaligned = sys::munmap(reinterpret_cast<void*>(std::uintptr_t{1}), len);
    CHECK(unaligned.error() == std::errc::invalid_argument);
}
