// Drives the SelectiveScan TensorRT plugin library through its IPluginV3 interfaces the way TensorRT does, without
// TensorRT (none can be installed on the machines here): dlopen, getCreators / setLoggerFinder, createPlugin from the
// fields the ONNX parser passes, the build-phase queries, the serialize round trip (getFieldsToSerialize, then
// createPlugin for the runtime phase), attachToContext, onShapeChange and enqueue on the caller's device buffers.
// tests/test_trt_plugin.py builds it with nvcc against TensorRT's headers and calls edgemv_plugin_drive via ctypes.
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace {

struct CollectingLogger : ILogger {
  std::string text;
  void log(Severity severity, AsciiChar const* msg) noexcept override {
    if (severity <= Severity::kWARNING) text += std::string(msg) + "\n";
  }
};

struct Finder : ILoggerFinder {
  ILogger* logger = nullptr;
  ILogger* findLogger() noexcept override { return logger; }
};

DataType trt_type(int dtype) { return dtype == 0 ? DataType::kFLOAT : dtype == 1 ? DataType::kHALF : DataType::kBF16; }

Dims dims_of(std::initializer_list<int64_t> values) {
  Dims d{};
  d.nbDims = (int32_t)values.size();
  int i = 0;
  for (int64_t v : values) d.d[i++] = v;
  return d;
}

int report(char* message, int len, int code, std::string const& what, CollectingLogger const& logger) {
  std::snprintf(message, (size_t)len, "%s%s%s", what.c_str(), logger.text.empty() ? "" : " | log: ",
                logger.text.c_str());
  return code;
}

}  // namespace

// shape: batch, D, L. dtype: 0 float32, 1 float16, 2 bfloat16. flags: delta_softplus, has_D, has_z, has_delta_bias,
// d_state. tensors: u, delta, A, B, C, D, z, delta_bias, y (nullptr where absent). run 0 stops before enqueue (no
// GPU needed); else `tactic` is set (setTactic) before enqueue. The tactics the plugin advertises after
// configurePlugin are written to `tactics` (room for 16), their count to `nb_tactics`. Returns 0 when every check
// passed (and the scan was enqueued on `stream`); else a code and a message.
extern "C" int edgemv_plugin_drive(char const* library, int64_t const* shape, int dtype, int const* flags,
                                   int dynamic_batch, int run, int tactic, int32_t* tactics, int* nb_tactics,
                                   void* const* tensors, void* stream, char* message, int len) {
  static CollectingLogger logger;  // the plugin keeps the finder for the life of the process
  static Finder finder;
  logger.text.clear();
  finder.logger = &logger;
  void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return report(message, len, 10, std::string("dlopen: ") + dlerror(), logger);
  using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
  using SetFinder = void (*)(ILoggerFinder*);
  auto get_creators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
  auto set_finder = reinterpret_cast<SetFinder>(dlsym(handle, "setLoggerFinder"));
  if (!get_creators || !set_finder) return report(message, len, 11, "getCreators/setLoggerFinder not exported", logger);
  set_finder(&finder);
  int32_t count = 0;
  IPluginCreatorInterface* const* creators = get_creators(count);
  if (count != 1 || !creators || !creators[0]) return report(message, len, 12, "expected one creator", logger);
  if (std::strcmp(creators[0]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0)
    return report(message, len, 13, "the creator is not an IPluginCreatorV3One", logger);
  auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
  if (std::strcmp(creator->getPluginName(), "SelectiveScan") || std::strcmp(creator->getPluginVersion(), "1") ||
      std::strcmp(creator->getPluginNamespace(), ""))
    return report(message, len, 14, "creator name/version/namespace differ from the exported node's", logger);
  PluginFieldCollection const* names = creator->getFieldNames();
  char const* expected[] = {"delta_softplus", "has_D", "has_z", "has_delta_bias", "d_state"};
  for (char const* want : expected) {
    bool found = false;
    for (int i = 0; names && i < names->nbFields; ++i) found |= std::strcmp(names->fields[i].name, want) == 0;
    if (!found) return report(message, len, 15, std::string("getFieldNames lacks ") + want, logger);
  }

  // the fields as TensorRT's ONNX parser passes a node's attributes: ints as int32, strings as chars
  int32_t values[5];
  for (int i = 0; i < 5; ++i) values[i] = flags[i];
  std::vector<PluginField> fields;
  for (int i = 0; i < 5; ++i) fields.emplace_back(expected[i], &values[i], PluginFieldType::kINT32, 1);
  fields.emplace_back("plugin_version", "1", PluginFieldType::kCHAR, 1);
  fields.emplace_back("plugin_namespace", "", PluginFieldType::kCHAR, 0);
  PluginFieldCollection fc{(int32_t)fields.size(), fields.data()};
  IPluginV3* plugin = creator->createPlugin("scan", &fc, TensorRTPhase::kBUILD);
  if (!plugin) return report(message, len, 2, "createPlugin refused the fields", logger);

  auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
  auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
  if (!core || !build || std::strcmp(core->getPluginName(), "SelectiveScan"))
    return report(message, len, 16, "capability interfaces missing", logger);
  if (std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD"))
    return report(message, len, 16, "build capability of the wrong kind", logger);

  int64_t const batch = shape[0], dim = shape[1], length = shape[2];
  bool const has_D = flags[1], has_z = flags[2], has_bias = flags[3];
  DataType const t = trt_type(dtype);
  // the inputs in the node's order, then y
  std::vector<Dims> dims = {dims_of({batch, dim, length}), dims_of({batch, dim, length}), dims_of({dim, 8}),
                            dims_of({batch, 8, length}), dims_of({batch, 8, length})};
  std::vector<DataType> types = {t, t, DataType::kFLOAT, t, t};
  std::vector<void const*> inputs = {tensors[0], tensors[1], tensors[2], tensors[3], tensors[4]};
  if (has_D) { dims.push_back(dims_of({dim})); types.push_back(DataType::kFLOAT); inputs.push_back(tensors[5]); }
  if (has_z) { dims.push_back(dims_of({batch, dim, length})); types.push_back(t); inputs.push_back(tensors[6]); }
  if (has_bias) { dims.push_back(dims_of({dim})); types.push_back(DataType::kFLOAT); inputs.push_back(tensors[7]); }
  int32_t const nb_in = (int32_t)inputs.size();

  if (build->getNbOutputs() != 1) return report(message, len, 17, "getNbOutputs != 1", logger);
  DataType out_type = DataType::kINT32;
  if (build->getOutputDataTypes(&out_type, 1, types.data(), nb_in) != 0 || out_type != t)
    return report(message, len, 18, "getOutputDataTypes: y must have u's type", logger);

  // every position in the intended types and linear format is supported; wrong types and formats are not
  std::vector<DynamicPluginTensorDesc> io(nb_in + 1);
  for (int i = 0; i <= nb_in; ++i) {
    Dims const d = i < nb_in ? dims[i] : dims[0];
    io[i].desc.dims = d;
    io[i].desc.type = i < nb_in ? types[i] : t;
    io[i].desc.format = TensorFormat::kLINEAR;
    io[i].desc.scale = 1.0f;
    io[i].min = io[i].opt = io[i].max = d;
    bool const batched = i == nb_in || i == 0 || i == 1 || i == 3 || i == 4 || (has_z && i == 5 + has_D);
    if (dynamic_batch && batched) {
      io[i].desc.dims.d[0] = -1;  // what TensorRT passes at build time for a dynamic batch
      io[i].min.d[0] = 1;
    }
  }
  for (int pos = 0; pos <= nb_in; ++pos)
    if (!build->supportsFormatCombination(pos, io.data(), nb_in, 1))
      return report(message, len, 19, "supportsFormatCombination refused position " + std::to_string(pos), logger);
  {
    auto wrong = io;
    wrong[0].desc.type = DataType::kINT32;
    if (build->supportsFormatCombination(0, wrong.data(), nb_in, 1))
      return report(message, len, 20, "int32 u accepted", logger);
    wrong = io;
    wrong[2].desc.type = t == DataType::kFLOAT ? DataType::kHALF : t;
    if (build->supportsFormatCombination(2, wrong.data(), nb_in, 1))
      return report(message, len, 20, "A in 16 bits accepted (the spec says float32)", logger);
    wrong = io;
    wrong[1].desc.format = TensorFormat::kCHW32;
    if (build->supportsFormatCombination(1, wrong.data(), nb_in, 1))
      return report(message, len, 20, "a vectorized format accepted", logger);
    wrong = io;
    wrong[3].desc.type = t == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT;
    if (build->supportsFormatCombination(3, wrong.data(), nb_in, 1))
      return report(message, len, 20, "B of another type than u accepted", logger);
  }
  if (build->configurePlugin(io.data(), nb_in, io.data() + nb_in, 1) != 0)
    return report(message, len, 21, "configurePlugin refused the intended shapes", logger);
  *nb_tactics = build->getNbTactics();
  if (*nb_tactics < 1 || *nb_tactics > 16 || build->getValidTactics(tactics, *nb_tactics) != 0)
    return report(message, len, 29, "getNbTactics/getValidTactics failed", logger);
  if (!build->getTimingCacheID()) return report(message, len, 29, "no timing cache ID", logger);
  {
    auto wrong = io;
    wrong[2].desc.dims = dims_of({dim, 16});
    std::string const before = logger.text;
    if (build->configurePlugin(wrong.data(), nb_in, wrong.data() + nb_in, 1) == 0)
      return report(message, len, 22, "configurePlugin accepted A with 16 states", logger);
    logger.text = before;  // that refusal's message was expected
  }

  // serialize the fields, then create the plugin again for the runtime phase as deserialization does
  auto* runtime_build =
      static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  PluginFieldCollection const* saved = runtime_build->getFieldsToSerialize();
  std::vector<PluginField> saved_fields(saved->fields, saved->fields + saved->nbFields);
  std::vector<int32_t> saved_values;
  for (auto& f : saved_fields) {  // copy the values: the plugin's buffers belong to it
    if (f.type != PluginFieldType::kINT32 || f.length != 1)
      return report(message, len, 23, "serialized field not one int32", logger);
    saved_values.push_back(*static_cast<int32_t const*>(f.data));
  }
  for (size_t i = 0; i < saved_fields.size(); ++i) saved_fields[i].data = &saved_values[i];
  delete plugin;
  PluginFieldCollection saved_fc{(int32_t)saved_fields.size(), saved_fields.data()};
  IPluginV3* restored = creator->createPlugin("scan", &saved_fc, TensorRTPhase::kRUNTIME);
  if (!restored) return report(message, len, 24, "createPlugin refused its own serialized fields", logger);
  auto* restored_rt =
      static_cast<IPluginV3OneRuntime*>(restored->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  IPluginV3* context_plugin = restored_rt->attachToContext(nullptr);
  delete restored;
  if (!context_plugin) return report(message, len, 25, "attachToContext gave no plugin", logger);
  auto* rt = static_cast<IPluginV3OneRuntime*>(context_plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));

  std::vector<PluginTensorDesc> in_desc(nb_in), out_desc(1);
  for (int i = 0; i < nb_in; ++i) in_desc[i] = {dims[i], types[i], TensorFormat::kLINEAR, 1.0f};
  out_desc[0] = {dims[0], t, TensorFormat::kLINEAR, 1.0f};
  if (rt->onShapeChange(in_desc.data(), nb_in, out_desc.data(), 1) != 0)
    return report(message, len, 26, "onShapeChange refused the shapes", logger);
  if (!run) {
    delete context_plugin;
    message[0] = 0;
    return logger.text.empty() ? 0 : report(message, len, 28, "the plugin logged errors", logger);
  }
  if (rt->setTactic(tactic) != 0) {
    delete context_plugin;
    return report(message, len, 30, "setTactic refused " + std::to_string(tactic), logger);
  }
  void* outputs[1] = {tensors[8]};
  int const status = rt->enqueue(in_desc.data(), out_desc.data(), inputs.data(), outputs, nullptr,
                                 static_cast<cudaStream_t>(stream));
  delete context_plugin;
  if (status != 0) return report(message, len, 27, "enqueue failed", logger);
  if (!logger.text.empty()) return report(message, len, 28, "the plugin logged errors", logger);
  message[0] = 0;
  return 0;
}
