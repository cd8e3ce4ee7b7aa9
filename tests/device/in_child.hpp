// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Running part of a device test in a forked child (dropped privileges,
// signals, process death), for the test files that need it.

#ifndef DMAPLANE_TESTS_IN_CHILD_HPP
#define DMAPLANE_TESTS_IN_CHILD_HPP

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// Runs `body` in a child process; returns its exit status or 128+signal.
template <class F>
int in_child(F body) {
    const pid_t pid = fork();
    if (pid == 0)
        _exit(body());
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace

#endif // DMAPLANE_TESTS_IN_CHILD_HPP
