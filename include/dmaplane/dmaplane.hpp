// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Umbrella header: the whole dmaplane C++ library and its UAPI header.

#ifndef DMAPLANE_DMAPLANE_HPP
#define DMAPLANE_DMAPLANE_HPP

#include "dmaplane/uapi/dmaplane.h"

#include "dmaplane/device.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/result.hpp"

#endif // DMAPLANE_DMAPLANE_HPP
