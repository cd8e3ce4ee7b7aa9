// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Tests of the disaggregated-inference example's model (model.hpp): the
// kernels on hand-computed values, config and checkpoint validation, and
// the property the example rests on: prefilling a prompt layer by layer
// and feeding it token by token leave the same cache bytes and logits.

#include "model.hpp"

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

using disagg::memory_kv_rows;
using disagg::model;
using disagg::model_config;
using disagg::weight_id;

constexpr model_config tiny_config() {
    return {.dim = 32, .hidden_dim = 64, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2,
            .vocab_size = 256, .seq_len = 64};
}

/// head_dim 6, widths not multiples of 8 or 16: every kernel's tail runs.
constexpr model_config odd_config() {
    return {.dim = 24, .hidden_dim = 40, .n_layers = 2, .n_heads = 4, .n_kv_heads = 1,
            .vocab_size = 300, .seq_len = 48};
}

constexpr weight_id all_weights[] = {
    weight_id::token_embedding, weight_id::rms_att, weight_id::wq,      weight_id::wk,
    weight_id::wv,              weight_id::wo,      weight_id::rms_ffn, weight_id::w1,
    weight_id::w2,              weight_id::w3,      weight_id::rms_final, weight_id::wcls};

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

bool same_weights(const model& a, const model& b) {
    for (const weight_id id : all_weights)
        if (!same_bits(a.weights(id), b.weights(id)))
            return false;
    return a.config() == b.config();
}

/// A fresh path in the temporary directory, removed when destroyed.
class temp_path {
public:
    explicit temp_path(const std::string& name)
        : path_((std::filesystem::temp_directory_path() /
                 ("disagg_model_test_" + std::to_string(::getpid()) + "_" + name))
                    .string()) {}
    ~temp_path() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    temp_path(const temp_path&) = delete;
    temp_path& operator=(const temp_path&) = delete;
    [[nodiscard]] const std::string& str() const noexcept { return path_; }

private:
    std::string path_;
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    REQUIRE(std::fclose(f) == 0);
}

std::vector<unsigned char> header_bytes(const std::array<std::int32_t, 7>& h) {
    std::vector<unsigned char> out;
    for (const std::int32_t v : h) {
        const auto u = static_cast<std::uint32_t>(v);
        for (int b = 0; b < 4; ++b)
            out.push_back(static_cast<unsigned char>(u >> (8 * b)));
    }
    return out;
}

/// Records the order of store() and load() calls, forwarding to a cache.
class recording_kv_rows final : public disagg::kv_rows {
public:
    explicit recording_kv_rows(disagg::kv_rows& inner) : inner_(inner) {}
    void store(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
               std::span<const float> row) override {
        calls.push_back({true, layer, token});
        inner_.store(layer, kv, token, head, row);
    }
    void load(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
              std::span<float> out) const override {
        calls.push_back({false, layer, token});
        inner_.load(layer, kv, token, head, out);
    }

    struct call {
        bool store;
        std::size_t layer;
        std::size_t token;
    };
    mutable std::vector<call> calls;

private:
    disagg::kv_rows& inner_;
};

/// Prefills `prompt` layer by layer, then decodes `more` tokens; and feeds
/// the prompt token by token, then decodes the same way. Both must leave
/// bit-identical caches, logits and tokens.
template <class T>
void check_prefill_matches_decode(const model& m, std::string_view text, int more) {
    const std::vector<int> prompt = disagg::encode(text);
    const std::size_t n = prompt.size();
    memory_kv_rows<T> cache_a(m.config());
    memory_kv_rows<T> cache_b(m.config());

    // A: layer-wise prefill, then decode.
    disagg::prefill_state state;
    REQUIRE(m.embed(prompt, state));
    CHECK(state.tokens() == n);
    for (std::size_t layer = 0; layer < static_cast<std::size_t>(m.config().n_layers); ++layer) {
        CHECK(state.layers_done() == layer);
        REQUIRE(m.prefill_layer(layer, state, cache_a));
    }
    std::vector<std::vector<float>> logits_a(1);
    std::vector<int> tokens_a{m.prefill_finish(state, &logits_a[0])};
    for (int i = 0; i + 1 < more; ++i) {
        logits_a.emplace_back();
        tokens_a.push_back(m.forward_token(tokens_a.back(), n + static_cast<std::size_t>(i),
                                           cache_a, &logits_a.back()));
    }

    // B: the prompt one token at a time from position 0, then decode.
    std::vector<float> logits;
    int next = -1;
    for (std::size_t pos = 0; pos < n; ++pos)
        next = m.forward_token(prompt[pos], pos, cache_b, &logits);
    std::vector<std::vector<float>> logits_b{logits};
    std::vector<int> tokens_b{next};
    for (int i = 0; i + 1 < more; ++i) {
        logits_b.emplace_back();
        tokens_b.push_back(m.forward_token(tokens_b.back(), n + static_cast<std::size_t>(i),
                                           cache_b, &logits_b.back()));
    }

    CHECK(tokens_a == tokens_b);
    REQUIRE(logits_a.size() == logits_b.size());
    for (std::size_t i = 0; i < logits_a.size(); ++i) {
        CHECK(logits_a[i].size() == static_cast<std::size_t>(m.config().vocab_size));
        CHECK(same_bits(logits_a[i], logits_b[i]));
    }
    CHECK(std::memcmp(cache_a.bytes().data(), cache_b.bytes().data(), cache_a.bytes().size()) ==
          0);
    // The rows written are not all zero (the comparison meant something).
    const auto bytes = cache_a.bytes();
    CHECK(std::any_of(bytes.begin(), bytes.end(), [](std::byte b) { return b != std::byte{0}; }));

    // The convenience reference agrees too.
    memory_kv_rows<T> cache_c(m.config());
    CHECK(m.generate_tokens(prompt, more, cache_c) == tokens_a);
    CHECK(std::memcmp(cache_a.bytes().data(), cache_c.bytes().data(), cache_a.bytes().size()) ==
          0);
}

/// llama2.c's run.c forward() written out plainly (its own fp32 cache,
/// sequential sums), as an independent check of the architecture.
class reference_forward {
public:
    explicit reference_forward(const model& m)
        : m_(m), c_(m.config()), key_(size(c_.n_layers * c_.seq_len * c_.kv_dim())),
          value_(key_.size()) {}

    std::vector<float> step(int token, int pos) {
        const int dim = c_.dim, hd = c_.head_dim(), kv_dim = c_.kv_dim(), hidden = c_.hidden_dim;
        const int kv_mul = c_.n_heads / c_.n_kv_heads;
        const auto w = [this](weight_id id) { return m_.weights(id).data(); };
        std::vector<float> x(w(weight_id::token_embedding) + token * dim,
                             w(weight_id::token_embedding) + (token + 1) * dim);
        std::vector<float> xb(size(dim)), xb2(size(dim)), q(size(dim)), hb(size(hidden)),
            hb2(size(hidden)), att(size(c_.seq_len));
        for (int l = 0; l < c_.n_layers; ++l) {
            rmsnorm(xb.data(), x.data(), w(weight_id::rms_att) + l * dim, dim);
            float* k = key_.data() + size((l * c_.seq_len + pos) * kv_dim);
            float* v = value_.data() + size((l * c_.seq_len + pos) * kv_dim);
            matmul(q.data(), xb.data(), w(weight_id::wq) + l * dim * dim, dim, dim);
            matmul(k, xb.data(), w(weight_id::wk) + l * dim * kv_dim, dim, kv_dim);
            matmul(v, xb.data(), w(weight_id::wv) + l * dim * kv_dim, dim, kv_dim);
            for (int i = 0; i < dim; i += 2) {
                const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(i % hd) /
                                                                 static_cast<float>(hd));
                const float val = static_cast<float>(pos) * freq;
                const float fcr = std::cos(val), fci = std::sin(val);
                for (int r = 0; r < (i < kv_dim ? 2 : 1); ++r) {
                    float* vec = r == 0 ? q.data() : k;
                    const float v0 = vec[i], v1 = vec[i + 1];
                    vec[i] = v0 * fcr - v1 * fci;
                    vec[i + 1] = v0 * fci + v1 * fcr;
                }
            }
            for (int h = 0; h < c_.n_heads; ++h) {
                const float* qh = q.data() + h * hd;
                for (int t = 0; t <= pos; ++t) {
                    const float* kt = key_.data() + size((l * c_.seq_len + t) * kv_dim +
                                                         (h / kv_mul) * hd);
                    float score = 0.0f;
                    for (int i = 0; i < hd; ++i)
                        score += qh[i] * kt[i];
                    att[size(t)] = score / std::sqrt(static_cast<float>(hd));
                }
                float max = att[0], sum = 0.0f;
                for (int t = 1; t <= pos; ++t)
                    max = std::max(max, att[size(t)]);
                for (int t = 0; t <= pos; ++t) {
                    att[size(t)] = std::exp(att[size(t)] - max);
                    sum += att[size(t)];
                }
                float* out = xb.data() + h * hd;
                std::fill(out, out + hd, 0.0f);
                for (int t = 0; t <= pos; ++t) {
                    const float* vt = value_.data() + size((l * c_.seq_len + t) * kv_dim +
                                                           (h / kv_mul) * hd);
                    for (int i = 0; i < hd; ++i)
                        out[i] += att[size(t)] / sum * vt[i];
                }
            }
            matmul(xb2.data(), xb.data(), w(weight_id::wo) + l * dim * dim, dim, dim);
            for (int i = 0; i < dim; ++i)
                x[size(i)] += xb2[size(i)];
            rmsnorm(xb.data(), x.data(), w(weight_id::rms_ffn) + l * dim, dim);
            matmul(hb.data(), xb.data(), w(weight_id::w1) + l * dim * hidden, dim, hidden);
            matmul(hb2.data(), xb.data(), w(weight_id::w3) + l * dim * hidden, dim, hidden);
            for (int i = 0; i < hidden; ++i) {
                const float a = hb[size(i)];
                hb[size(i)] = a / (1.0f + std::exp(-a)) * hb2[size(i)];
            }
            matmul(xb.data(), hb.data(), w(weight_id::w2) + l * dim * hidden, hidden, dim);
            for (int i = 0; i < dim; ++i)
                x[size(i)] += xb[size(i)];
        }
        rmsnorm(x.data(), x.data(), w(weight_id::rms_final), dim);
        std::vector<float> logits(size(c_.vocab_size));
        matmul(logits.data(), x.data(), w(weight_id::wcls), dim, c_.vocab_size);
        return logits;
    }

private:
    static std::size_t size(int v) { return static_cast<std::size_t>(v); }
    static void rmsnorm(float* o, const float* x, const float* weight, int n) {
        float ss = 0.0f;
        for (int j = 0; j < n; ++j)
            ss += x[j] * x[j];
        ss = 1.0f / std::sqrt(ss / static_cast<float>(n) + 1e-5f);
        for (int j = 0; j < n; ++j)
            o[j] = weight[j] * (ss * x[j]);
    }
    // W (d,n) @ x (n,) -> xout (d,)
    static void matmul(float* xout, const float* x, const float* w, int n, int d) {
        for (int i = 0; i < d; ++i) {
            float val = 0.0f;
            for (int j = 0; j < n; ++j)
                val += w[i * n + j] * x[j];
            xout[i] = val;
        }
    }

    const model& m_;
    model_config c_;
    std::vector<float> key_;
    std::vector<float> value_;
};

} // namespace

TEST_CASE("the forward pass is llama2.c's") {
    for (const auto& [config, shared] : {std::pair{tiny_config(), true},
                                         std::pair{tiny_config(), false},
                                         std::pair{odd_config(), false}}) {
        const model m = model::generate(config, 11, shared);
        reference_forward ref(m);
        memory_kv_rows<float> cache(m.config());
        const std::vector<int> tokens = disagg::encode("llama2.c says hi");
        float worst = 0.0f;
        for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
            std::vector<float> logits;
            const int next = m.forward_token(tokens[pos], pos, cache, &logits);
            const std::vector<float> want = ref.step(tokens[pos], static_cast<int>(pos));
            REQUIRE(logits.size() == want.size());
            for (std::size_t i = 0; i < want.size(); ++i)
                worst = std::max(worst, std::fabs(logits[i] - want[i]));
            CHECK(next == disagg::detail::argmax(want));
        }
        // Only the summation order differs: agreement to float rounding.
        CHECK(worst < 1e-4f);
        MESSAGE("largest logit difference from the reference: ", worst);
    }
}

TEST_CASE("model_config::validate names what is wrong") {
    CHECK(disagg::default_config().validate().empty());
    CHECK(tiny_config().validate().empty());
    CHECK(disagg::default_config().head_dim() == 16);
    CHECK(disagg::default_config().kv_dim() == 64);

    const auto error_of = [](auto change) {
        model_config c = tiny_config();
        change(c);
        return c.validate();
    };
    CHECK(error_of([](model_config& c) { c.dim = 0; }).find("dim") == 0);
    CHECK(error_of([](model_config& c) { c.dim = 8200; }).find("dim") == 0);
    CHECK(error_of([](model_config& c) { c.hidden_dim = -1; }).find("hidden_dim") == 0);
    CHECK(error_of([](model_config& c) { c.n_layers = 257; }).find("n_layers") == 0);
    CHECK(error_of([](model_config& c) { c.n_heads = 0; }).find("n_heads") == 0);
    CHECK(error_of([](model_config& c) { c.n_kv_heads = 8; }).find("n_kv_heads") == 0);
    CHECK(error_of([](model_config& c) { c.vocab_size = (1 << 20) + 1; }).find("vocab_size") == 0);
    CHECK(error_of([](model_config& c) { c.seq_len = 0; }).find("seq_len") == 0);
    CHECK(error_of([](model_config& c) { c.seq_len = (1 << 16) + 1; }).find("seq_len") == 0);
    CHECK(error_of([](model_config& c) { c.n_heads = 3; }).find("not a multiple of n_heads") !=
          std::string::npos);
    CHECK(error_of([](model_config& c) { c.n_kv_heads = 3; })
              .find("not a multiple of n_kv_heads") != std::string::npos);
    CHECK(error_of([](model_config& c) { c.n_heads = 32; c.n_kv_heads = 4; })
              .find("head_dim (1) is odd") == 0);
    CHECK(model::generate(model_config{}, 1).empty());
}

TEST_CASE("kernels on hand-computed values") {
    SUBCASE("dot sums lanes and tail exactly on integers") {
        std::vector<float> a(37), b(37);
        float want = 0.0f;
        for (std::size_t i = 0; i < a.size(); ++i) {
            a[i] = static_cast<float>(i + 1);
            b[i] = static_cast<float>(i % 3) - 1.0f;
            want += a[i] * b[i];
        }
        CHECK(disagg::detail::dot(a.data(), b.data(), a.size()) == want);
        CHECK(disagg::detail::dot(a.data(), b.data(), 0) == 0.0f);
    }
    SUBCASE("rmsnorm") {
        const float x[] = {1.0f, 2.0f, 3.0f, 4.0f};
        const float w[] = {1.0f, 1.0f, 1.0f, 2.0f};
        float out[4];
        disagg::detail::rmsnorm(out, x, w, 4);
        const double inv = 1.0 / std::sqrt(30.0 / 4.0 + 1e-5); // 0.3651481...
        CHECK(out[0] == doctest::Approx(inv).epsilon(1e-6));
        CHECK(out[1] == doctest::Approx(2 * inv).epsilon(1e-6));
        CHECK(out[2] == doctest::Approx(3 * inv).epsilon(1e-6));
        CHECK(out[3] == doctest::Approx(8 * inv).epsilon(1e-6));
        CHECK(out[3] == doctest::Approx(2.9211850).epsilon(1e-6));
    }
    SUBCASE("rope") {
        const auto freq = disagg::detail::rope_frequencies(4);
        REQUIRE(freq.size() == 2);
        CHECK(freq[0] == 1.0f);
        CHECK(freq[1] == doctest::Approx(0.01).epsilon(1e-6)); // 1 / 10000^(2/4)
        float c[2], s[2];
        disagg::detail::rope_angles(0, freq, c, s);
        // Position 0 rotates nothing: two heads of 4, unchanged.
        float v[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f};
        disagg::detail::rope(v, 8, 4, c, s);
        CHECK(v[0] == 1.0f);
        CHECK(v[3] == 4.0f);
        CHECK(v[7] == 8.0f);
        // Position 3: pair 0 by 3 rad, pair 1 by 0.03 rad, in every head.
        disagg::detail::rope_angles(3, freq, c, s);
        float u[] = {1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 1.0f, 1.0f, 1.0f};
        disagg::detail::rope(u, 8, 4, c, s);
        CHECK(u[0] == doctest::Approx(std::cos(3.0)).epsilon(1e-6)); // (1,0) -> (cos, sin)
        CHECK(u[1] == doctest::Approx(std::sin(3.0)).epsilon(1e-6));
        CHECK(u[2] == doctest::Approx(-std::sin(0.03)).epsilon(1e-5)); // (0,1) -> (-sin, cos)
        CHECK(u[3] == doctest::Approx(std::cos(0.03)).epsilon(1e-6));
        CHECK(u[4] == doctest::Approx(2 * std::cos(3.0) - std::sin(3.0)).epsilon(1e-6));
        CHECK(u[5] == doctest::Approx(2 * std::sin(3.0) + std::cos(3.0)).epsilon(1e-6));
        CHECK(u[6] == doctest::Approx(std::cos(0.03) - std::sin(0.03)).epsilon(1e-6));
        CHECK(u[7] == doctest::Approx(std::sin(0.03) + std::cos(0.03)).epsilon(1e-6));
    }
    SUBCASE("softmax, attention and argmax") {
        float x[] = {1000.0f, 1000.0f + std::log(3.0f)}; // max subtraction keeps it finite
        disagg::detail::softmax(x, 2);
        CHECK(x[0] == doctest::Approx(0.25));
        CHECK(x[1] == doctest::Approx(0.75));
        // Equal keys: attention is the mean of the values.
        const float q[] = {1.0f, 2.0f};
        const float keys[] = {0.5f, 0.5f, 0.5f, 0.5f};
        const float values[] = {1.0f, 10.0f, 3.0f, 20.0f};
        float out[2], scores[2];
        disagg::detail::attend_head(out, q, keys, 2, values, 2, 2, scores);
        CHECK(out[0] == doctest::Approx(2.0));
        CHECK(out[1] == doctest::Approx(15.0));
        const float l[] = {1.0f, 3.0f, std::nanf(""), 3.0f};
        CHECK(disagg::detail::argmax(l) == 1);
    }
}

TEST_CASE("memory_kv_rows rounds to its storage type and checks indices") {
    memory_kv_rows<dmaplane::f16> h(2, 3, 2, 4);
    const float row[] = {1.0f / 3.0f, -2.5f, 65504.0f, 1e-8f};
    h.store(1, 1, 2, 1, row);
    float back[4];
    h.load(1, 1, 2, 1, back);
    for (std::size_t i = 0; i < 4; ++i)
        CHECK(back[i] == dmaplane::f16::from_float(row[i]).to_float());
    CHECK(back[0] != row[0]);
    CHECK(h.row(1, 1, 2, 1)[1] == dmaplane::f16::from_float(-2.5f));
    // The last row of the [layer][kv][token][head][dim] layout.
    CHECK(h.elements().size() == 2 * 2 * 3 * 2 * 4);
    CHECK(h.elements()[h.elements().size() - 4].bits == dmaplane::f16::from_float(row[0]).bits);
    CHECK_THROWS_AS(h.store(2, 0, 0, 0, row), std::out_of_range);
    CHECK_THROWS_AS(h.load(0, 2, 0, 0, back), std::out_of_range);
    CHECK_THROWS_AS(h.load(0, 0, 3, 0, back), std::out_of_range);
    CHECK_THROWS_AS(h.load(0, 0, 0, 2, back), std::out_of_range);
    CHECK_THROWS_AS(h.store(0, 0, 0, 0, std::span<const float>(row, 3)), std::out_of_range);

    memory_kv_rows<dmaplane::bf16> b(1, 1, 1, 4);
    b.store(0, 0, 0, 0, row);
    b.load(0, 0, 0, 0, back);
    CHECK(back[0] == dmaplane::bf16::from_float(row[0]).to_float());
    memory_kv_rows<float> f(1, 1, 1, 4);
    f.store(0, 0, 0, 0, row);
    f.load(0, 0, 0, 0, back);
    CHECK(same_bits(back, row));
    f.clear();
    f.load(0, 0, 0, 0, back);
    CHECK(back[2] == 0.0f);
}

TEST_CASE("layer-wise prefill and token-by-token decode agree bit for bit") {
    const model m = model::generate(tiny_config(), 42);
    REQUIRE(!m.empty());
    SUBCASE("f16") { check_prefill_matches_decode<dmaplane::f16>(m, "Hello, disaggregated world!", 12); }
    SUBCASE("bf16") { check_prefill_matches_decode<dmaplane::bf16>(m, "Hello, disaggregated world!", 12); }
    SUBCASE("f32") { check_prefill_matches_decode<float>(m, "Hello, disaggregated world!", 12); }
    SUBCASE("one-token prompt, shared classifier") {
        const model u = model::generate(tiny_config(), 43, true);
        check_prefill_matches_decode<dmaplane::f16>(u, "x", 5);
    }
    SUBCASE("odd widths, one K/V head, vocabulary beyond bytes") {
        const model u = model::generate(odd_config(), 44);
        check_prefill_matches_decode<dmaplane::bf16>(u, "widths not multiples of 8", 9);
        check_prefill_matches_decode<dmaplane::f16>(u, "widths not multiples of 8", 9);
    }
}

TEST_CASE("prefill_layer stores a layer's rows before loading any") {
    const model m = model::generate(tiny_config(), 7);
    memory_kv_rows<dmaplane::f16> inner(m.config());
    recording_kv_rows cache(inner);
    disagg::prefill_state state;
    const std::vector<int> prompt = disagg::encode("abcdef");
    REQUIRE(m.embed(prompt, state));
    CHECK_FALSE(m.prefill_layer(1, state, cache)); // layers go in order
    CHECK(m.prefill_finish(state) == -1);          // not done yet
    REQUIRE(m.prefill_layer(0, state, cache));
    CHECK_FALSE(m.prefill_layer(0, state, cache));
    const std::size_t rows = prompt.size() * 2 /* kv heads */ * 2 /* K and V */;
    REQUIRE(cache.calls.size() == 2 * rows);
    for (std::size_t i = 0; i < rows; ++i) {
        CHECK(cache.calls[i].store);
        CHECK(cache.calls[rows + i].store == false);
        CHECK(cache.calls[i].layer == 0);
    }
}

TEST_CASE("bad inputs are refused") {
    const model m = model::generate(tiny_config(), 1);
    memory_kv_rows<float> cache(m.config());
    disagg::prefill_state state;
    const int bad_token[] = {65, 256};
    CHECK_FALSE(m.embed(bad_token, state));
    CHECK(state.tokens() == 0);
    CHECK_FALSE(m.embed({}, state));
    CHECK_FALSE(m.embed(std::vector<int>(65, 1), state)); // longer than seq_len
    CHECK(m.forward_token(-1, 0, cache) == -1);
    CHECK(m.forward_token(256, 0, cache) == -1);
    CHECK(m.forward_token(1, 64, cache) == -1);
    CHECK(m.generate_tokens(disagg::encode("abc"), 63, cache).empty()); // 3 + 62 > 64
    CHECK(m.generate_tokens(disagg::encode("abc"), 62, cache).size() == 62);
    CHECK(m.generate_tokens(disagg::encode("abc"), 0, cache).empty());
    CHECK(model{}.forward_token(1, 0, cache) == -1);
}

TEST_CASE("generate() is deterministic in its seed") {
    const model a = model::generate(tiny_config(), 1234, true);
    const model b = model::generate(tiny_config(), 1234, true);
    const model c = model::generate(tiny_config(), 1235, true);
    CHECK(same_weights(a, b));
    for (const weight_id id : all_weights)
        CHECK_FALSE(same_bits(a.weights(id), c.weights(id)));
    CHECK(a.shared_classifier());
    CHECK(a.weights(weight_id::wcls).data() == a.weights(weight_id::token_embedding).data());
    const model u = model::generate(tiny_config(), 1234);
    CHECK_FALSE(u.shared_classifier());
    CHECK(same_weights(u, model::generate(tiny_config(), 1234)));
    CHECK_FALSE(same_bits(u.weights(weight_id::wcls), c.weights(weight_id::wcls)));
    // The embedding is drawn first, so it does not depend on the classifier.
    CHECK(same_bits(u.weights(weight_id::token_embedding), a.weights(weight_id::token_embedding)));
    CHECK_FALSE(same_bits(u.weights(weight_id::wcls), u.weights(weight_id::token_embedding)));
    CHECK(u.parameter_count() == a.parameter_count() + 256 * 32);
    // Scales: matrices within 1/sqrt(fan_in), norms near 1.
    for (const float w : a.weights(weight_id::w2))
        CHECK(std::fabs(w) <= 1.0f / 8.0f); // fan_in 64
    for (const float w : a.weights(weight_id::rms_att))
        CHECK(std::fabs(w - 1.0f) <= 0.1f);
}

TEST_CASE("generation is not degenerate") {
    const model m = model::generate(disagg::default_config(), 2024);
    memory_kv_rows<dmaplane::f16> cache(m.config());
    const std::vector<int> a = m.generate_tokens(disagg::encode("The quick brown fox"), 16, cache);
    cache.clear();
    const std::vector<int> b = m.generate_tokens(disagg::encode("Once upon a time"), 16, cache);
    REQUIRE(a.size() == 16);
    REQUIRE(b.size() == 16);
    CHECK(a != b);
    std::vector<float> logits;
    const int first = m.forward_token('A', 0, cache, &logits);
    CHECK(first >= 0);
    CHECK(first < 256);
    CHECK(std::all_of(logits.begin(), logits.end(), [](float l) { return std::isfinite(l); }));
    const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
    CHECK(*hi - *lo > 0.1f);
    std::string text;
    for (const int t : a)
        text += disagg::decode_token(t);
    MESSAGE("generated: ", text);
}

TEST_CASE("llama2.c checkpoints round-trip") {
    const std::vector<int> prompt = disagg::encode("round trip");
    const auto tokens_of = [&](const model& m) {
        memory_kv_rows<dmaplane::f16> cache(m.config());
        return m.generate_tokens(prompt, 8, cache);
    };
    std::string error;

    SUBCASE("shared classifier") {
        const model m = model::generate(tiny_config(), 5, true);
        temp_path path("shared.bin");
        REQUIRE(m.save_llama2c(path.str(), true, error));
        CHECK(error.empty());
        const std::uintmax_t floats = 256 * 32 + 3 * (32 + 2 * 32 * 32 + 2 * 16 * 32 + 32 + 3 * 64 * 32) +
                                      32 + 64 * 4 * 2; // freq_cis: seq_len x head_dim/2, twice
        CHECK(std::filesystem::file_size(path.str()) == 28 + 4 * floats);
        const model l = model::load_llama2c(path.str(), error);
        REQUIRE_MESSAGE(!l.empty(), error);
        CHECK(error.empty());
        CHECK(l.shared_classifier());
        CHECK(same_weights(m, l));
        CHECK(tokens_of(m) == tokens_of(l));
    }
    SUBCASE("unshared classifier") {
        const model m = model::generate(tiny_config(), 6, false);
        temp_path path("unshared.bin");
        CHECK_FALSE(m.save_llama2c(path.str(), true, error)); // would lose wcls
        CHECK(error.find("cannot be shared") != std::string::npos);
        REQUIRE(m.save_llama2c(path.str(), false, error));
        const model l = model::load_llama2c(path.str(), error);
        REQUIRE_MESSAGE(!l.empty(), error);
        CHECK_FALSE(l.shared_classifier());
        CHECK(same_weights(m, l));
        CHECK(tokens_of(m) == tokens_of(l));
    }
    SUBCASE("a shared model saved unshared") {
        const model m = model::generate(tiny_config(), 7, true);
        temp_path path("copy.bin");
        REQUIRE(m.save_llama2c(path.str(), false, error));
        const model l = model::load_llama2c(path.str(), error);
        REQUIRE_MESSAGE(!l.empty(), error);
        CHECK_FALSE(l.shared_classifier());
        CHECK(same_weights(m, l));
        CHECK(tokens_of(m) == tokens_of(l));
    }
}

TEST_CASE("bad checkpoints are rejected with a reason") {
    const model m = model::generate(tiny_config(), 9, true);
    temp_path path("bad.bin");
    std::string error;
    REQUIRE(m.save_llama2c(path.str(), true, error));
    const std::uintmax_t size = std::filesystem::file_size(path.str());

    SUBCASE("truncated") {
        std::filesystem::resize_file(path.str(), size - 4);
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("truncated") != std::string::npos);
        CHECK(error.find(std::to_string(size)) != std::string::npos); // the size it needs
    }
    SUBCASE("oversized") {
        std::filesystem::resize_file(path.str(), size + 1);
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("oversized") != std::string::npos);
    }
    SUBCASE("header cut short") {
        std::filesystem::resize_file(path.str(), 27);
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("header") != std::string::npos);
    }
    SUBCASE("hostile headers") {
        // Largest shapes validation allows: sizes computed without overflow,
        // refused before anything is allocated.
        write_bytes(path.str(), header_bytes({8192, 65536, 256, 2, 1, -(1 << 20), 1 << 16}));
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("truncated") != std::string::npos);
        write_bytes(path.str(), header_bytes({32, 64, 3, 4, 2, INT32_MIN, 64}));
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("bad header") != std::string::npos);
        write_bytes(path.str(), header_bytes({-32, 64, 3, 4, 2, 256, 64}));
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("bad header: dim") != std::string::npos);
        write_bytes(path.str(), header_bytes({30, 64, 3, 4, 2, 256, 64}));
        CHECK(model::load_llama2c(path.str(), error).empty());
        CHECK(error.find("not a multiple") != std::string::npos);
    }
    SUBCASE("missing file") {
        CHECK(model::load_llama2c(path.str() + ".absent", error).empty());
        CHECK_FALSE(error.empty());
    }
}

TEST_CASE("byte tokenizer") {
    CHECK(disagg::encode("A\n\xff") == std::vector<int>{65, 10, 255});
    CHECK(disagg::encode("").empty());
    CHECK(disagg::decode_token('A') == "A");
    CHECK(disagg::decode_token(' ') == " ");
    CHECK(disagg::decode_token('\n') == "\\x0a");
    CHECK(disagg::decode_token(0x7f) == "\\x7f");
    CHECK(disagg::decode_token(0xab) == "\\xab");
    CHECK(disagg::decode_token(256) == "<256>");
    CHECK(disagg::decode_token(-3) == "<-3>");
}
