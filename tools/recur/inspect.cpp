// recur inspect: what a model file holds — the network it describes, its metadata and its tensors.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "recur/error.hpp"
#include "recur/model_file.hpp"
#include "recur/safetensors.hpp"

namespace recur::cli {
namespace {

void inspect(const std::string& path, const std::string& cell) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  std::printf("%s\n", path.c_str());
  ModelLoadOptions options;
  if (!cell.empty()) options.cell = CellSpec::parse(cell);
  try {
    const RnnConfig config = infer_rnn_config(file, options);
    std::printf("  network: %s, input %lld, hidden %lld, %d layer%s, %s\n", config.cell.name().c_str(),
                (long long)config.input_size, (long long)config.hidden_size, config.num_layers,
                config.num_layers == 1 ? "" : "s", config.bidirectional ? "bidirectional" : "unidirectional");
  } catch (const Error& e) {
    std::printf("  network: not a recurrent network recur can run (%s)\n", e.what());
  }
  if (!file.metadata().empty()) {
    std::printf("  metadata:\n");
    for (const auto& [key, value] : file.metadata()) std::printf("    %s = %s\n", key.c_str(), value.c_str());
  }
  int64_t total = 0;
  std::printf("  tensors (%zu):\n", file.entries().size());
  for (const SafetensorsEntry& entry : file.entries()) {
    const int64_t count = shape_element_count(entry.shape);
    total += count;
    std::printf("    %-28s %-5s %s\n", entry.name.c_str(), dtype_name(entry.dtype).c_str(),
                shape_to_string(entry.shape).c_str());
  }
  std::printf("  parameters: %lld\n", (long long)total);
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto cell = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("inspect", "Print what a model file (.safetensors) holds");
  sub->add_option("model", *path, "model file")->required();
  sub->add_option("--cell", *cell, "cell, where the file's names cannot tell");
  return {sub, [path, cell] { inspect(*path, *cell); }};
}

}  // namespace recur::cli
