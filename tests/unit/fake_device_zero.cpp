// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Links an example against the fake kernel: /dev/zero stands for
// /dev/dmaplane (pass it as the example's device path).
#include "fake_kernel.hpp"

namespace {

const bool use_dev_zero = (fake_kernel::device_path = "/dev/zero", true);

} // namespace
