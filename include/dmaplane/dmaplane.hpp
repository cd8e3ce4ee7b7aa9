// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Umbrella header: the whole dmaplane C++ library and its UAPI header.

#ifndef DMAPLANE_DMAPLANE_HPP
#define DMAPLANE_DMAPLANE_HPP

#include "dmaplane/uapi/dmaplane.h"

#include "dmaplane/buffer.hpp"
#include "dmaplane/channel.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/domain.hpp"
#include "dmaplane/endpoint.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/histogram.hpp"
#include "dmaplane/inet_address.hpp"
#include "dmaplane/kv_cache.hpp"
#include "dmaplane/kv_transfer.hpp"
#include "dmaplane/listener.hpp"
#include "dmaplane/mapping.hpp"
#include "dmaplane/memory_region.hpp"
#include "dmaplane/prep.hpp"
#include "dmaplane/rdma.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/ring.hpp"
#include "dmaplane/sync_wait.hpp"
#include "dmaplane/task.hpp"
#include "dmaplane/tensor.hpp"
#include "dmaplane/topology.hpp"
#include "dmaplane/version.hpp"

#endif // DMAPLANE_DMAPLANE_HPP
