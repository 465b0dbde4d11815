#include "import/synapse_config.hpp"

#include "core/config.hpp"

#include <yaml-cpp/yaml.h>

namespace mxcd::synapse {

namespace {

std::filesystem::path relative_to(const std::filesystem::path& base, const std::string& path) {
  std::filesystem::path p(path);
  return p.is_absolute() ? p : base / p;
}

// Synapse hands database.args to psycopg2, which passes them to libpq as connection keywords
// (with `database` as an alias of `dbname`); the cp_* keys are its connection pool's own.
std::string postgres_conninfo(const YAML::Node& args) {
  std::string conninfo;
  for (const auto& entry : args) {
    auto key = entry.first.as<std::string>();
    if (key.rfind("cp_", 0) == 0 || !entry.second.IsScalar()) continue;
    if (key == "database") key = "dbname";
    conninfo += key + "=" + conninfo_value(entry.second.as<std::string>()) + " ";
  }
  return conninfo;
}

std::optional<ProviderBucket> provider_bucket(const YAML::Node& providers) {
  if (!providers || !providers.IsSequence()) return std::nullopt;
  for (const auto& provider : providers) {
    auto module = provider["module"];
    if (!module || module.as<std::string>().find("s3_storage_provider") == std::string::npos) {
      continue;
    }
    auto config = provider["config"];
    if (!config || !config["bucket"]) continue;
    ProviderBucket bucket;
    bucket.bucket = config["bucket"].as<std::string>();
    if (config["prefix"]) bucket.prefix = config["prefix"].as<std::string>();
    if (config["endpoint_url"]) bucket.endpoint_url = config["endpoint_url"].as<std::string>();
    return bucket;
  }
  return std::nullopt;
}

}  // namespace

Installation read_homeserver_config(const std::filesystem::path& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    throw ConfigProblem("cannot read " + path.string() + ": " + e.what());
  }
  if (!root.IsMap()) throw ConfigProblem(path.string() + " is not a Synapse configuration");
  const auto base = path.parent_path();
  try {
    Installation installation;
    if (!root["server_name"]) throw ConfigProblem(path.string() + " has no server_name");
    installation.server_name = root["server_name"].as<std::string>();
    installation.media_store =
        relative_to(base, root["media_store_path"] ? root["media_store_path"].as<std::string>()
                                                   : "media_store");

    auto database = root["database"];
    std::string name = database && database["name"] ? database["name"].as<std::string>() : "";
    auto args = database ? database["args"] : YAML::Node();
    if (name == "sqlite3") {
      if (!args || !args["database"]) {
        throw ConfigProblem(path.string() +
                            ": database.args.database (the SQLite file) is missing");
      }
      installation.sqlite_path = relative_to(base, args["database"].as<std::string>());
    } else if (name == "psycopg2" || name == "psycopg") {
      if (!args || !args.IsMap()) throw ConfigProblem(path.string() + ": database.args is missing");
      installation.postgres_conninfo = postgres_conninfo(args);
    } else {
      throw ConfigProblem(path.string() + ": database.name must be sqlite3 or psycopg2, not '" +
                          name + "'");
    }
    installation.provider_bucket = provider_bucket(root["media_storage_providers"]);
    return installation;
  } catch (const YAML::Exception& e) {
    throw ConfigProblem(path.string() + ": " + e.what());
  }
}

}  // namespace mxcd::synapse
