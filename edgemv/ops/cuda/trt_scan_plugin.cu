// The selective scan as a TensorRT plugin: IPluginV3 for TensorRT 10.x (JetPack 6's 10.3 included) and 11.x.
//
// It runs the node `edgemv export --scan plugin` writes (`SelectiveScan`, version "1", empty namespace; its
// inputs and attributes: PLUGIN_SPEC in edgemv/ops/onnx_forms.py) with this package's CUDA kernels
// (selective_scan_n8.cu: the rows form, the short form, the staged form). Built by `edgemv plugin`
// (edgemv/compile/plugin.py: nvcc and TensorRT's headers; no TensorRT library is linked). TensorRT finds it in one of
// two ways:
// - IPluginRegistry::loadLibrary, trtexec --dynamicPlugins, or tensorrt's get_plugin_registry().load_library(path):
//   the library's getCreators and setLoggerFinder below;
// - an application that dlopens it calls edgemv_register_scan_plugin(getPluginRegistry(), "").
// Tensors are linear (TensorRT's kLINEAR): u, delta, z, y (batch, D, L) and B, C (batch, N, L) in u's type (float32,
// float16 or bfloat16); A (D, N), D and delta_bias (D,) float32. The kernels are written for N = 8 (MambaVision).
// Each kernel form is a tactic (enum Tactic), so TensorRT times them on the GPU it builds for and keeps the fastest.
#include <NvInferRuntime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "selective_scan_n8.cu"

namespace edgemv_trt {
using namespace nvinfer1;

constexpr char kName[] = "SelectiveScan";
constexpr char kVersion[] = "1";
constexpr int32_t kStates = 8;  // the kernels' N

ILoggerFinder* g_logger_finder = nullptr;  // set by TensorRT through setLoggerFinder

void log_error(std::string const& what) noexcept {
  try {
    ILogger* logger = g_logger_finder ? g_logger_finder->findLogger() : nullptr;
    if (logger) logger->log(ILogger::Severity::kERROR, ("edgemv SelectiveScan plugin: " + what).c_str());
  } catch (...) {
  }
}

// The node's attributes (plugin fields), as PLUGIN_SPEC names them; all int32, one value each
struct Attrs {
  int32_t delta_softplus = 0, has_D = 0, has_z = 0, has_delta_bias = 0, d_state = kStates;

  static constexpr int kCount = 5;
  static constexpr char const* kNames[kCount] = {"delta_softplus", "has_D", "has_z", "has_delta_bias", "d_state"};
  int32_t* slot(int i) {
    int32_t* slots[kCount] = {&delta_softplus, &has_D, &has_z, &has_delta_bias, &d_state};
    return slots[i];
  }

  // inputs: u, delta, A, B, C, then D, z, delta_bias where present
  int32_t nb_inputs() const { return 5 + has_D + has_z + has_delta_bias; }
  int32_t pos_D() const { return has_D ? 5 : -1; }
  int32_t pos_z() const { return has_z ? 5 + has_D : -1; }
  int32_t pos_bias() const { return has_delta_bias ? 5 + has_D + has_z : -1; }
  // whether input (or output, pos == nb_inputs()) `pos` holds u's dtype (the others are float32 parameters)
  bool in_u_type(int32_t pos) const { return pos != 2 && pos != pos_D() && pos != pos_bias(); }
};

// Reads the fields TensorRT passes (the ONNX node's attributes, plugin_version and plugin_namespace among them:
// unknown names are skipped). Returns an error message, empty when the attributes are usable.
std::string read_fields(PluginFieldCollection const* fc, Attrs& attrs) {
  for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
    PluginField const& f = fc->fields[i];
    if (!f.name) continue;
    for (int k = 0; k < Attrs::kCount; ++k) {
      if (std::strcmp(f.name, Attrs::kNames[k]) != 0) continue;
      if (f.length != 1 || !f.data) return std::string("attribute ") + f.name + " must be one integer";
      if (f.type == PluginFieldType::kINT32) *attrs.slot(k) = *static_cast<int32_t const*>(f.data);
      else if (f.type == PluginFieldType::kINT64) *attrs.slot(k) = (int32_t)*static_cast<int64_t const*>(f.data);
      else if (f.type == PluginFieldType::kINT8) *attrs.slot(k) = *static_cast<int8_t const*>(f.data);
      else return std::string("attribute ") + f.name + " must be an integer";
    }
  }
  for (int k = 0; k < 4; ++k)
    if (*attrs.slot(k) != 0 && *attrs.slot(k) != 1)
      return std::string("attribute ") + Attrs::kNames[k] + " must be 0 or 1";
  if (attrs.d_state != kStates)
    return "d_state " + std::to_string(attrs.d_state) +
           ": this plugin's kernels are written for 8 states (MambaVision); export the decomposed form instead";
  return {};
}

// TensorRT's DataType -> the kernels' dtype code (0 float32, 1 float16, 2 bfloat16), -1 for any other
int dtype_code(DataType t) {
  if (t == DataType::kFLOAT) return 0;
  if (t == DataType::kHALF) return 1;
  if (t == DataType::kBF16) return 2;
  return -1;
}

// The kernels, as the plugin's tactics (TensorRT times every tactic a plugin advertises for its shapes while it builds
// an engine, and keeps the fastest: the choice is measured on the target GPU, a Jetson included). kAuto takes the
// first of rows, short, staged (2 lanes) that can read the tensors: what 'auto' chose at MambaVision's shapes on
// the H100 and H200 (docs/scan.md), and what runs where no tactic was set (0, TensorRT's default).
enum Tactic : int32_t { kDefault = 0, kAuto = 1, kRows = 2, kShort = 3, kStaged2 = 4, kStaged4 = 5 };

// Whether the rows form reads these contiguous tensors: no z, L a multiple of the elements per 8 bytes, 8-byte
// aligned rows, a sequence's rows within 2^31 elements (rows_refusal in edgemv/ops/scan_cuda.py, for contiguous
// tensors). `length` < 0: not known yet (a dynamic dimension at build time).
bool rows_fits(bool has_z, int dtype, int64_t dim, int64_t length) {
  int64_t const vec = dtype == 0 ? 2 : 4;
  return !has_z && length > 0 && length % vec == 0 && dim * length + length < (int64_t(1) << 31);
}

// Whether the short form does: no z, L from 1 to 64, 8-byte aligned sequences (short_refusal for contiguous tensors)
bool short_fits(bool has_z, int dtype, int64_t batch, int64_t dim, int64_t length) {
  int64_t const size = dtype == 0 ? 4 : 2;
  return !has_z && length >= 1 && length <= short_form::MAX_L && dim * length < (int64_t(1) << 31) &&
         ((dim * length * size) % 8 == 0 || batch == 1);
}

bool aligned8(void const* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 8 == 0; }

class ScanPlugin : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
 public:
  ScanPlugin(Attrs attrs, std::string ns) : attrs_(attrs), namespace_(std::move(ns)) {}
  // not the default copy: fields_ and collection_ point into their own plugin, and are refilled on demand
  ScanPlugin(ScanPlugin const& other)
      : attrs_(other.attrs_), namespace_(other.namespace_), configured_(other.configured_), tactic_(other.tactic_) {}

  // IPluginV3
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    if (type == PluginCapabilityType::kBUILD) return static_cast<IPluginV3OneBuild*>(this);
    if (type == PluginCapabilityType::kRUNTIME) return static_cast<IPluginV3OneRuntime*>(this);
    if (type == PluginCapabilityType::kCORE) return static_cast<IPluginV3OneCore*>(this);
    return nullptr;
  }
  IPluginV3* clone() noexcept override {
    try {
      return new ScanPlugin(*this);
    } catch (...) {
      return nullptr;
    }
  }

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return kName; }
  char const* getPluginVersion() const noexcept override { return kVersion; }
  char const* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return 1; }

  int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (nbOutputs != 1 || nbInputs != attrs_.nb_inputs()) return fail("wrong number of inputs or outputs");
    outputTypes[0] = inputTypes[0];  // y has u's type
    return 0;
  }

  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const*, int32_t, DimsExprs* outputs,
                          int32_t nbOutputs, IExprBuilder&) noexcept override {
    if (nbOutputs != 1 || nbInputs != attrs_.nb_inputs()) return fail("wrong number of inputs or outputs");
    if (inputs[0].nbDims != 3) return fail("u must be (batch, D, L)");
    outputs[0] = inputs[0];  // y is (batch, D, L) as u
    return 0;
  }

  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (nbInputs != attrs_.nb_inputs() || nbOutputs != 1 || pos < 0 || pos > nbInputs) return false;
    PluginTensorDesc const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR) return false;
    if (pos == 0) return dtype_code(d.type) >= 0;
    if (attrs_.in_u_type(pos)) return d.type == inOut[0].desc.type;
    return d.type == DataType::kFLOAT;  // A, D, delta_bias
  }

  int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const*,
                          int32_t nbOutputs) noexcept override {
    if (nbInputs != attrs_.nb_inputs() || nbOutputs != 1) return fail("wrong number of inputs or outputs");
    Dims const& u = in[0].desc.dims;
    configured_ = {dtype_code(in[0].desc.type), u.nbDims == 3 ? u.d[0] : -1, u.nbDims == 3 ? u.d[1] : -1,
                   u.nbDims == 3 ? u.d[2] : -1};
    return check_dims(in, [](DynamicPluginTensorDesc const& t) -> Dims const& { return t.desc.dims; });
  }

  // kAuto, the rows and short forms where they can read the configured shapes, the staged form with 2 and 4 lanes
  int32_t getNbTactics() noexcept override { return valid_tactics(nullptr); }
  int32_t getValidTactics(int32_t* tactics, int32_t nbTactics) noexcept override {
    return valid_tactics(tactics) == nbTactics ? 0 : fail("getValidTactics: tactic count changed");
  }
  char const* getTimingCacheID() noexcept override {  // the attributes (TensorRT adds the shapes and formats)
    cache_id_ = std::string("edgemv-scan-1-") + std::to_string(attrs_.delta_softplus) + std::to_string(attrs_.has_D) +
                std::to_string(attrs_.has_z) + std::to_string(attrs_.has_delta_bias);
    return cache_id_.c_str();
  }

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const*,
                        int32_t nbOutputs) noexcept override {
    if (nbInputs != attrs_.nb_inputs() || nbOutputs != 1) return fail("wrong number of inputs or outputs");
    return check_dims(in, [](PluginTensorDesc const& t) -> Dims const& { return t.dims; });
  }

  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const*, void const* const* inputs,
                  void* const* outputs, void*, cudaStream_t stream) noexcept override {
    Dims const& shape = inputDesc[0].dims;
    int64_t const batch = shape.d[0], dim = shape.d[1], length = shape.d[2];
    int const dtype = dtype_code(inputDesc[0].type);
    if (dtype < 0) return fail("u must be float32, float16 or bfloat16");
    if (batch == 0 || dim == 0 || length == 0) return 0;
    if (batch > kMaxBatch)
      return fail("batch above " + std::to_string(kMaxBatch) +
                  " (the kernels' grid has one row of blocks per sequence)");
    Params p{};
    p.u = inputs[0];
    p.dt = inputs[1];
    p.A = inputs[2];
    p.B = inputs[3];
    p.C = inputs[4];
    p.D = attrs_.has_D ? inputs[attrs_.pos_D()] : nullptr;
    p.z = attrs_.has_z ? inputs[attrs_.pos_z()] : nullptr;
    p.bias = attrs_.has_delta_bias ? inputs[attrs_.pos_bias()] : nullptr;
    p.y = outputs[0];
    p.dim = dim;
    p.length = length;
    // every tensor contiguous: (batch, D, L) / (batch, N, L) / (D, N)
    p.su_b = p.sdt_b = p.sz_b = p.sy_b = dim * length;
    p.su_d = p.sdt_d = p.sz_d = p.sy_d = length;
    p.su_l = p.sdt_l = p.sz_l = p.sy_l = 1;
    p.sB_b = p.sC_b = kStates * length;
    p.sB_n = p.sC_n = length;
    p.sB_l = p.sC_l = 1;
    p.sA_d = kStates;
    p.sA_n = 1;
    p.has_d = attrs_.has_D;
    p.has_z = attrs_.has_z;
    p.has_bias = attrs_.has_delta_bias;
    p.softplus = attrs_.delta_softplus;
    p.A_dtype = p.D_dtype = p.bias_dtype = 0;
    // the tactic TensorRT chose, where it can read these tensors (the shapes may have changed since the build, and
    // alignment is known only now); else the automatic choice
    bool const aligned = aligned8(p.u) && aligned8(p.dt) && aligned8(p.y);
    bool const rows = aligned && rows_fits(attrs_.has_z, dtype, dim, length);
    bool const shorter = aligned && short_fits(attrs_.has_z, dtype, batch, dim, length);
    int32_t tactic = tactic_;
    if ((tactic == kRows && !rows) || (tactic == kShort && !shorter) || tactic == kDefault) tactic = kAuto;
    if (tactic == kAuto) tactic = rows ? kRows : shorter ? kShort : kStaged2;
    int status = 0;
    if (tactic == kRows) status = edgemv_scan_rows_cuda(&p, dtype, rows::SPLIT, (int)batch, stream);
    else if (tactic == kShort) status = edgemv_scan_short_cuda(&p, dtype, short_form::SPLIT, (int)batch, stream);
    else status = edgemv_scan_n8_cuda(&p, dtype, tactic == kStaged4 ? 4 : 2, (int)batch, stream);
    if (status != 0) return fail(std::string("kernel launch failed: ") + cudaGetErrorString((cudaError_t)status));
    return 0;
  }

  int32_t setTactic(int32_t tactic) noexcept override {
    if (tactic < kDefault || tactic > kStaged4) return fail("unknown tactic " + std::to_string(tactic));
    tactic_ = tactic;
    return 0;
  }

  IPluginV3* attachToContext(IPluginResourceContext*) noexcept override { return clone(); }

  PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    for (int k = 0; k < Attrs::kCount; ++k)
      fields_[k] = PluginField(Attrs::kNames[k], attrs_.slot(k), PluginFieldType::kINT32, 1);
    collection_.nbFields = Attrs::kCount;
    collection_.fields = fields_;
    return &collection_;
  }

 private:
  int32_t fail(std::string const& what) const noexcept {
    log_error(what);
    return -1;
  }

  // The shapes the kernels index by (dimensions TensorRT does not know yet, -1, pass): u, delta, z (batch, D, L);
  // A (D, 8); B, C (batch, 8, L); D, delta_bias (D,).
  template <typename Desc, typename GetDims>
  int32_t check_dims(Desc const* in, GetDims dims_of) const noexcept {
    Dims const& u = dims_of(in[0]);
    if (u.nbDims != 3) return fail("u must be (batch, D, L)");
    auto same = [](int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; };
    auto seq_like = [&](Dims const& t) {
      return t.nbDims == 3 && same(t.d[0], u.d[0]) && same(t.d[1], u.d[1]) && same(t.d[2], u.d[2]);
    };
    if (!seq_like(dims_of(in[1]))) return fail("delta must have u's shape (batch, D, L)");
    if (attrs_.has_z && !seq_like(dims_of(in[attrs_.pos_z()]))) return fail("z must have u's shape (batch, D, L)");
    Dims const& a = dims_of(in[2]);
    if (a.nbDims != 2 || !same(a.d[0], u.d[1]) || !same(a.d[1], kStates)) return fail("A must be (D, 8)");
    for (int i : {3, 4}) {
      Dims const& t = dims_of(in[i]);
      if (t.nbDims != 3 || !same(t.d[0], u.d[0]) || !same(t.d[1], kStates) || !same(t.d[2], u.d[2]))
        return fail(std::string(i == 3 ? "B" : "C") + " must be (batch, 8, L)");
    }
    for (int pos : {attrs_.pos_D(), attrs_.pos_bias()}) {
      if (pos < 0) continue;
      Dims const& t = dims_of(in[pos]);
      if (t.nbDims != 1 || !same(t.d[0], u.d[1])) return fail("D and delta_bias must be (D,)");
    }
    return 0;
  }

  // the tactics for the configured shapes, written to `out` when not null; their count
  int32_t valid_tactics(int32_t* out) const noexcept {
    int32_t list[5], n = 0;
    list[n++] = kAuto;
    if (rows_fits(attrs_.has_z, configured_.dtype, configured_.dim, configured_.length)) list[n++] = kRows;
    // a dynamic batch (-1) is judged as batch 2: whether every sequence starts 8-byte aligned, not only the first
    if (short_fits(attrs_.has_z, configured_.dtype, configured_.batch < 0 ? 2 : configured_.batch, configured_.dim,
                   configured_.length))
      list[n++] = kShort;
    list[n++] = kStaged2;
    list[n++] = kStaged4;
    for (int32_t i = 0; out && i < n; ++i) out[i] = list[i];
    return n;
  }

  struct Configured {  // u's dtype code and dimensions from configurePlugin (-1: dynamic)
    int dtype = 0;
    int64_t batch = -1, dim = -1, length = -1;
  };

  Attrs attrs_;
  std::string namespace_;
  PluginField fields_[Attrs::kCount];
  PluginFieldCollection collection_{};
  Configured configured_;
  int32_t tactic_ = kDefault;
  std::string cache_id_;
};

class ScanPluginCreator : public IPluginCreatorV3One {
 public:
  ScanPluginCreator() {
    for (int k = 0; k < Attrs::kCount; ++k)
      fields_[k] = PluginField(Attrs::kNames[k], nullptr, PluginFieldType::kINT32, 1);
    collection_.nbFields = Attrs::kCount;
    collection_.fields = fields_;
  }

  IPluginV3* createPlugin(char const*, PluginFieldCollection const* fc, TensorRTPhase) noexcept override {
    try {
      Attrs attrs;
      std::string const error = read_fields(fc, attrs);
      if (!error.empty()) {
        log_error(error);
        return nullptr;
      }
      return new ScanPlugin(attrs, namespace_);
    } catch (...) {
      return nullptr;
    }
  }
  PluginFieldCollection const* getFieldNames() noexcept override { return &collection_; }
  char const* getPluginName() const noexcept override { return kName; }
  char const* getPluginVersion() const noexcept override { return kVersion; }
  char const* getPluginNamespace() const noexcept override { return namespace_.c_str(); }
  void set_namespace(char const* ns) { namespace_ = ns ? ns : ""; }

 private:
  std::string namespace_;
  PluginField fields_[Attrs::kCount];
  PluginFieldCollection collection_{};
};

ScanPluginCreator& creator() {
  static ScanPluginCreator instance;
  return instance;
}

}  // namespace edgemv_trt

// What IPluginRegistry::loadLibrary looks up in a plugin library (TensorRT 10.0 and newer)
extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  edgemv_trt::g_logger_finder = finder;
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) {
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&edgemv_trt::creator()};
  nbCreators = 1;
  return creators;
}

// For an application that registers the creator itself: registry is getPluginRegistry()'s IPluginRegistry*, ns the
// plugin namespace ("" as the exported ONNX asks). Returns 1 when registered.
extern "C" __attribute__((visibility("default"))) int edgemv_register_scan_plugin(void* registry, char const* ns) {
  if (!registry) return 0;
  edgemv_trt::creator().set_namespace(ns);
  return static_cast<nvinfer1::IPluginRegistry*>(registry)->registerCreator(edgemv_trt::creator(), ns ? ns : "") ? 1
                                                                                                                  : 0;
}
