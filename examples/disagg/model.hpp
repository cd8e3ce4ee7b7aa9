// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A small decoder-only transformer of the Llama architecture (the forward
// pass of llama2.c's run.c: RMSNorm, rotary position embedding, grouped-
// query attention, SwiGLU MLP), in fp32, for the disaggregated-inference
// example. Weights are generated from a seed or read from a llama2.c
// checkpoint. The model owns no KV cache: it stores and loads K/V rows
// through kv_rows, so the prefill side can write them into a registered
// pool and the decode side can read them where they landed.
//
// The forward pass is split for layer-wise streaming: embed(), then
// prefill_layer() once per layer (each stores that layer's K/V rows of the
// whole prompt before it attends), then prefill_finish(); decoding goes on
// with forward_token(). Both paths run the same per-token kernels in the
// same order, so a prompt prefilled at once and the same prompt fed token by
// token leave bit-identical caches and logits (given one build: the same
// compiler and flags, since e.g. FMA contraction changes the last bits).
//
// Standard library only, plus dmaplane/tensor.hpp for f16 and bf16.

#ifndef DMAPLANE_EXAMPLES_DISAGG_MODEL_HPP
#define DMAPLANE_EXAMPLES_DISAGG_MODEL_HPP

#include "dmaplane/tensor.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace disagg {

/// The shape of a model, as a llama2.c checkpoint header spells it.
/// head_dim() = dim / n_heads; kv_dim() = head_dim() * n_kv_heads
/// (grouped-query attention: n_heads query heads share n_kv_heads K/V
/// heads). A plain value.
struct model_config {
    /// Width of the residual stream.
    int dim = 0;
    /// Width of the SwiGLU hidden layer.
    int hidden_dim = 0;
    /// Number of transformer layers.
    int n_layers = 0;
    /// Number of query heads.
    int n_heads = 0;
    /// Number of key/value heads (divides n_heads).
    int n_kv_heads = 0;
    /// Number of tokens.
    int vocab_size = 0;
    /// Longest sequence (prompt plus generated tokens).
    int seq_len = 0;

    /// Width of one head. Meaningful once validate() passed.
    [[nodiscard]] constexpr int head_dim() const noexcept { return n_heads > 0 ? dim / n_heads : 0; }
    /// Width of all K (or V) heads of one token.
    [[nodiscard]] constexpr int kv_dim() const noexcept { return head_dim() * n_kv_heads; }

    /// Empty when the config is usable, else what is wrong with it: a
    /// field not positive or beyond its bound (dim 8192, hidden_dim 65536,
    /// n_layers 256, vocab_size 2^20, seq_len 2^16), dim not a multiple of
    /// n_heads, n_heads not a multiple of n_kv_heads, or an odd head_dim
    /// (the rotary embedding rotates pairs). Thread-safety: pure.
    [[nodiscard]] std::string validate() const {
        const auto bad = [](const char* name, int value, int max) {
            return std::string(name) + " must be in 1.." + std::to_string(max) + " (got " +
                   std::to_string(value) + ")";
        };
        if (dim <= 0 || dim > 8192)
            return bad("dim", dim, 8192);
        if (hidden_dim <= 0 || hidden_dim > 65536)
            return bad("hidden_dim", hidden_dim, 65536);
        if (n_layers <= 0 || n_layers > 256)
            return bad("n_layers", n_layers, 256);
        if (n_heads <= 0 || n_heads > dim)
            return bad("n_heads", n_heads, dim);
        if (n_kv_heads <= 0 || n_kv_heads > n_heads)
            return bad("n_kv_heads", n_kv_heads, n_heads);
        if (vocab_size <= 0 || vocab_size > (1 << 20))
            return bad("vocab_size", vocab_size, 1 << 20);
        if (seq_len <= 0 || seq_len > (1 << 16))
            return bad("seq_len", seq_len, 1 << 16);
        if (dim % n_heads != 0)
            return "dim (" + std::to_string(dim) + ") is not a multiple of n_heads (" +
                   std::to_string(n_heads) + ")";
        if (n_heads % n_kv_heads != 0)
            return "n_heads (" + std::to_string(n_heads) + ") is not a multiple of n_kv_heads (" +
                   std::to_string(n_kv_heads) + ")";
        if (head_dim() % 2 != 0)
            return "head_dim (" + std::to_string(head_dim()) + ") is odd";
        return {};
    }

    /// Same fields.
    friend constexpr bool operator==(const model_config&, const model_config&) noexcept = default;
};

/// The demo's model shape: 24 layers of width 128, 8 query and 4 K/V heads
/// of 16, byte vocabulary, 1024 positions. Thread-safety: pure.
[[nodiscard]] constexpr model_config default_config() noexcept {
    return {.dim = 128, .hidden_dim = 128, .n_layers = 64, .n_heads = 8, .n_kv_heads = 4,
            .vocab_size = 256, .seq_len = 1024};
}

/// Where the model keeps keys and values: one head_dim row per (layer,
/// K or V, token position, kv head). Stored in some element type (f16,
/// bf16 or f32) by the implementation; the model always reads back the
/// stored (rounded) values, so every run attends over the same numbers.
class kv_rows {
public:
    virtual ~kv_rows() = default;
    /// Stores `row` (head_dim floats), rounded to the storage type.
    virtual void store(std::size_t layer, std::size_t kv /*0 K, 1 V*/, std::size_t token,
                       std::size_t head, std::span<const float> row) = 0;
    /// Loads the stored row as floats into `out` (head_dim floats).
    virtual void load(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
                      std::span<float> out) const = 0;
};

namespace detail {

/// All 65536 f16 values as floats, built on first use (thread-safe).
inline const float* f16_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::size_t u = 0; u < t.size(); ++u)
            t[u] = dmaplane::f16{static_cast<std::uint16_t>(u)}.to_float();
        return t;
    }();
    return table.data();
}

/// a * b without overflow, or false.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
        return false;
    out = a * b;
    return true;
}

/// a + b without overflow, or false.
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
    if (b > std::numeric_limits<std::uint64_t>::max() - a)
        return false;
    out = a + b;
    return true;
}

// The kernels below are the only arithmetic of the forward pass; prefill
// and decode both call them, per token, in the same order. Products are
// kept in their own statements, so clang's default -ffp-contract=on fuses
// nothing; GCC's default (fast) fuses into FMA where the target has it
// (-march=haswell and up), the same way on both paths of one build, but
// differently from a build without FMA: the prefill and decode processes
// must come from the same compiler and flags (or use -ffp-contract=off).

/// Accumulator lanes of dot(): independent partial sums the compiler can
/// keep in vector registers without reassociating anything.
inline constexpr std::size_t dot_lanes = 16;

/// sum a[i] * b[i] over n, in a fixed order: 16 lane sums over the full
/// blocks, folded pairwise (8, 4, 2, 1), plus the tail summed in order.
/// Thread-safety: pure.
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
    std::array<float, dot_lanes> acc{};
    std::size_t i = 0;
    for (; i + dot_lanes <= n; i += dot_lanes) {
        // Unrolled, so that -O2 keeps the lanes in vector registers.
#pragma GCC unroll 16
        for (std::size_t k = 0; k < dot_lanes; ++k) {
            const float p = a[i + k] * b[i + k];
            acc[k] += p;
        }
    }
    // Fold 16 -> 8 -> 4 -> 2 -> 1, pairing lane k with lane k + width.
#pragma GCC unroll 8
    for (std::size_t k = 0; k < 8; ++k)
        acc[k] += acc[k + 8];
#pragma GCC unroll 4
    for (std::size_t k = 0; k < 4; ++k)
        acc[k] += acc[k + 4];
    acc[0] += acc[2];
    acc[1] += acc[3];
    acc[0] += acc[1];
    float tail = 0.0f;
    for (; i < n; ++i) {
        const float p = a[i] * b[i];
        tail += p;
    }
    return acc[0] + tail;
}

/// out[r] = dot(w row r, x) for r < rows; w is [rows][cols] row-major.
/// Thread-safety: pure.
inline void matvec(float* out, const float* w, const float* x, std::size_t rows,
                   std::size_t cols) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
        out[r] = dot(w + r * cols, x, cols);
}

/// RMSNorm: out = w * (x / sqrt(mean(x^2) + 1e-5)); out may alias x.
/// Thread-safety: pure.
inline void rmsnorm(float* out, const float* x, const float* w, std::size_t n) noexcept {
    float ss = dot(x, x, n);
    ss /= static_cast<float>(n);
    ss += 1e-5f;
    ss = 1.0f / std::sqrt(ss);
    for (std::size_t j = 0; j < n; ++j) {
        const float y = ss * x[j];
        out[j] = w[j] * y;
    }
}

/// The rotary frequencies of a head of `head_dim`: freq[j] =
/// 1 / 10000^(2j / head_dim), j < head_dim / 2 (llama2.c's
/// 1 / 10000^((i % head_dim) / head_dim) for the pair at i = 2j).
/// Thread-safety: pure.
inline std::vector<float> rope_frequencies(std::size_t head_dim) {
    std::vector<float> freq(head_dim / 2);
    for (std::size_t j = 0; j < freq.size(); ++j)
        freq[j] = 1.0f / std::pow(10000.0f, static_cast<float>(2 * j) / static_cast<float>(head_dim));
    return freq;
}

/// cos and sin of pos * freq[j] for every j (one position's rotation).
/// Thread-safety: pure.
inline void rope_angles(std::size_t pos, std::span<const float> freq, float* cos_out,
                        float* sin_out) noexcept {
    const auto p = static_cast<float>(pos);
    for (std::size_t j = 0; j < freq.size(); ++j) {
        const float angle = p * freq[j];
        cos_out[j] = std::cos(angle);
        sin_out[j] = std::sin(angle);
    }
}

/// Rotates consecutive pairs (i, i + 1) of every head of `vec` (n floats,
/// heads of head_dim) by the angle of pair (i % head_dim) / 2.
/// Thread-safety: pure.
inline void rope(float* vec, std::size_t n, std::size_t head_dim, const float* cos_a,
                 const float* sin_a) noexcept {
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        const std::size_t j = (i % head_dim) / 2;
        const float v0 = vec[i];
        const float v1 = vec[i + 1];
        const float a = v0 * cos_a[j];
        const float b = v1 * sin_a[j];
        const float c = v0 * sin_a[j];
        const float d = v1 * cos_a[j];
        vec[i] = a - b;
        vec[i + 1] = c + d;
    }
}

/// In-place softmax of x[0..n): max subtracted, then normalised.
/// Thread-safety: pure.
inline void softmax(float* x, std::size_t n) noexcept {
    float max = x[0];
    for (std::size_t i = 1; i < n; ++i)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    for (std::size_t i = 0; i < n; ++i)
        x[i] /= sum;
}

/// Positions (or elements) attend_head() handles side by side.
inline constexpr std::size_t attend_block = 8;

/// One query head attending over n positions. keys_t holds the keys
/// transposed, key i of position t at keys_t[i * key_stride + t]; values
/// is [n][head_dim]; scores has room for n floats; out gets head_dim
/// floats. Every score is summed over i in order, every output element
/// over t in order, whatever n is; blocks of 8 positions or elements are
/// only computed side by side (in registers, vectorised even at -O2).
/// Thread-safety: pure.
inline void attend_head(float* out, const float* q, const float* keys_t, std::size_t key_stride,
                        const float* values, std::size_t n, std::size_t head_dim,
                        float* scores) noexcept {
    constexpr std::size_t b = attend_block;
    const float scale = std::sqrt(static_cast<float>(head_dim));
    std::size_t t = 0;
    for (; t + b <= n; t += b) {
        std::array<float, b> acc{};
        for (std::size_t i = 0; i < head_dim; ++i) {
            const float qi = q[i];
            const float* k = keys_t + i * key_stride + t;
#pragma GCC unroll 8
            for (std::size_t j = 0; j < b; ++j) {
                const float p = qi * k[j];
                acc[j] += p;
            }
        }
#pragma GCC unroll 8
        for (std::size_t j = 0; j < b; ++j)
            scores[t + j] = acc[j] / scale;
    }
    for (; t < n; ++t) {
        float acc = 0.0f;
        for (std::size_t i = 0; i < head_dim; ++i) {
            const float p = q[i] * keys_t[i * key_stride + t];
            acc += p;
        }
        scores[t] = acc / scale;
    }
    softmax(scores, n);
    std::size_t i = 0;
    for (; i + b <= head_dim; i += b) {
        std::array<float, b> acc{};
        for (std::size_t u = 0; u < n; ++u) {
            const float a = scores[u];
            const float* v = values + u * head_dim + i;
#pragma GCC unroll 8
            for (std::size_t j = 0; j < b; ++j) {
                const float p = a * v[j];
                acc[j] += p;
            }
        }
#pragma GCC unroll 8
        for (std::size_t j = 0; j < b; ++j)
            out[i + j] = acc[j];
    }
    for (; i < head_dim; ++i) {
        float acc = 0.0f;
        for (std::size_t u = 0; u < n; ++u) {
            const float p = scores[u] * values[u * head_dim + i];
            acc += p;
        }
        out[i] = acc;
    }
}

/// The index of the largest logit, the lowest on ties; NaNs never win
/// (0 when all are NaN). Thread-safety: pure.
inline int argmax(std::span<const float> logits) noexcept {
    std::size_t best = 0;
    bool found = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        if (std::isnan(logits[i]))
            continue;
        if (!found || logits[i] > logits[best]) {
            best = i;
            found = true;
        }
    }
    return static_cast<int>(best);
}

/// splitmix64: a small, fast, well-mixed 64-bit generator.
class splitmix64 {
public:
    /// A generator started from `seed`.
    explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}

    /// The next 64 random bits.
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    /// Uniform in [-1, 1), 24 random bits (exact, platform-independent).
    float next_signed() noexcept {
        const auto u = static_cast<float>(next() >> 40) * 0x1p-24f; // [0, 1)
        return 2.0f * u - 1.0f;
    }

private:
    std::uint64_t state_;
};

/// Closes a FILE*.
struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

/// An owned FILE*.
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

/// Swaps the bytes of each float on big-endian hosts (the checkpoint is
/// little-endian); nothing on little-endian ones.
inline void to_from_little_endian(std::span<float> v) noexcept {
    if constexpr (std::endian::native == std::endian::big) {
        for (float& f : v) {
            std::uint32_t u = std::bit_cast<std::uint32_t>(f);
            u = (u >> 24) | ((u >> 8) & 0xff00U) | ((u << 8) & 0xff0000U) | (u << 24);
            f = std::bit_cast<float>(u);
        }
    }
}

} // namespace detail

/// A kv_rows over a std::vector<T> in [layer][K/V][token][head][head_dim]
/// order: the single-process reference cache and the tests' cache. T is
/// float, dmaplane::f16 or dmaplane::bf16. store() and load() throw
/// std::out_of_range on an index or row length outside the shape.
/// Thread-safety: concurrent load()s are safe; store() needs exclusive
/// access.
template <dmaplane::kv_element T>
class memory_kv_rows final : public kv_rows {
public:
    /// A zeroed cache for `n_layers` x `max_tokens` x `n_kv_heads` rows of
    /// `head_dim`. Throws std::length_error when the size overflows.
    memory_kv_rows(std::size_t n_layers, std::size_t max_tokens, std::size_t n_kv_heads,
                   std::size_t head_dim)
        : layers_(n_layers), tokens_(max_tokens), heads_(n_kv_heads), head_dim_(head_dim) {
        std::uint64_t n = 2;
        for (const std::size_t e : {n_layers, max_tokens, n_kv_heads, head_dim})
            if (!detail::checked_mul(n, e, n))
                throw std::length_error("memory_kv_rows: size overflows");
        if (n > data_.max_size())
            throw std::length_error("memory_kv_rows: too large");
        data_.resize(static_cast<std::size_t>(n));
        if constexpr (std::is_same_v<T, dmaplane::f16>)
            f16_table_ = detail::f16_table();
    }

    /// A zeroed cache for every position of a model of `config` (which
    /// must validate()).
    explicit memory_kv_rows(const model_config& config)
        : memory_kv_rows(static_cast<std::size_t>(config.n_layers),
                         static_cast<std::size_t>(config.seq_len),
                         static_cast<std::size_t>(config.n_kv_heads),
                         static_cast<std::size_t>(config.head_dim())) {}

    /// Stores `row`, rounded to T (nearest, ties to even).
    void store(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
               std::span<const float> row) override {
        if (row.size() != head_dim_)
            throw std::out_of_range("memory_kv_rows::store: row is not head_dim floats");
        T* dst = data_.data() + offset(layer, kv, token, head);
        for (std::size_t i = 0; i < head_dim_; ++i)
            dst[i] = dmaplane::from_float<T>(row[i]);
    }

    /// Loads the stored row (exact conversion to float).
    void load(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
              std::span<float> out) const override {
        if (out.size() != head_dim_)
            throw std::out_of_range("memory_kv_rows::load: out is not head_dim floats");
        const T* src = data_.data() + offset(layer, kv, token, head);
        if constexpr (std::is_same_v<T, dmaplane::f16>) {
            for (std::size_t i = 0; i < head_dim_; ++i)
                out[i] = f16_table_[src[i].bits];
        } else {
            for (std::size_t i = 0; i < head_dim_; ++i)
                out[i] = dmaplane::to_float(src[i]);
        }
    }

    /// The stored row (layer, kv, token, head). Throws std::out_of_range.
    [[nodiscard]] std::span<const T> row(std::size_t layer, std::size_t kv, std::size_t token,
                                         std::size_t head) const {
        return {data_.data() + offset(layer, kv, token, head), head_dim_};
    }

    /// Every element, in [layer][K/V][token][head][head_dim] order.
    [[nodiscard]] std::span<const T> elements() const noexcept { return data_; }
    /// The storage as bytes.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
        return std::as_bytes(std::span<const T>(data_));
    }
    /// Zeroes every row.
    void clear() noexcept { std::fill(data_.begin(), data_.end(), T{}); }

    /// Layers held.
    [[nodiscard]] std::size_t layers() const noexcept { return layers_; }
    /// Token positions held per layer.
    [[nodiscard]] std::size_t max_tokens() const noexcept { return tokens_; }
    /// K/V heads per token.
    [[nodiscard]] std::size_t kv_heads() const noexcept { return heads_; }
    /// Elements per row.
    [[nodiscard]] std::size_t head_dim() const noexcept { return head_dim_; }

private:
    std::size_t offset(std::size_t layer, std::size_t kv, std::size_t token,
                       std::size_t head) const {
        if (layer >= layers_ || kv > 1 || token >= tokens_ || head >= heads_)
            throw std::out_of_range("memory_kv_rows: row index out of range");
        return (((layer * 2 + kv) * tokens_ + token) * heads_ + head) * head_dim_;
    }

    std::size_t layers_;
    std::size_t tokens_;
    std::size_t heads_;
    std::size_t head_dim_;
    std::vector<T> data_;
    const float* f16_table_ = nullptr;
};

/// The weight tensors of a model, in checkpoint order.
enum class weight_id {
    token_embedding, ///< [vocab][dim]
    rms_att,         ///< [layers][dim]
    wq,              ///< [layers][n_heads * head_dim][dim]
    wk,              ///< [layers][kv_dim][dim]
    wv,              ///< [layers][kv_dim][dim]
    wo,              ///< [layers][dim][n_heads * head_dim]
    rms_ffn,         ///< [layers][dim]
    w1,              ///< [layers][hidden_dim][dim]
    w2,              ///< [layers][dim][hidden_dim]
    w3,              ///< [layers][hidden_dim][dim]
    rms_final,       ///< [dim]
    wcls,            ///< [vocab][dim]; the token embedding when shared
};

/// The activations of a prompt between prefill steps: x [tokens][dim] and
/// the scratch prefill_layer() needs. Filled by model::embed(); advanced
/// one layer at a time by model::prefill_layer(). Thread-safety: none
/// (one user at a time).
class prefill_state {
public:
    /// Prompt tokens held (0 before embed()).
    [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }
    /// Layers computed so far.
    [[nodiscard]] std::size_t layers_done() const noexcept { return layers_done_; }
    /// The residual stream, [tokens()][dim].
    [[nodiscard]] std::span<const float> activations() const noexcept { return x_; }

private:
    friend class model;

    std::size_t tokens_ = 0;
    std::size_t layers_done_ = 0;
    std::vector<float> x_;      // [T][dim]
    std::vector<float> q_;      // [T][dim], rotated queries of one layer
    std::vector<float> keys_;   // [kv_heads][head_dim][T], as loaded back
    std::vector<float> values_; // [kv_heads][T][head_dim], as loaded back
    std::vector<float> row_;    // [head_dim]
    std::vector<float> cos_;    // [T][head_dim / 2]
    std::vector<float> sin_;    // [T][head_dim / 2]
    std::vector<float> k_;      // [kv_dim], one token's key before storing
    std::vector<float> v_;      // [kv_dim]
    std::vector<float> xb_;     // [dim]
    std::vector<float> xb2_;    // [dim]
    std::vector<float> hb_;     // [hidden_dim]
    std::vector<float> hb2_;    // [hidden_dim]
    std::vector<float> scores_; // [T]
};

/// A Llama-architecture decoder with fp32 weights in llama2.c's layout.
/// Immutable once made: every const member is safe to call from several
/// threads at once (each with its own kv_rows and prefill_state). An empty
/// (default-constructed, or failed to load) model has a zero config.
class model {
public:
    /// An empty model.
    model() = default;

    /// A model of `config` with weights drawn from `seed` (splitmix64):
    /// matrices uniform in +-1/sqrt(fan_in), the embedding uniform in
    /// +-1, RMSNorm weights in 1 +- 0.1. The classifier is the embedding
    /// when `shared_classifier` (random weights then mostly echo the last
    /// token), else drawn too, its rows for bytes outside printable ASCII
    /// scaled by 1/4 when vocab_size >= 256 (so the byte model mostly
    /// prints readable text). The same (config, seed,
    /// shared_classifier) give the same bits on every IEEE 754 platform
    /// (integer mixing, exact scaling, one correctly rounded sqrt). Empty
    /// model when config does not validate().
    [[nodiscard]] static model generate(const model_config& config, std::uint64_t seed,
                                        bool shared_classifier = false) {
        if (!config.validate().empty())
            return {};
        model m(config, shared_classifier);
        detail::splitmix64 rng(seed);
        const auto fill = [&rng](std::vector<float>& v, float scale, float offset) {
            for (float& f : v) {
                const float r = rng.next_signed() * scale;
                f = offset + r;
            }
        };
        const auto inv_sqrt = [](std::size_t fan_in) {
            return 1.0f / std::sqrt(static_cast<float>(fan_in));
        };
        fill(m.token_embedding_, 1.0f, 0.0f);
        fill(m.rms_att_, 0.1f, 1.0f);
        fill(m.wq_, inv_sqrt(m.dim_), 0.0f);
        fill(m.wk_, inv_sqrt(m.dim_), 0.0f);
        fill(m.wv_, inv_sqrt(m.dim_), 0.0f);
        fill(m.wo_, inv_sqrt(m.q_dim_), 0.0f);
        fill(m.rms_ffn_, 0.1f, 1.0f);
        fill(m.w1_, inv_sqrt(m.dim_), 0.0f);
        fill(m.w2_, inv_sqrt(m.hidden_), 0.0f);
        fill(m.w3_, inv_sqrt(m.dim_), 0.0f);
        fill(m.rms_final_, 0.1f, 1.0f);
        if (!shared_classifier) {
            fill(m.wcls_, inv_sqrt(m.dim_), 0.0f);
            // Byte vocabularies: rows of bytes outside printable ASCII
            // scaled down, so that the text generated is mostly readable.
            if (m.vocab_ >= 256)
                for (std::size_t tok = 0; tok < 256; ++tok)
                    if (tok < 0x20 || tok > 0x7e)
                        for (std::size_t i = 0; i < m.dim_; ++i)
                            m.wcls_[tok * m.dim_ + i] *= 0.25f;
        }
        return m;
    }

    /// Reads a llama2.c checkpoint: 7 little-endian int32 (dim,
    /// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
    /// negative vocab_size means an unshared classifier), then the fp32
    /// tensors in weight_id order up to rms_final, then freq_cis_real and
    /// freq_cis_imag (seq_len * head_dim / 2 floats each, skipped), then
    /// wcls when unshared. On failure returns an empty model and sets
    /// `error` (cannot open, config invalid, size mismatch naming both
    /// sizes, read error); on success clears `error`. The file size must
    /// match the header exactly. Thread-safety: reentrant.
    [[nodiscard]] static model load_llama2c(const std::string& path, std::string& error) {
        error.clear();
        const auto fail = [&](const std::string& what) {
            error = path + ": " + what;
            return model{};
        };
        detail::file_ptr f(std::fopen(path.c_str(), "rb"));
        if (!f)
            return fail(std::strerror(errno));
        std::array<unsigned char, 28> raw{};
        if (std::fread(raw.data(), 1, raw.size(), f.get()) != raw.size())
            return fail("truncated: shorter than the 28-byte header");
        std::array<std::int32_t, 7> h{};
        for (std::size_t i = 0; i < h.size(); ++i) {
            const std::uint32_t u = std::uint32_t{raw[4 * i]} | std::uint32_t{raw[4 * i + 1]} << 8 |
                                    std::uint32_t{raw[4 * i + 2]} << 16 |
                                    std::uint32_t{raw[4 * i + 3]} << 24;
            h[i] = std::bit_cast<std::int32_t>(u);
        }
        const bool shared = h[5] > 0;
        if (h[5] == std::numeric_limits<std::int32_t>::min())
            return fail("bad header: vocab_size " + std::to_string(h[5]));
        const model_config config{h[0], h[1], h[2], h[3], h[4], shared ? h[5] : -h[5], h[6]};
        if (const std::string why = config.validate(); !why.empty())
            return fail("bad header: " + why);

        std::uint64_t floats = 0;
        if (!checkpoint_floats(config, shared, floats))
            return fail("checkpoint size overflows");
        std::uint64_t expected = 0;
        if (!detail::checked_mul(floats, 4, expected) || !detail::checked_add(expected, 28, expected))
            return fail("checkpoint size overflows");
        std::error_code ec;
        const std::uintmax_t actual = std::filesystem::file_size(path, ec);
        if (ec)
            return fail(ec.message());
        if (actual != expected)
            return fail(std::string(actual < expected ? "truncated" : "oversized") + ": " +
                        std::to_string(actual) + " bytes, but its header (dim " +
                        std::to_string(config.dim) + ", " + std::to_string(config.n_layers) +
                        " layers, vocab " + std::to_string(config.vocab_size) + ", seq_len " +
                        std::to_string(config.seq_len) + (shared ? ", shared" : ", unshared") +
                        " classifier) needs " + std::to_string(expected));

        model m(config, shared);
        const auto read = [&f](std::vector<float>& v) {
            if (std::fread(v.data(), sizeof(float), v.size(), f.get()) != v.size())
                return false;
            detail::to_from_little_endian(v);
            return true;
        };
        bool ok = read(m.token_embedding_) && read(m.rms_att_) && read(m.wq_) && read(m.wk_) &&
                  read(m.wv_) && read(m.wo_) && read(m.rms_ffn_) && read(m.w1_) && read(m.w2_) &&
                  read(m.w3_) && read(m.rms_final_);
        if (ok) {
            // freq_cis_real and freq_cis_imag: recomputed, not read.
            std::vector<float> skip(m.seq_len_ * (m.head_dim_ / 2));
            ok = read(skip) && read(skip);
        }
        if (ok && !shared)
            ok = read(m.wcls_);
        if (!ok)
            return fail(std::ferror(f.get()) != 0 ? "read error" : "truncated while reading");
        return m;
    }

    /// Writes the model as a llama2.c checkpoint (see load_llama2c()),
    /// with the classifier shared (positive vocab_size, no wcls) or not
    /// (negative vocab_size, wcls at the end); freq_cis holds the cos and
    /// sin of every position's rotation. Fails, setting `error`, when the
    /// model is empty, when a shared classifier is asked for but the
    /// model's differs from the embedding, or on an I/O error (the file
    /// may then be partly written). Thread-safety: reentrant.
    bool save_llama2c(const std::string& path, bool shared_classifier, std::string& error) const {
        error.clear();
        if (empty()) {
            error = path + ": cannot save an empty model";
            return false;
        }
        if (shared_classifier && !shared_ && wcls_ != token_embedding_) {
            error = path + ": the classifier differs from the embedding; it cannot be shared";
            return false;
        }
        detail::file_ptr f(std::fopen(path.c_str(), "wb"));
        if (!f) {
            error = path + ": " + std::strerror(errno);
            return false;
        }
        const std::array<int, 7> h{config_.dim,        config_.hidden_dim, config_.n_layers,
                                   config_.n_heads,    config_.n_kv_heads,
                                   shared_classifier ? config_.vocab_size : -config_.vocab_size,
                                   config_.seq_len};
        std::array<unsigned char, 28> raw{};
        for (std::size_t i = 0; i < h.size(); ++i) {
            const auto u = std::bit_cast<std::uint32_t>(static_cast<std::int32_t>(h[i]));
            for (std::size_t b = 0; b < 4; ++b)
                raw[4 * i + b] = static_cast<unsigned char>(u >> (8 * b));
        }
        bool ok = std::fwrite(raw.data(), 1, raw.size(), f.get()) == raw.size();
        const auto write = [&f, &ok](std::span<const float> v) {
            if (!ok)
                return;
            if constexpr (std::endian::native == std::endian::big) {
                std::vector<float> le(v.begin(), v.end());
                detail::to_from_little_endian(le);
                ok = std::fwrite(le.data(), sizeof(float), le.size(), f.get()) == le.size();
            } else {
                ok = std::fwrite(v.data(), sizeof(float), v.size(), f.get()) == v.size();
            }
        };
        for (const weight_id id : {weight_id::token_embedding, weight_id::rms_att, weight_id::wq,
                                   weight_id::wk, weight_id::wv, weight_id::wo, weight_id::rms_ffn,
                                   weight_id::w1, weight_id::w2, weight_id::w3,
                                   weight_id::rms_final})
            write(weights(id));
        const std::size_t half = head_dim_ / 2;
        std::vector<float> re(seq_len_ * half);
        std::vector<float> im(seq_len_ * half);
        for (std::size_t pos = 0; pos < seq_len_; ++pos)
            detail::rope_angles(pos, freq_, re.data() + pos * half, im.data() + pos * half);
        write(re);
        write(im);
        if (!shared_classifier)
            write(weights(weight_id::wcls));
        if (std::fflush(f.get()) != 0)
            ok = false;
        if (std::fclose(f.release()) != 0)
            ok = false;
        if (!ok)
            error = path + ": write error";
        return ok;
    }

    /// The shape (all zero when empty()).
    [[nodiscard]] const model_config& config() const noexcept { return config_; }
    /// True for a default-constructed or failed model.
    [[nodiscard]] bool empty() const noexcept { return n_layers_ == 0; }
    /// True when the classifier is the token embedding.
    [[nodiscard]] bool shared_classifier() const noexcept { return shared_; }

    /// The weights of `id` (the embedding for wcls when shared).
    [[nodiscard]] std::span<const float> weights(weight_id id) const noexcept {
        switch (id) {
        case weight_id::token_embedding: return token_embedding_;
        case weight_id::rms_att: return rms_att_;
        case weight_id::wq: return wq_;
        case weight_id::wk: return wk_;
        case weight_id::wv: return wv_;
        case weight_id::wo: return wo_;
        case weight_id::rms_ffn: return rms_ffn_;
        case weight_id::w1: return w1_;
        case weight_id::w2: return w2_;
        case weight_id::w3: return w3_;
        case weight_id::rms_final: return rms_final_;
        case weight_id::wcls: return shared_ ? token_embedding_ : wcls_;
        }
        return {};
    }

    /// Number of distinct weights (the shared classifier counted once).
    [[nodiscard]] std::size_t parameter_count() const noexcept {
        return token_embedding_.size() + rms_att_.size() + wq_.size() + wk_.size() + wv_.size() +
               wo_.size() + rms_ffn_.size() + w1_.size() + w2_.size() + w3_.size() +
               rms_final_.size() + wcls_.size();
    }

    /// Starts a prefill of `tokens` (positions 0..T-1): fills `state`
    /// with their embeddings, no layer done. False, leaving `state` empty,
    /// when the model is empty, tokens is empty or longer than seq_len, or a
    /// token is outside [0, vocab_size).
    bool embed(std::span<const int> tokens, prefill_state& state) const {
        state = prefill_state{};
        if (empty() || tokens.empty() || tokens.size() > seq_len_)
            return false;
        for (const int tok : tokens)
            if (tok < 0 || static_cast<std::size_t>(tok) >= vocab_)
                return false;
        const std::size_t n = tokens.size();
        const std::size_t half = head_dim_ / 2;
        state.tokens_ = n;
        state.x_.resize(n * dim_);
        for (std::size_t t = 0; t < n; ++t)
            embedding_row(tokens[t], state.x_.data() + t * dim_);
        state.q_.resize(n * q_dim_);
        state.keys_.resize(n * kv_dim_);
        state.values_.resize(n * kv_dim_);
        state.cos_.resize(n * half);
        state.sin_.resize(n * half);
        for (std::size_t t = 0; t < n; ++t)
            detail::rope_angles(t, freq_, state.cos_.data() + t * half,
                                state.sin_.data() + t * half);
        state.k_.resize(kv_dim_);
        state.v_.resize(kv_dim_);
        state.xb_.resize(std::max(dim_, q_dim_));
        state.xb2_.resize(dim_);
        state.hb_.resize(hidden_);
        state.hb2_.resize(hidden_);
        state.scores_.resize(n);
        state.row_.resize(head_dim_);
        return true;
    }

    /// Computes layer `layer` for every prompt token: first stores the K
    /// and V rows of all tokens (positions 0..T-1) into `cache`, then, for
    /// each token t, attends over the rows 0..t loaded back from `cache`
    /// and updates the residual stream. False, doing nothing, unless
    /// `state` was embedded by this model and `layer` == layers_done() <
    /// n_layers. Exceptions from `cache` propagate.
    bool prefill_layer(std::size_t layer, prefill_state& state, kv_rows& cache) const {
        const std::size_t n = state.tokens_;
        if (empty() || n == 0 || layer != state.layers_done_ || layer >= n_layers_ ||
            state.x_.size() != n * dim_)
            return false;
        const std::size_t half = head_dim_ / 2;
        for (std::size_t t = 0; t < n; ++t) {
            attention_inputs(layer, state.x_.data() + t * dim_, state.cos_.data() + t * half,
                             state.sin_.data() + t * half, state.q_.data() + t * q_dim_,
                             state.k_.data(), state.v_.data(), state.xb_.data());
            store_kv(layer, t, state.k_.data(), state.v_.data(), cache);
        }
        // Rows 0..T-1 of each K/V head, loaded once: token t attends over
        // the first t + 1 of them, the very values decoding would load.
        load_kv(layer, n, n, cache, state.keys_.data(), state.values_.data(), state.row_.data());
        for (std::size_t t = 0; t < n; ++t)
            attention_and_ffn(layer, state.x_.data() + t * dim_, state.q_.data() + t * q_dim_,
                              state.keys_.data(), state.values_.data(), n, t + 1,
                              state.xb_.data(), state.xb2_.data(), state.hb_.data(),
                              state.hb2_.data(), state.scores_.data());
        ++state.layers_done_;
        return true;
    }

    /// The greedy next token after the prompt (argmax of the last token's
    /// logits, the lowest id on ties), its logits into `*logits` when
    /// given. -1 unless all layers of `state` are done.
    [[nodiscard]] int prefill_finish(const prefill_state& state,
                                     std::vector<float>* logits = nullptr) const {
        const std::size_t n = state.tokens_;
        if (empty() || n == 0 || state.layers_done_ != n_layers_ || state.x_.size() != n * dim_)
            return -1;
        std::vector<float> x(state.x_.begin() + static_cast<std::ptrdiff_t>((n - 1) * dim_),
                             state.x_.end());
        return classify(x.data(), logits);
    }

    /// One decode step: token `token` at position `pos` stores its K/V
    /// rows at `pos` in every layer and attends over positions 0..pos
    /// (which must all be in `cache`). Returns the greedy next token, its
    /// logits into `*logits` when given; -1 when the model is empty, the
    /// token is outside the vocabulary or pos >= seq_len. Exceptions from
    /// `cache` propagate.
    [[nodiscard]] int forward_token(int token, std::size_t pos, kv_rows& cache,
                                   std::vector<float>* logits = nullptr) const {
        if (empty() || token < 0 || static_cast<std::size_t>(token) >= vocab_ || pos >= seq_len_)
            return -1;
        const std::size_t n = pos + 1;
        const std::size_t half = head_dim_ / 2;
        std::vector<float> x(dim_), q(q_dim_), k(kv_dim_), v(kv_dim_);
        std::vector<float> xb(std::max(dim_, q_dim_)), xb2(dim_), hb(hidden_), hb2(hidden_);
        std::vector<float> scores(n), keys(n * kv_dim_), values(n * kv_dim_);
        std::vector<float> cos_a(half), sin_a(half), row(head_dim_);
        embedding_row(token, x.data());
        detail::rope_angles(pos, freq_, cos_a.data(), sin_a.data());
        for (std::size_t layer = 0; layer < n_layers_; ++layer) {
            attention_inputs(layer, x.data(), cos_a.data(), sin_a.data(), q.data(), k.data(),
                             v.data(), xb.data());
            store_kv(layer, pos, k.data(), v.data(), cache);
            load_kv(layer, n, n, cache, keys.data(), values.data(), row.data());
            attention_and_ffn(layer, x.data(), q.data(), keys.data(), values.data(), n, n,
                              xb.data(), xb2.data(), hb.data(), hb2.data(), scores.data());
        }
        return classify(x.data(), logits);
    }

    /// The single-process reference: prefills `prompt` through every
    /// layer, takes prefill_finish()'s token, then decodes n - 1 more with
    /// forward_token() at positions T, T+1, ... Returns the n generated
    /// tokens; empty when n <= 0, the prompt cannot be embedded, or
    /// T + n - 1 > seq_len. Exceptions from `cache` propagate.
    [[nodiscard]] std::vector<int> generate_tokens(std::span<const int> prompt, int n,
                                                   kv_rows& cache) const {
        if (n <= 0 || prompt.size() + static_cast<std::size_t>(n) - 1 > seq_len_)
            return {};
        prefill_state state;
        if (!embed(prompt, state))
            return {};
        for (std::size_t layer = 0; layer < n_layers_; ++layer)
            if (!prefill_layer(layer, state, cache))
                return {};
        std::vector<int> out;
        out.reserve(static_cast<std::size_t>(n));
        out.push_back(prefill_finish(state));
        for (std::size_t pos = prompt.size(); out.size() < static_cast<std::size_t>(n); ++pos)
            out.push_back(forward_token(out.back(), pos, cache));
        return out;
    }

private:
    model(const model_config& config, bool shared)
        : config_(config), shared_(shared), dim_(size(config.dim)), hidden_(size(config.hidden_dim)),
          n_layers_(size(config.n_layers)), heads_(size(config.n_heads)),
          kv_heads_(size(config.n_kv_heads)), vocab_(size(config.vocab_size)),
          seq_len_(size(config.seq_len)), head_dim_(dim_ / heads_), q_dim_(heads_ * head_dim_),
          kv_dim_(kv_heads_ * head_dim_), freq_(detail::rope_frequencies(head_dim_)),
          token_embedding_(vocab_ * dim_), rms_att_(n_layers_ * dim_),
          wq_(n_layers_ * q_dim_ * dim_), wk_(n_layers_ * kv_dim_ * dim_),
          wv_(n_layers_ * kv_dim_ * dim_), wo_(n_layers_ * dim_ * q_dim_),
          rms_ffn_(n_layers_ * dim_), w1_(n_layers_ * hidden_ * dim_),
          w2_(n_layers_ * dim_ * hidden_), w3_(n_layers_ * hidden_ * dim_), rms_final_(dim_),
          wcls_(shared ? 0 : vocab_ * dim_) {}

    static std::size_t size(int v) noexcept { return static_cast<std::size_t>(v); }

    /// The number of floats after the header of a checkpoint of `c`.
    static bool checkpoint_floats(const model_config& c, bool shared, std::uint64_t& out) noexcept {
        const auto u = [](int v) { return static_cast<std::uint64_t>(v); };
        const std::uint64_t dim = u(c.dim), hidden = u(c.hidden_dim), layers = u(c.n_layers);
        const std::uint64_t head_dim = u(c.head_dim()), kv_dim = u(c.kv_dim());
        const std::uint64_t q_dim = u(c.n_heads) * head_dim;
        std::uint64_t per_layer = 0, total = 0, t = 0;
        // rms_att + wq + wk + wv + wo + rms_ffn + w1 + w2 + w3
        const std::array<std::pair<std::uint64_t, std::uint64_t>, 9> parts{{{1, dim},
                                                                          {q_dim, dim},
                                                                          {kv_dim, dim},
                                                                          {kv_dim, dim},
                                                                          {dim, q_dim},
                                                                          {1, dim},
                                                                          {hidden, dim},
                                                                          {dim, hidden},
                                                                          {hidden, dim}}};
        for (const auto& [a, b] : parts)
            if (!detail::checked_mul(a, b, t) || !detail::checked_add(per_layer, t, per_layer))
                return false;
        if (!detail::checked_mul(per_layer, layers, total))
            return false;
        std::uint64_t emb = 0, freq = 0;
        if (!detail::checked_mul(u(c.vocab_size), dim, emb) ||
            !detail::checked_add(total, emb, total) || !detail::checked_add(total, dim, total) ||
            !detail::checked_mul(u(c.seq_len), head_dim / 2 * 2, freq) ||
            !detail::checked_add(total, freq, total) ||
            (!shared && !detail::checked_add(total, emb, total)))
            return false;
        out = total;
        return true;
    }

    void embedding_row(int token, float* x) const noexcept {
        const float* row = token_embedding_.data() + static_cast<std::size_t>(token) * dim_;
        std::copy(row, row + dim_, x);
    }

    // The first half of a layer for one token: q (rotated), k (rotated)
    // and v from x. xb: dim floats of scratch.
    void attention_inputs(std::size_t layer, const float* x, const float* cos_a,
                          const float* sin_a, float* q, float* k, float* v,
                          float* xb) const noexcept {
        detail::rmsnorm(xb, x, rms_att_.data() + layer * dim_, dim_);
        detail::matvec(q, wq_.data() + layer * q_dim_ * dim_, xb, q_dim_, dim_);
        detail::matvec(k, wk_.data() + layer * kv_dim_ * dim_, xb, kv_dim_, dim_);
        detail::matvec(v, wv_.data() + layer * kv_dim_ * dim_, xb, kv_dim_, dim_);
        detail::rope(q, q_dim_, head_dim_, cos_a, sin_a);
        detail::rope(k, kv_dim_, head_dim_, cos_a, sin_a);
    }

    void store_kv(std::size_t layer, std::size_t pos, const float* k, const float* v,
                  kv_rows& cache) const {
        for (std::size_t g = 0; g < kv_heads_; ++g) {
            cache.store(layer, 0, pos, g, {k + g * head_dim_, head_dim_});
            cache.store(layer, 1, pos, g, {v + g * head_dim_, head_dim_});
        }
    }

    // Loads rows 0..count-1 of every K/V head of `layer` for attention:
    // keys transposed, [kv_heads][head_dim][stride] (position t in column
    // t), values [kv_heads][stride][head_dim]. row: head_dim floats.
    void load_kv(std::size_t layer, std::size_t count, std::size_t stride, const kv_rows& cache,
                 float* keys_t, float* values, float* row) const {
        const std::size_t head_stride = stride * head_dim_;
        for (std::size_t g = 0; g < kv_heads_; ++g) {
            float* kg = keys_t + g * head_stride;
            float* vg = values + g * head_stride;
            for (std::size_t t = 0; t < count; ++t) {
                cache.load(layer, 0, t, g, {row, head_dim_});
                for (std::size_t i = 0; i < head_dim_; ++i)
                    kg[i * stride + t] = row[i];
                cache.load(layer, 1, t, g, {vg + t * head_dim_, head_dim_});
            }
        }
    }

    // The second half of a layer for one token: attention over n positions
    // (K/V head g's keys at keys_t + g * head_dim * stride, transposed with
    // row stride `stride`; its values at values + g * stride * head_dim,
    // [n][head_dim]), the output projection, the residual, the SwiGLU MLP,
    // the residual.
    void attention_and_ffn(std::size_t layer, float* x, const float* q, const float* keys_t,
                           const float* values, std::size_t stride, std::size_t n, float* xb,
                           float* xb2, float* hb, float* hb2, float* scores) const noexcept {
        const std::size_t group = heads_ / kv_heads_;
        const std::size_t head_stride = stride * head_dim_;
        for (std::size_t h = 0; h < heads_; ++h) {
            const std::size_t g = h / group;
            detail::attend_head(xb + h * head_dim_, q + h * head_dim_, keys_t + g * head_stride,
                                stride, values + g * head_stride, n, head_dim_, scores);
        }
        detail::matvec(xb2, wo_.data() + layer * dim_ * q_dim_, xb, dim_, q_dim_);
        for (std::size_t i = 0; i < dim_; ++i)
            x[i] += xb2[i];
        detail::rmsnorm(xb, x, rms_ffn_.data() + layer * dim_, dim_);
        detail::matvec(hb, w1_.data() + layer * hidden_ * dim_, xb, hidden_, dim_);
        detail::matvec(hb2, w3_.data() + layer * hidden_ * dim_, xb, hidden_, dim_);
        for (std::size_t i = 0; i < hidden_; ++i) {
            float val = hb[i];
            val *= 1.0f / (1.0f + std::exp(-val));
            val *= hb2[i];
            hb[i] = val;
        }
        detail::matvec(xb, w2_.data() + layer * dim_ * hidden_, hb, dim_, hidden_);
        for (std::size_t i = 0; i < dim_; ++i)
            x[i] += xb[i];
    }

    // Final norm and classifier of one token's x; returns the argmax.
    int classify(const float* x, std::vector<float>* logits) const {
        std::vector<float> xn(dim_);
        std::vector<float> local;
        std::vector<float>& out = logits != nullptr ? *logits : local;
        out.resize(vocab_);
        detail::rmsnorm(xn.data(), x, rms_final_.data(), dim_);
        const float* cls = shared_ ? token_embedding_.data() : wcls_.data();
        detail::matvec(out.data(), cls, xn.data(), vocab_, dim_);
        return detail::argmax(out);
    }

    model_config config_{};
    bool shared_ = true;
    std::size_t dim_ = 0;
    std::size_t hidden_ = 0;
    std::size_t n_layers_ = 0;
    std::size_t heads_ = 0;
    std::size_t kv_heads_ = 0;
    std::size_t vocab_ = 0;
    std::size_t seq_len_ = 0;
    std::size_t head_dim_ = 0;
    std::size_t q_dim_ = 0;
    std::size_t kv_dim_ = 0;
    std::vector<float> freq_;
    std::vector<float> token_embedding_;
    std::vector<float> rms_att_;
    std::vector<float> wq_;
    std::vector<float> wk_;
    std::vector<float> wv_;
    std::vector<float> wo_;
    std::vector<float> rms_ffn_;
    std::vector<float> w1_;
    std::vector<float> w2_;
    std::vector<float> w3_;
    std::vector<float> rms_final_;
    std::vector<float> wcls_; // empty when shared
};

/// The byte-level tokenizer: one token per byte of `text` (its value
/// 0..255). The model's vocab_size must be at least 256.
/// Thread-safety: pure.
[[nodiscard]] inline std::vector<int> encode(std::string_view text) {
    std::vector<int> out;
    out.reserve(text.size());
    for (const char c : text)
        out.push_back(static_cast<int>(static_cast<unsigned char>(c)));
    return out;
}

/// The text of one token: a printable ASCII byte (0x20..0x7e) as itself,
/// any other byte escaped as "\xNN" (lower-case hex), a token outside
/// 0..255 as "<id>". Thread-safety: pure.
[[nodiscard]] inline std::string decode_token(int token) {
    if (token < 0 || token > 255) {
        std::string out(1, '<'); // appended piecewise: GCC 12 -O3 warns on "<" + s
        out += std::to_string(token);
        out += '>';
        return out;
    }
    if (token >= 0x20 && token <= 0x7e)
        return std::string(1, static_cast<char>(token));
    constexpr std::string_view hex = "0123456789abcdef";
    const auto b = static_cast<std::size_t>(token);
    return std::string("\\x") + hex[b >> 4] + hex[b & 15U];
}

} // namespace disagg

#endif // DMAPLANE_EXAMPLES_DISAGG_MODEL_HPP
