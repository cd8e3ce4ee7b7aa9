// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
