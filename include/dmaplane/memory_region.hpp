// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::memory_region: a range of a buffer registered with an RDMA
// device (DMAPLANE_IOC_MR_REGISTER), made by device::register_memory();
// mr_range, a part of one that RDMA operations name as their local side;
// remote_token, what a peer needs to name it as the remote side of its
// RDMA WRITE and READ operations (sent to it by any means, as 16 bytes);
// foreign_region, a registration of a peer that is not dmaplane (an rkey
// and an address, as ibv_reg_mr() describes it).

#ifndef DMAPLANE_MEMORY_REGION_HPP
#define DMAPLANE_MEMORY_REGION_HPP

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dmaplane/buffer.hpp"
#include "dmaplane/detail/object.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

class device; // device.hpp: the only maker of registrations

namespace detail {

// Copies `name` NUL-terminated into a request's RDMA device name; false
// when it does not fit or holds a NUL. An empty name leaves `out` zero.
[[nodiscard]] inline bool copy_name(std::string_view name,
                                    std::uint8_t (&out)[DMAPLANE_RDMA_NAME_MAX]) noexcept {
    if (name.size() >= sizeof out || name.find('\0') != std::string_view::npos)
        return false;
    if (!name.empty())
        std::memcpy(out, name.data(), name.size());
    return true;
}

} // namespace detail

/// What a registration allows (DMAPLANE_ACCESS_*); combine with `|`.
/// Every registration may be read locally (WRITE and SEND sources).
/// Thread-safety: a plain value.
enum class mr_access : std::uint32_t {
    /// Local reads only.
    none = 0,
    /// RDMA READ and RECV may write into it (DMAPLANE_ACCESS_LOCAL_WRITE).
    local_write = DMAPLANE_ACCESS_LOCAL_WRITE,
    /// Peers may RDMA READ it (DMAPLANE_ACCESS_REMOTE_READ).
    remote_read = DMAPLANE_ACCESS_REMOTE_READ,
    /// Peers may RDMA WRITE it (DMAPLANE_ACCESS_REMOTE_WRITE); implies
    /// local_write.
    remote_write = DMAPLANE_ACCESS_REMOTE_WRITE,
};

/// The union of two access sets. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr mr_access operator|(mr_access a, mr_access b) noexcept {
    return static_cast<mr_access>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}

/// The intersection of two access sets. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr mr_access operator&(mr_access a, mr_access b) noexcept {
    return static_cast<mr_access>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}

/// Adds `b` to `a`. Errors: none. Thread-safety: writes `a` only.
constexpr mr_access& operator|=(mr_access& a, mr_access b) noexcept { return a = a | b; }

/// True when `set` holds every bit of `wanted` (false for none).
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr bool has_access(mr_access set, mr_access wanted) noexcept {
    return wanted != mr_access::none && (set & wanted) == wanted;
}

/// What a peer needs to name a registration in its RDMA WRITE and READ
/// operations: the module's opaque token (never a kernel address) and the
/// registration's length, which lets the peer's library check a remote
/// range before submitting. Send it as to_bytes() and rebuild it with
/// from_bytes(). Trivially copyable. Thread-safety: a plain value.
struct remote_token {
    /// Bytes of the serialized form.
    static constexpr std::size_t serialized_size = 16;

    /// The module's token (0: the registration allows no remote access).
    std::uint64_t value = 0;
    /// Bytes registered: remote offsets run from 0 to length.
    std::uint64_t length = 0;

    /// True when the token allows remote access at all.
    explicit constexpr operator bool() const noexcept { return value != 0; }

    /// The rkey a verbs peer (libibverbs, UCX, NIXL...) puts in its work
    /// requests to reach this registration (dmaplane_token_rkey()).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] std::uint32_t rkey() const noexcept { return dmaplane_token_rkey(value); }

    /// The remote address a verbs peer puts in its work requests for byte
    /// `offset` of this registration (dmaplane_token_addr()); the peer's
    /// device refuses bytes past length. Not a virtual address of anything.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] std::uint64_t remote_address(std::uint64_t offset = 0) const noexcept {
        return dmaplane_token_addr(value, offset);
    }

    /// value then length, 8 bytes each, little-endian.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr std::array<std::byte, serialized_size> to_bytes() const noexcept {
        std::array<std::byte, serialized_size> out{};
        for (std::size_t i = 0; i < 8; ++i) {
            out[i] = static_cast<std::byte>(value >> (8 * i));
            out[8 + i] = static_cast<std::byte>(length >> (8 * i));
        }
        return out;
    }

    /// The token whose to_bytes() begins `bytes` (further bytes are
    /// ignored: a transport may pad what it carries).
    /// Errors: EINVAL when `bytes` is shorter than serialized_size.
    /// Thread-safety: pure.
    [[nodiscard]] static result<remote_token> from_bytes(std::span<const std::byte> bytes) noexcept {
        if (bytes.size() < serialized_size)
            return make_error(EINVAL);
        remote_token t;
        for (std::size_t i = 0; i < 8; ++i) {
            t.value |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
            t.length |= static_cast<std::uint64_t>(bytes[8 + i]) << (8 * i);
        }
        return t;
    }

    /// Same value and length.
    friend constexpr bool operator==(const remote_token&, const remote_token&) noexcept = default;
};

static_assert(std::is_trivially_copyable_v<remote_token>);

/// A registration of a peer that is not dmaplane (plain libibverbs, UCX,
/// NIXL, Mooncake...), as ibv_reg_mr() describes it: the remote side of
/// endpoint::write(), write_imm() and read() with such a peer, whose
/// offsets then run from 0 to length from `address` on
/// (DMAPLANE_SQE_REMOTE_ADDR, DMAPLANE_FEAT_REMOTE_ADDR). Trivially
/// copyable. Thread-safety: a plain value.
struct foreign_region {
    /// The peer's rkey (ibv_mr::rkey). 0 names nothing.
    std::uint32_t rkey = 0;
    /// The address of the region's first byte in the peer's work
    /// requests: its virtual address for ibv_reg_mr(), the iova given to
    /// ibv_reg_mr_iova() (0 for a zero-based registration).
    std::uint64_t address = 0;
    /// Bytes the peer registered.
    std::uint64_t length = 0;

    /// True when it names a region at all (a non-zero rkey).
    explicit constexpr operator bool() const noexcept { return rkey != 0; }

    /// Same rkey, address and length.
    friend constexpr bool operator==(const foreign_region&, const foreign_region&) noexcept =
        default;
};

static_assert(std::is_trivially_copyable_v<foreign_region>);

/// A non-owning reference to bytes [offset, offset + length) of a
/// registration (offsets relative to the registration, not the buffer),
/// with the open file its handle belongs to: the local side of an RDMA
/// operation. Made by memory_region::region() and range(); the
/// default-constructed value (handle 0, length 0) names no range at all,
/// which SEND, RECV and WRITE_IMM accept for a zero-length operation.
/// Like buffer_view, it does not keep the registration alive.
/// Thread-safety: a plain value.
struct mr_range {
    /// The open /dev/dmaplane file the handle belongs to (not owned).
    int fd = -1;
    /// The registration's handle on that file.
    std::uint32_t handle = 0;
    /// First byte, from the start of the registration.
    std::uint64_t offset = 0;
    /// Bytes.
    std::uint64_t length = 0;

    /// True for the range that names nothing (handle 0, length 0).
    [[nodiscard]] constexpr bool none() const noexcept { return handle == 0 && length == 0; }

    /// Same file, handle, offset and length.
    friend constexpr bool operator==(const mr_range&, const mr_range&) noexcept = default;
};

/// Owns one registration (a handle of an open /dev/dmaplane file) and
/// destroys it (DMAPLANE_IOC_OBJECT_DESTROY) when destroyed or reset. Made
/// by device::register_memory(). Move-only; a default-constructed or
/// moved-from registration is empty.
///
/// The module's registration holds its own reference on the buffer: the
/// buffer object may be destroyed first and the memory stays registered,
/// and a registration stays alive (in the kernel) until the operations
/// using it have completed, even after destroy(). The descriptor of the
/// device is borrowed, as for buffers: the device must outlive the
/// registration.
///
/// Thread-safety: const members may be called from several threads at
/// once; moving, resetting or destroying while another thread uses it is a
/// data race.
class memory_region {
public:
    /// An empty registration.
    memory_region() noexcept = default;

    /// Takes `other`'s handle, leaving `other` empty.
    memory_region(memory_region&& other) noexcept
        : object_(std::move(other.object_)), length_(std::exchange(other.length_, 0U)),
          token_(std::exchange(other.token_, 0U)),
          access_(std::exchange(other.access_, mr_access::none)),
          page_size_(std::exchange(other.page_size_, 0U)) {}

    /// Destroys the held handle (errors ignored), then takes `other`'s.
    memory_region& operator=(memory_region&& other) noexcept {
        if (this != &other) {
            object_ = std::move(other.object_);
            length_ = std::exchange(other.length_, 0U);
            token_ = std::exchange(other.token_, 0U);
            access_ = std::exchange(other.access_, mr_access::none);
            page_size_ = std::exchange(other.page_size_, 0U);
        }
        return *this;
    }

    /// Not copyable: a handle has exactly one owner.
    memory_region(const memory_region&) = delete;
    /// Not copyable: a handle has exactly one owner.
    memory_region& operator=(const memory_region&) = delete;

    /// Destroys the held handle, if any (errors ignored).
    ~memory_region() = default;

    /// The handle (non-zero), or 0 when empty.
    [[nodiscard]] std::uint32_t handle() const noexcept { return object_.get(); }
    /// Same as handle().
    [[nodiscard]] std::uint32_t native_handle() const noexcept { return object_.get(); }
    /// The descriptor of the device the handle belongs to (not owned), or -1.
    [[nodiscard]] int device_fd() const noexcept { return object_.fd(); }
    /// True when a handle is held.
    explicit operator bool() const noexcept { return static_cast<bool>(object_); }

    /// Bytes registered (0 when empty).
    [[nodiscard]] std::uint64_t length() const noexcept { return length_; }
    /// The access in effect (remote_write includes local_write).
    [[nodiscard]] mr_access access() const noexcept { return access_; }
    /// Bytes per entry of the device's page list (0 when empty).
    [[nodiscard]] std::uint32_t page_size() const noexcept { return page_size_; }
    /// What a peer needs to WRITE or READ this registration (value 0 when
    /// it allows no remote access, or when empty).
    [[nodiscard]] remote_token token() const noexcept { return {token_, length_}; }
    /// The rkey a verbs peer names this registration by (0 when it allows
    /// no remote access, or when empty). See remote_token::rkey().
    [[nodiscard]] std::uint32_t rkey() const noexcept { return token().rkey(); }
    /// The address a verbs peer puts in its work requests for byte
    /// `offset` (see remote_token::remote_address()); meaningful only when
    /// rkey() is non-zero.
    [[nodiscard]] std::uint64_t remote_address(std::uint64_t offset = 0) const noexcept {
        return token().remote_address(offset);
    }

    /// The whole registration as a range (the empty range when empty).
    [[nodiscard]] mr_range range() const noexcept {
        return object_ ? mr_range{object_.fd(), object_.get(), 0, length_} : mr_range{};
    }

    /// Bytes [offset, offset + length) of the registration. No system call.
    ///
    /// Errors: EBADF (empty registration); EINVAL (length 0, or offset +
    /// length overflows); ERANGE (the range ends past length()).
    [[nodiscard]] result<mr_range> region(std::uint64_t offset,
                                          std::uint64_t length) const noexcept {
        if (!object_)
            return make_error(EBADF);
        if (length == 0 || offset + length < offset)
            return make_error(EINVAL);
        if (!detail::checked_range(length_, offset, length))
            return make_error(ERANGE);
        return mr_range{object_.fd(), object_.get(), offset, length};
    }

    /// Destroys the handle now (DMAPLANE_IOC_OBJECT_DESTROY) and leaves the
    /// registration empty whatever the module answers. Operations still
    /// using it complete normally.
    ///
    /// Errors: EBADF (empty, or the device closed), ENOENT.
    result<void> destroy() noexcept {
        clear();
        return object_.destroy();
    }

    /// destroy(), errors ignored.
    void reset() noexcept {
        clear();
        object_.reset();
    }

    /// Gives up ownership without destroying: returns the handle (0 when
    /// empty), which then lives until destroyed by hand or the device
    /// closes, and leaves the registration empty.
    [[nodiscard]] std::uint32_t release() noexcept {
        clear();
        return object_.release();
    }

private:
    friend class device;

    // Adopts a handle the module has just created on `fd`.
    memory_region(int fd, std::uint32_t handle, std::uint64_t length, std::uint64_t token,
                  mr_access access, std::uint32_t page_size) noexcept
        : object_(fd, handle), length_(length), token_(token), access_(access),
          page_size_(page_size) {}

    void clear() noexcept {
        length_ = 0;
        token_ = 0;
        access_ = mr_access::none;
        page_size_ = 0;
    }

    detail::object_handle object_;
    std::uint64_t length_ = 0;
    std::uint64_t token_ = 0;
    mr_access access_ = mr_access::none;
    std::uint32_t page_size_ = 0;
};

} // namespace dmaplane

#endif // DMAPLANE_MEMORY_REGION_HPP
