// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Built with -fno-exceptions (and -fno-rtti): the whole library must compile
// that way, and result<T>::value() on an error must abort rather than throw.
// Plain main, no doctest: exits 0 when every check holds, 1 otherwise.
#include "dmaplane/dmaplane.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__cpp_exceptions)
#error "this test must be built with -fno-exceptions"
#endif

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

#define DMAPLANE_CHECK(expr) check((expr), #expr)

// Runs `fn` in a child and reports whether the child died of SIGABRT.
template <class F>
bool aborts(F fn) {
    const pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        fn();
        ::_exit(0); // value() returned: not an abort
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

dmaplane::result<dmaplane::unique_fd> open_null() {
    dmaplane::result<int> fd = dmaplane::detail::sys::open("/dev/null", O_RDONLY);
    if (!fd)
        return dmaplane::unexpected{fd.error()};
    return dmaplane::unique_fd{*fd};
}

} // namespace

int main() {
    dmaplane::result<int> ok = 3;
    DMAPLANE_CHECK(ok.has_value());
    DMAPLANE_CHECK(ok.value() == 3);

    dmaplane::result<int> err = dmaplane::from_neg_errno(-ENOENT);
    DMAPLANE_CHECK(!err);
    DMAPLANE_CHECK(err.error() == std::errc::no_such_file_or_directory);
    DMAPLANE_CHECK(err.value_or(9) == 9);

    dmaplane::result<dmaplane::unique_fd> fd = open_null();
    DMAPLANE_CHECK(fd.has_value());
    const int raw = fd.has_value() ? fd->get() : -1;
    DMAPLANE_CHECK(raw >= 0);
    dmaplane::unique_fd owned = std::move(fd).value();
    DMAPLANE_CHECK(owned.get() == raw);
    owned.reset();
    errno = 0;
    DMAPLANE_CHECK(::fcntl(raw, F_GETFD) == -1 && errno == EBADF);

    dmaplane::result<dmaplane::device> dev = dmaplane::device::open("/nonexistent/dmaplane");
    DMAPLANE_CHECK(dev.error() == std::errc::no_such_file_or_directory);

    DMAPLANE_CHECK(aborts([] {
        dmaplane::result<int> r = dmaplane::make_error(EIO);
        (void)r.value();
    }));
    DMAPLANE_CHECK(aborts([] {
        dmaplane::result<void> r = dmaplane::make_error(EIO);
        r.value();
    }));
    DMAPLANE_CHECK(!aborts([] {
        dmaplane::result<int> r = 1;
        (void)r.value();
    }));

    if (failures == 0)
        std::puts("no_exceptions: all checks passed");
    return failures == 0 ? 0 : 1;
}
