#include "surface/api.hpp"

#include "catalog/dataplane.hpp"
#include "catalog/events.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/json_bounds.hpp"
#include "jobs/outbox.hpp"
#include "postgres/hosts.hpp"
#include "postgres/login_lookup.hpp"
#include "secrets/credentials.hpp"
#include "surface/invariants.hpp"
#include "surface/setup.hpp"
#include "tenancy/backups.hpp"
#include "tenancy/context.hpp"
#include "tenancy/copy.hpp"
#include "tenancy/environments.hpp"
#include "tenancy/hostnames.hpp"
#include "tenancy/members.hpp"
#include "tenancy/move.hpp"
#include "tenancy/policies.hpp"
#include "tenancy/resolve.hpp"
#include "tenancy/teardown.hpp"
#include "tenancy/usage.hpp"

namespace envdb::api {

namespace {

using T = Type;

void append(std::vector<Function>& all, std::vector<Function> more) {
  for (auto& f : more) all.push_back(std::move(f));
}

// The whole SQL surface, module by module; each module owns its rows.
std::vector<Function> build() {
  std::vector<Function> all = setup::functions();
  append(all, settings::functions());
  append(all, environments::functions());
  append(all, teardown::functions());
  append(all, members::functions());
  append(all, credentials::functions());
  append(all, outbox::functions());
  append(all, postgres::functions());
  append(all, context::functions());
  append(all, resolve::functions());
  append(all, dataplane::functions());
  append(all, login_lookup::functions());
  append(all, invariants::functions());
  append(all, hostnames::functions());
  append(all, events::functions());
  append(all, policies::functions());
  append(all, usage::functions());
  append(all, copy::functions());
  append(all, backups::functions());
  append(all, move::functions());
  return all;
}
}  // namespace

const std::vector<Function>& functions() {
  static const std::vector<Function> table = build();
  return table;
}

const Function* find(const std::string& name) {
  for (auto& f : functions())
    if (name == f.name) return &f;
  return nullptr;
}

bool available_in(const Function& fn, const std::string& host) {
  if ((fn.flags & kSqliteOnly) && host != "sqlite") return false;
  if ((fn.flags & kPostgresOnly) && host != "postgres") return false;
  return true;
}

}  // namespace envdb::api
