// JSON documents read strictly (nlohmann::json underneath): a key repeated in one object
// is an error, where a plain parser would silently keep the last value. Objects keep the
// order of their keys in the file, which matters where the first match wins (PEFT's
// rank_pattern).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace lowrank {

using ordered_json = nlohmann::ordered_json;

// Parses `text`; errors read "PATH: WHAT is not valid JSON: ..." and
// "PATH: WHAT repeats the key 'k'". `what` names the document ("safetensors header").
ordered_json parse_json_strict(std::string_view text, std::string_view path, std::string_view what);

// The JSON text Python's json.dumps(value, indent=2, sort_keys=True) writes (the layout of
// the files transformers and PEFT save: config.json, adapter_config.json, shard indexes),
// without a final newline.
std::string python_style_json(const nlohmann::json& value);

}  // namespace lowrank
