// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::mapping: the owning handle of one mmap(2)ed range, with typed
// views over it.

#ifndef DMAPLANE_MAPPING_HPP
#define DMAPLANE_MAPPING_HPP

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "dmaplane/detail/sys.hpp"
#include "dmaplane/result.hpp"

namespace dmaplane {

/// Owns one range of the address space created by mmap(2) and unmaps it
/// when destroyed or reset. buffer::map() makes them; any other mmap(2)ed
/// range can be adopted. Move-only; the empty state is (nullptr, 0), and a
/// moved-from mapping is empty.
///
/// Copying the mapping's bytes is the caller's business: data() and the
/// spans it hands out stay valid until the mapping is unmapped (by
/// destruction, reset(), unmap() or move-assignment onto it). The memory of
/// a dmaplane buffer stays valid for as long as it is mapped, even after the
/// buffer's handle is destroyed or its device closed: the module keeps a
/// reference for every mapping.
///
/// Errors: unmap() reports munmap(2) errors; destruction and reset() ignore
/// them. Thread-safety: none of its own; distinct objects may be used
/// concurrently, and the mapped bytes are shared memory the caller
/// synchronises. Const members may be called concurrently.
class mapping {
public:
    /// An empty mapping.
    mapping() noexcept = default;

    /// Adopts the existing mapping [addr, addr + length), which must have
    /// been created by mmap(2) (addr page-aligned) and be owned by no one
    /// else: it is munmap()ed by this object. A null `addr` (or length 0)
    /// makes an empty mapping. No check is made.
    mapping(void* addr, std::size_t length) noexcept
        : addr_(length == 0 ? nullptr : addr), size_(addr == nullptr ? 0 : length) {}

    /// Takes `other`'s range, leaving `other` empty.
    mapping(mapping&& other) noexcept
        : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}

    /// Unmaps the held range, then takes `other`'s, leaving `other` empty.
    /// Self-assignment leaves the mapping unchanged.
    mapping& operator=(mapping&& other) noexcept {
        if (this != &other) {
            reset();
            addr_ = std::exchange(other.addr_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    /// Not copyable: a range has exactly one owner.
    mapping(const mapping&) = delete;
    /// Not copyable: a range has exactly one owner.
    mapping& operator=(const mapping&) = delete;

    /// Unmaps the held range, if any (errors ignored).
    ~mapping() { reset(); }

    /// The first mapped byte, or nullptr when empty.
    [[nodiscard]] void* data() const noexcept { return addr_; }

    /// The mapped length in bytes (as asked of mmap(2), not rounded up to
    /// pages), or 0 when empty.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// The mapped bytes; empty when the mapping is.
    [[nodiscard]] std::span<std::byte> bytes() const noexcept {
        return {static_cast<std::byte*>(addr_), size_};
    }

    /// The whole mapping as an array of T (T may be const-qualified for
    /// read-only use).
    ///
    /// Errors: std::errc::invalid_argument when data() is not aligned to
    /// alignof(T) or size() is not a multiple of sizeof(T). An empty mapping
    /// gives an empty span. No system call.
    template <class T>
    [[nodiscard]] result<std::span<T>> as() const noexcept {
        static_assert(std::is_trivially_copyable_v<T>,
                      "dmaplane::mapping::as<T>: T must be trivially copyable");
        if (reinterpret_cast<std::uintptr_t>(addr_) % alignof(T) != 0 || size_ % sizeof(T) != 0)
            return make_error(std::errc::invalid_argument);
        return std::span<T>(static_cast<T*>(addr_), size_ / sizeof(T));
    }

    /// `count` objects of type T starting `byte_offset` bytes into the
    /// mapping (T may be const-qualified for read-only use).
    ///
    /// Errors: std::errc::invalid_argument when [byte_offset, byte_offset +
    /// count * sizeof(T)) does not lie within the mapping (checked without
    /// overflow) or when the first object is not aligned to alignof(T).
    /// No system call.
    template <class T>
    [[nodiscard]] result<std::span<T>> as(std::size_t byte_offset,
                                          std::size_t count) const noexcept {
        static_assert(std::is_trivially_copyable_v<T>,
                      "dmaplane::mapping::as<T>: T must be trivially copyable");
        if (byte_offset > size_ || count > (size_ - byte_offset) / sizeof(T))
            return make_error(std::errc::invalid_argument);
        std::byte* first = static_cast<std::byte*>(addr_) + byte_offset;
        if (reinterpret_cast<std::uintptr_t>(first) % alignof(T) != 0)
            return make_error(std::errc::invalid_argument);
        return std::span<T>(static_cast<T*>(static_cast<void*>(first)), count);
    }

    /// Unmaps the held range now and leaves the mapping empty (even when
    /// munmap(2) fails, since the range cannot be used reliably after that).
    ///
    /// Errors: as for munmap(2) (EINVAL for a range that was not mapped).
    /// An empty mapping succeeds and does nothing.
    result<void> unmap() noexcept {
        void* addr = std::exchange(addr_, nullptr);
        const std::size_t size = std::exchange(size_, 0);
        if (addr == nullptr)
            return {};
        return detail::sys::munmap(addr, size);
    }

    /// Unmaps the held range, if any, ignoring errors; leaves the mapping
    /// empty.
    void reset() noexcept { (void)unmap(); }

    /// Gives up ownership without unmapping: returns the range and leaves
    /// the mapping empty. The caller must munmap(2) it.
    [[nodiscard]] std::pair<void*, std::size_t> release() noexcept {
        return {std::exchange(addr_, nullptr), std::exchange(size_, 0)};
    }

    /// True when a range is held.
    explicit operator bool() const noexcept { return addr_ != nullptr; }

    /// Exchanges the ranges of `a` and `b`.
    friend void swap(mapping& a, mapping& b) noexcept {
        std::swap(a.addr_, b.addr_);
        std::swap(a.size_, b.size_);
    }

private:
    void* addr_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace dmaplane

#endif // DMAPLANE_MAPPING_HPP
