// binding.cpp - tconv._C: translates torch tensors into tconv's C API and back.
//
// Argument checks name the argument; every tconv_status other than success becomes a
// RuntimeError carrying tconv_status_string() and the problem.  CPU tensors run the C
// reference (float32, float64); CUDA tensors run a plan (tconv_plan_*, kept in a cache of the
// most recently used) on the current stream of their device, with the workspace taken from
// PyTorch's caching allocator.
#include <torch/extension.h>

#include <c10/core/DeviceGuard.h>

#include <array>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#ifdef TCONV_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "tconv.h"

namespace {

using Pair = std::vector<int64_t>;  // (h, w)

struct Params {
    Pair stride, padding, output_padding, dilation;
    int64_t groups;
};

void check_pair(const Pair &v, const char *name) {
    TORCH_CHECK(v.size() == 2, "tconv: ", name, " must have 2 values (h, w), got ", v.size());
}

struct Sizes {
    int64_t n, c_in, h_in, w_in, c_out, kernel_h, kernel_w;
};

void check_status(tconv_status status, const char *what, const tconv_problem &p);

// The checked problem (h_out, w_out set) of these sizes and hyper-parameters.
tconv_problem make_problem(const Sizes &z, const Params &a, const char *what) {
    check_pair(a.stride, "stride");
    check_pair(a.padding, "padding");
    check_pair(a.output_padding, "output_padding");
    check_pair(a.dilation, "dilation");
    tconv_problem p = {};
    p.n = z.n;
    p.c_in = z.c_in;
    p.h_in = z.h_in;
    p.w_in = z.w_in;
    p.c_out = z.c_out;
    p.kernel_h = z.kernel_h;
    p.kernel_w = z.kernel_w;
    p.stride_h = a.stride[0];
    p.stride_w = a.stride[1];
    p.padding_h = a.padding[0];
    p.padding_w = a.padding[1];
    p.output_padding_h = a.output_padding[0];
    p.output_padding_w = a.output_padding[1];
    p.dilation_h = a.dilation[0];
    p.dilation_w = a.dilation[1];
    p.groups = a.groups;
    check_status(tconv_problem_check(&p), what, p);
    return p;
}

// "C_in 6 = 3 groups x 2", or "C_in 4 (not a multiple of groups 3)"; the count alone for 1 group
void per_group(std::ostringstream &s, const char *name, int64_t count, int64_t groups) {
    s << name << " " << count;
    if (groups > 1 && count % groups == 0) {
        s << " = " << groups << " groups x " << count / groups;
    } else if (groups > 1) {
        s << " (not a multiple of groups " << groups << ")";
    }
}

std::string describe(const tconv_problem &p) {
    std::ostringstream s;
    s << "x (" << p.n << ", " << p.c_in << ", " << p.h_in << ", " << p.w_in << "), ";
    per_group(s, "C_in", p.c_in, p.groups);
    s << ", ";
    per_group(s, "C_out", p.c_out, p.groups);
    s << ", kernel (" << p.kernel_h << ", " << p.kernel_w << "), stride (" << p.stride_h << ", "
      << p.stride_w << "), padding (" << p.padding_h << ", " << p.padding_w
      << "), output_padding (" << p.output_padding_h << ", " << p.output_padding_w
      << "), dilation (" << p.dilation_h << ", " << p.dilation_w << "), groups " << p.groups;
    return s.str();
}

// For TCONV_UNSUPPORTED_SIZE: the first argument over 2^31 - 1, by name, or the sizes it makes.
std::string too_large(const tconv_problem &p) {
    const std::pair<const char *, int64_t> sizes[] = {
        {"N", p.n}, {"C_in", p.c_in}, {"C_out", p.c_out}, {"H_in", p.h_in}, {"W_in", p.w_in},
        {"kernel_size", std::max(p.kernel_h, p.kernel_w)}, {"stride", std::max(p.stride_h, p.stride_w)},
        {"padding", std::max(p.padding_h, p.padding_w)}, {"dilation", std::max(p.dilation_h, p.dilation_w)},
        {"output_padding", std::max(p.output_padding_h, p.output_padding_w)}};
    for (const auto &size : sizes) {
        if (size.second > INT32_MAX) {
            return std::string(size.first) + " " + std::to_string(size.second) + " is over 2^31 - 1";
        }
    }
    return "the output size or a tensor's element count is too large";
}

void check_status(tconv_status status, const char *what, const tconv_problem &p) {
    if (status == TCONV_ERROR_CUDA) {
        TORCH_CHECK(false, "tconv ", what, ": ", tconv_status_string(status), " (cudaError ",
                    tconv_cuda_last_error(), ")");
    }
    if (status == TCONV_UNSUPPORTED_SIZE) {
        TORCH_CHECK(false, "tconv ", what, ": unsupported: ", too_large(p), " [", describe(p), "]");
    }
    TORCH_CHECK(status == TCONV_SUCCESS, "tconv ", what, ": ", tconv_status_string(status),
                " [", describe(p), "]");
}

// C_out of a weight with `per_group` output channels per group (groups positive).  A product
// past 64 bits is an error of its own where groups divides C_in; where it does not, the
// problem's check names groups (C_out is then left at per_group).
int64_t c_out_of(int64_t per_group, int64_t groups, int64_t c_in, const char *what) {
    TORCH_CHECK(groups >= 1, "tconv ", what, ": groups must be positive, got ", groups);
    int64_t c_out = 0;
    if (!__builtin_mul_overflow(per_group, groups, &c_out)) return c_out;
    TORCH_CHECK(c_in % groups != 0, "tconv ", what, ": unsupported: C_out = ", per_group,
                " (weight.size(1)) x groups ", groups, " overflows 64 bits");
    return per_group;
}

void check_tensor(const at::Tensor &t, const char *name, const at::Tensor &x, const char *x_name) {
    const at::ScalarType dtype = t.scalar_type();
    TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16,
                "tconv: ", name, " has dtype ", dtype, "; tconv takes float32, float64, float16 or bfloat16");
    TORCH_CHECK(t.dim() == 4, "tconv: ", name, " must be 4-D (NCHW), got ", t.dim(), "-D");
    TORCH_CHECK(t.is_contiguous(), "tconv: ", name, " must be contiguous");
    TORCH_CHECK(t.device() == x.device(), "tconv: ", name, " is on ", t.device(), " but ", x_name,
                " is on ", x.device());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), "tconv: ", name, " has dtype ", t.scalar_type(),
                " but ", x_name, " has dtype ", x.scalar_type());
}

void check_shape(const at::Tensor &t, const char *name, at::IntArrayRef expected) {
    TORCH_CHECK(t.sizes() == expected, "tconv: ", name, " must have shape ", expected, ", got ",
                t.sizes());
}

// ---- CPU calls: the C reference, picked by element type ----

tconv_status cpu_forward(const tconv_problem *p, const float *x, const float *w, const float *b, float *y) {
    return tconv_forward_cpu_f32(p, x, w, b, y);
}
tconv_status cpu_forward(const tconv_problem *p, const double *x, const double *w, const double *b,
                         double *y) {
    return tconv_forward_cpu_f64(p, x, w, b, y);
}
tconv_status cpu_grad_input(const tconv_problem *p, const float *gy, const float *w, float *gx) {
    return tconv_grad_input_cpu_f32(p, gy, w, gx);
}
tconv_status cpu_grad_input(const tconv_problem *p, const double *gy, const double *w, double *gx) {
    return tconv_grad_input_cpu_f64(p, gy, w, gx);
}
tconv_status cpu_grad_weight(const tconv_problem *p, const float *x, const float *gy, float *gw) {
    return tconv_grad_weight_cpu_f32(p, x, gy, gw);
}
tconv_status cpu_grad_weight(const tconv_problem *p, const double *x, const double *gy, double *gw) {
    return tconv_grad_weight_cpu_f64(p, x, gy, gw);
}
tconv_status cpu_grad_bias(const tconv_problem *p, const float *gy, float *gb) {
    return tconv_grad_bias_cpu_f32(p, gy, gb);
}
tconv_status cpu_grad_bias(const tconv_problem *p, const double *gy, double *gb) {
    return tconv_grad_bias_cpu_f64(p, gy, gb);
}

// Runs call(T{}) with T the element type of t (float or double), named `name`, and checks its
// status.  (PyTorch's empty tensors have NULL data: the C API takes them for N == 0.)
template <typename Call>
void run_cpu(const at::Tensor &t, const char *name, const char *what, const tconv_problem &p, Call call) {
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "tconv ", what, ": ",
                name, " has dtype ", t.scalar_type(), ", but the CPU reference takes float32 or float64 "
                "(tconv.ops computes float16 and bfloat16 in float32)");
    check_status(t.scalar_type() == at::kFloat ? call(float{}) : call(double{}), what, p);
}

// ---- CUDA calls: config, device guard, stream, workspace ----

tconv_config make_config(at::ScalarType dtype, const std::string &precision,
                         const c10::optional<std::string> &algorithm) {
    tconv_config config = {};
    switch (dtype) {
    case at::kFloat: config.dtype = TCONV_FLOAT32; break;
    case at::kDouble: config.dtype = TCONV_FLOAT64; break;
    case at::kHalf: config.dtype = TCONV_FLOAT16; break;
    case at::kBFloat16: config.dtype = TCONV_BFLOAT16; break;
    default: TORCH_CHECK(false, "tconv: unsupported dtype ", dtype);
    }
    TORCH_CHECK(precision == "fp32" || precision == "tf32",
                "tconv: precision must be \"fp32\" or \"tf32\", got \"", precision, "\"");
    config.precision = precision == "tf32" ? TCONV_PRECISION_TF32 : TCONV_PRECISION_FP32;
    config.algorithm = algorithm ? algorithm->c_str() : nullptr;
    return config;
}

// ---- plans: made once per problem, pass, dtype, precision, algorithm and device ----

// What a plan fixes: the problem's fields a caller fills, the pass, the config, the device.
struct PlanKey {
    std::array<int64_t, 16> problem;
    int pass, dtype, precision, device;
    std::string algorithm; // empty: the dispatcher's choice

    bool operator==(const PlanKey &o) const {
        return problem == o.problem && pass == o.pass && dtype == o.dtype && precision == o.precision &&
               device == o.device && algorithm == o.algorithm;
    }
};

struct PlanKeyHash {
    size_t operator()(const PlanKey &k) const {
        size_t h = std::hash<std::string>()(k.algorithm);
        for (int64_t v : k.problem) h = h * 1000003u ^ std::hash<int64_t>()(v);
        return ((h * 31u + (size_t)k.pass) * 31u + (size_t)k.dtype) * 31u + (size_t)(k.precision * 64 + k.device);
    }
};

// The most recently used plans, at most kPlanCacheSize; safe from several threads.  A plan
// in use stays alive (shared_ptr) when the cache drops it.
class PlanCache {
  public:
    static constexpr size_t kPlanCacheSize = 256;
    using Plan = std::shared_ptr<tconv_plan>;

    // The plan of key, made (tconv_plan_create on the current device) where there is none.
    Plan get(const PlanKey &key, const tconv_problem &p, const tconv_config &config, const char *what) {
        {
            std::lock_guard<std::mutex> hold(lock_);
            auto found = index_.find(key);
            if (found != index_.end()) {
                lru_.splice(lru_.begin(), lru_, found->second);
                return found->second->second;
            }
        }
        tconv_plan *made = nullptr;
        check_status(tconv_plan_create(&made, &p, (tconv_pass)key.pass, &config), what, p);
        Plan plan(made, tconv_plan_destroy);
        std::lock_guard<std::mutex> hold(lock_);
        auto found = index_.find(key); // another thread may have made it meanwhile
        if (found != index_.end()) {
            lru_.splice(lru_.begin(), lru_, found->second);
            return found->second->second;
        }
        lru_.emplace_front(key, plan);
        index_[key] = lru_.begin();
        if (lru_.size() > kPlanCacheSize) {
            index_.erase(lru_.back().first);
            lru_.pop_back();
        }
        return plan;
    }

  private:
    std::mutex lock_;
    std::list<std::pair<PlanKey, Plan>> lru_;
    std::unordered_map<PlanKey, std::list<std::pair<PlanKey, Plan>>::iterator, PlanKeyHash> index_;
};

PlanCache &plan_cache() {
    static PlanCache cache;
    return cache;
}

// One pass on CUDA tensors: the device guard, the plan from the cache, the workspace from
// PyTorch's caching allocator, the device's current stream.
struct CudaCall {
    c10::OptionalDeviceGuard guard;
    const tconv_problem &p;
    const char *what;
    PlanCache::Plan plan;
    at::Tensor workspace;
    CUstream_st *stream;

    CudaCall(const tconv_problem &p, tconv_pass pass, const at::Tensor &t,
             const std::string &precision, const c10::optional<std::string> &algorithm,
             const char *what)
        : p(p), what(what), stream(nullptr) {
        TORCH_CHECK(t.is_cuda(), "tconv ", what, ": tensors must be on the CPU or a CUDA device, got ",
                    t.device());
        guard.reset_device(t.device());
        TORCH_CHECK(!algorithm || !algorithm->empty(), "tconv ", what, ": algorithm must not be empty");
        const tconv_config config = make_config(t.scalar_type(), precision, algorithm);
        const PlanKey key = {{p.n, p.c_in, p.h_in, p.w_in, p.c_out, p.kernel_h, p.kernel_w, p.stride_h,
                              p.stride_w, p.padding_h, p.padding_w, p.output_padding_h, p.output_padding_w,
                              p.dilation_h, p.dilation_w, p.groups},
                             (int)pass, (int)config.dtype, (int)config.precision, (int)t.get_device(),
                             algorithm ? *algorithm : std::string()};
        plan = plan_cache().get(key, p, config, what);
        size_t bytes = 0;
        check_status(tconv_plan_workspace_size(plan.get(), &bytes), what, p);
        workspace = at::empty({(int64_t)bytes}, t.options().dtype(at::kByte));
#ifdef TCONV_WITH_CUDA
        stream = at::cuda::getCurrentCUDAStream(t.get_device()).stream();
#endif
    }
    void *workspace_data() { return workspace.numel() ? workspace.data_ptr() : nullptr; }
    size_t workspace_bytes() const { return (size_t)workspace.numel(); }
    void check(tconv_status status) const { check_status(status, what, p); }
};

// ---- the four passes ----

at::Tensor forward(const at::Tensor &x, const at::Tensor &weight, const c10::optional<at::Tensor> &bias,
                   Pair stride, Pair padding, Pair output_padding, Pair dilation, int64_t groups,
                   const std::string &precision, const c10::optional<std::string> &algorithm) {
    check_tensor(x, "x", x, "x");
    check_tensor(weight, "weight", x, "x");
    TORCH_CHECK(weight.size(0) == x.size(1), "tconv forward: x has ", x.size(1),
                " channels but weight expects ", weight.size(0), " (weight is ", weight.sizes(), ")");
    const tconv_problem p = make_problem(
        {x.size(0), x.size(1), x.size(2), x.size(3), c_out_of(weight.size(1), groups, x.size(1), "forward"),
         weight.size(2), weight.size(3)},
        {stride, padding, output_padding, dilation, groups}, "forward");
    if (bias) {
        TORCH_CHECK(bias->dim() == 1 && bias->size(0) == p.c_out, "tconv forward: bias must have shape (",
                    p.c_out, "), got ", bias->sizes());
        TORCH_CHECK(bias->is_contiguous(), "tconv forward: bias must be contiguous");
        TORCH_CHECK(bias->device() == x.device(), "tconv forward: bias is on ", bias->device(),
                    " but x is on ", x.device());
        TORCH_CHECK(bias->scalar_type() == x.scalar_type(), "tconv forward: bias has dtype ",
                    bias->scalar_type(), " but x has dtype ", x.scalar_type());
    }
    at::Tensor y = at::empty({p.n, p.c_out, p.h_out, p.w_out}, x.options());
    const void *b = bias ? bias->data_ptr() : nullptr;
    if (x.is_cpu()) {
        run_cpu(x, "x", "forward", p, [&](auto zero) {
            using T = decltype(zero);
            return cpu_forward(&p, x.data_ptr<T>(), weight.data_ptr<T>(), static_cast<const T *>(b),
                               y.data_ptr<T>());
        });
        return y;
    }
    CudaCall call(p, TCONV_PASS_FORWARD, x, precision, algorithm, "forward");
    call.check(tconv_plan_forward(call.plan.get(), &p, x.data_ptr(), weight.data_ptr(), b, y.data_ptr(),
                                  call.workspace_data(), call.workspace_bytes(), call.stream));
    return y;
}

at::Tensor grad_input(const at::Tensor &grad_y, const at::Tensor &weight, Pair input_hw, Pair stride,
                      Pair padding, Pair output_padding, Pair dilation, int64_t groups,
                      const std::string &precision, const c10::optional<std::string> &algorithm) {
    check_tensor(grad_y, "grad_y", grad_y, "grad_y");
    check_tensor(weight, "weight", grad_y, "grad_y");
    check_pair(input_hw, "input_hw");
    const tconv_problem p = make_problem({grad_y.size(0), weight.size(0), input_hw[0], input_hw[1],
                                          c_out_of(weight.size(1), groups, weight.size(0), "grad_input"),
                                          weight.size(2), weight.size(3)},
                                         {stride, padding, output_padding, dilation, groups}, "grad_input");
    check_shape(grad_y, "grad_y", {p.n, p.c_out, p.h_out, p.w_out});
    at::Tensor grad_x = at::empty({p.n, p.c_in, p.h_in, p.w_in}, grad_y.options());
    if (grad_y.is_cpu()) {
        run_cpu(grad_y, "grad_y", "grad_input", p, [&](auto zero) {
            using T = decltype(zero);
            return cpu_grad_input(&p, grad_y.data_ptr<T>(), weight.data_ptr<T>(), grad_x.data_ptr<T>());
        });
        return grad_x;
    }
    CudaCall call(p, TCONV_PASS_GRAD_INPUT, grad_y, precision, algorithm, "grad_input");
    call.check(tconv_plan_grad_input(call.plan.get(), &p, grad_y.data_ptr(), weight.data_ptr(),
                                     grad_x.data_ptr(), call.workspace_data(), call.workspace_bytes(),
                                     call.stream));
    return grad_x;
}

at::Tensor grad_weight(const at::Tensor &x, const at::Tensor &grad_y, Pair kernel_hw, Pair stride,
                       Pair padding, Pair output_padding, Pair dilation, int64_t groups,
                       const std::string &precision, const c10::optional<std::string> &algorithm) {
    check_tensor(x, "x", x, "x");
    check_tensor(grad_y, "grad_y", x, "x");
    check_pair(kernel_hw, "kernel_hw");
    TORCH_CHECK(groups >= 1, "tconv grad_weight: groups must be positive, got ", groups);
    const tconv_problem p = make_problem(
        {x.size(0), x.size(1), x.size(2), x.size(3), grad_y.size(1), kernel_hw[0], kernel_hw[1]},
        {stride, padding, output_padding, dilation, groups}, "grad_weight");
    check_shape(grad_y, "grad_y", {p.n, p.c_out, p.h_out, p.w_out});
    at::Tensor grad_w = at::empty({p.c_in, p.c_out / groups, p.kernel_h, p.kernel_w}, x.options());
    if (x.is_cpu()) {
        run_cpu(x, "x", "grad_weight", p, [&](auto zero) {
            using T = decltype(zero);
            return cpu_grad_weight(&p, x.data_ptr<T>(), grad_y.data_ptr<T>(), grad_w.data_ptr<T>());
        });
        return grad_w;
    }
    CudaCall call(p, TCONV_PASS_GRAD_WEIGHT, x, precision, algorithm, "grad_weight");
    call.check(tconv_plan_grad_weight(call.plan.get(), &p, x.data_ptr(), grad_y.data_ptr(),
                                      grad_w.data_ptr(), call.workspace_data(), call.workspace_bytes(),
                                      call.stream));
    return grad_w;
}

// grad_bias depends on grad_y's shape only: it runs as the 1x1, stride-1 problem whose
// output has grad_y's shape.
at::Tensor grad_bias(const at::Tensor &grad_y, const c10::optional<std::string> &algorithm) {
    check_tensor(grad_y, "grad_y", grad_y, "grad_y");
    const tconv_problem p = make_problem(
        {grad_y.size(0), grad_y.size(1), grad_y.size(2), grad_y.size(3), grad_y.size(1), 1, 1},
        {{1, 1}, {0, 0}, {0, 0}, {1, 1}, 1}, "grad_bias");
    at::Tensor grad_b = at::empty({p.c_out}, grad_y.options());
    if (grad_y.is_cpu()) {
        run_cpu(grad_y, "grad_y", "grad_bias", p, [&](auto zero) {
            using T = decltype(zero);
            return cpu_grad_bias(&p, grad_y.data_ptr<T>(), grad_b.data_ptr<T>());
        });
        return grad_b;
    }
    CudaCall call(p, TCONV_PASS_GRAD_BIAS, grad_y, "fp32", algorithm, "grad_bias");
    call.check(tconv_plan_grad_bias(call.plan.get(), &p, grad_y.data_ptr(), grad_b.data_ptr(),
                                    call.workspace_data(), call.workspace_bytes(), call.stream));
    return grad_b;
}

// ---- the variant table and the dispatcher's choice ----

const char *const PASS_NAMES[] = {"forward", "grad_input", "grad_weight", "grad_bias"};

// torch dtypes by their Python names (torch.float32 is "float32")
const std::pair<const char *, at::ScalarType> DTYPE_NAMES[] = {
    {"float32", at::kFloat}, {"float64", at::kDouble}, {"float16", at::kHalf}, {"bfloat16", at::kBFloat16}};

at::ScalarType dtype_from_name(const std::string &name) {
    int i = 0;
    while (i < 4 && name != DTYPE_NAMES[i].first) ++i;
    TORCH_CHECK(i < 4, "tconv: dtype must be one of float32, float64, float16, bfloat16; got \"", name,
                "\"");
    return DTYPE_NAMES[i].second;
}

tconv_pass pass_from_name(const std::string &name) {
    int i = 0;
    while (i < 4 && name != PASS_NAMES[i]) ++i;
    TORCH_CHECK(i < 4, "tconv: pass_ must be one of forward, grad_input, grad_weight, grad_bias; got \"",
                name, "\"");
    return (tconv_pass)i;
}

std::vector<std::pair<std::string, std::string>> variants() {
    std::vector<std::pair<std::string, std::string>> out;
    tconv_pass pass;
    for (int i = 0; const char *name = tconv_cuda_variant(i, &pass); ++i) {
        out.emplace_back(name, PASS_NAMES[pass]);
    }
    return out;
}

std::string algorithm(const std::string &pass_name, std::vector<int64_t> x_shape,
                      std::vector<int64_t> weight_shape, Pair stride, Pair padding,
                      Pair output_padding, Pair dilation, int64_t groups, const std::string &dtype,
                      const std::string &precision) {
    TORCH_CHECK(x_shape.size() == 4, "tconv algorithm: x_shape must have 4 values, got ", x_shape.size());
    TORCH_CHECK(weight_shape.size() == 4, "tconv algorithm: weight_shape must have 4 values, got ",
                weight_shape.size());
    TORCH_CHECK(weight_shape[0] == x_shape[1], "tconv algorithm: x_shape has ", x_shape[1],
                " channels but weight_shape expects ", weight_shape[0]);
    const tconv_problem p = make_problem({x_shape[0], x_shape[1], x_shape[2], x_shape[3],
                                          c_out_of(weight_shape[1], groups, x_shape[1], "algorithm"),
                                          weight_shape[2], weight_shape[3]},
                                         {stride, padding, output_padding, dilation, groups}, "algorithm");
    tconv_config config = make_config(dtype_from_name(dtype), precision, c10::nullopt);
    const char *name = nullptr;
    check_status(tconv_cuda_algorithm(&p, pass_from_name(pass_name), &config, &name), "algorithm", p);
    return name;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "tconv: 2D transposed convolution kernels (low-level binding; use tconv.ops)";
    m.def("version", [] { return std::string(tconv_version()); }, "tconv_version()");
    m.def("cuda_available", [] { return tconv_cuda_available() != 0; },
          "True if the library was built with CUDA kernels");
    m.def("variants", &variants, "(name, pass) of every CUDA variant in dispatch order");
    m.def("algorithm", &algorithm, "the variant the dispatcher would pick");
    m.def("forward", &forward, "y from x, weight, bias");
    m.def("grad_input", &grad_input, "grad_x from grad_y, weight");
    m.def("grad_weight", &grad_weight, "grad_weight from x, grad_y");
    m.def("grad_bias", &grad_bias, "grad_bias from grad_y");
}
