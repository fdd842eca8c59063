// Finding an environment by name instead of id: the hostnames a router
// resolves (a request's Host header), and an environment by its
// organization's slug and its own.
//
//   add_environment_hostname(environment_id, hostname)  -> {hostname: {...}}
//   remove_environment_hostname(hostname)               -> {hostname: {...}}
//   resolve_hostname(hostname [, scope = 'readwrite'])  -> resolve_environment's answer
//   find_environment(organization_slug, environment_slug) -> get_environment's answer
//
// A hostname is stored normalized (lower case, without a final dot), is a DNS
// name, and names one environment. resolve_hostname maps it to the
// environment's id and then goes through resolve::resolve, so its answer, its
// role rules and any caching are resolve_environment's. Under a user context,
// a hostname of another environment is not_found, worded exactly as an
// unknown one: a router's user learns nothing about other tenants.
//
// Archiving keeps an environment's hostnames (resolving one answers conflict,
// as resolve_environment does, and an operator who reverses the archive keeps
// them); dropping its database releases them (teardown::mark_dropped), so
// the names can be given to another environment. remove_environment_hostname
// frees one at any time.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/store.hpp"

namespace envdb::hostnames {

// The stored form of a hostname: lower case, one final dot removed;
// invalid_parameter naming `field` when it is not a DNS name (dot-separated
// labels of letters, digits and inner hyphens, at most 63 characters each and
// 253 in all; no port, no scheme, no path).
std::string normalize(const std::string& field, const std::string& hostname);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::hostnames
