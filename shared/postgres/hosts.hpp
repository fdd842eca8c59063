// The registered Postgres servers (sys_database_host): their SQL functions,
// where a new postgres database is placed, a server's sealed password, and
// its health (the last successful contact and the last failure).
//
// Placement: a region's registered hosts that are not drained, are healthy (no
// failure recorded since their last successful contact) and have room (their
// live databases, those not dropped, below their capacity) take new
// databases, the least loaded first. A region without any registered host is
// served by the server envdb runs on only when the setting
// local_server_regions names it; otherwise provisioning there is refused.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/store.hpp"
#include "postgres/statements.hpp"

namespace envdb::postgres {

// A registered server with its password opened. not_found, key_unavailable.
Server load_server(Host& host, const std::string& host_id);

// The server a new postgres database of `region` goes to: a registered host
// (its id), or nullopt for the server envdb runs on. invalid_parameter naming
// region when the region has no host and local_server_regions does not name
// it; conflict when it has hosts but none takes a new database (each host's
// reason in the message). In Postgres a host with a capacity is locked for
// the rest of the transaction, so concurrent placements cannot overfill it.
std::optional<std::string> place(Host& host, const std::string& region);

// retry_environment: where a failed database goes next. The current host
// while it can take it (not drained, healthy, not over capacity), else
// another host of the region that can; the current one when none can, and
// the server envdb runs on stays that server.
std::optional<std::string> place_again(Host& host, const std::string& region,
                                       const std::optional<std::string>& current);

// The worker's contact with a registered host: `error` empty when it worked.
// Written at most every 60 s while nothing changes, so a pass every few
// seconds does not rewrite the row each time.
void record_contact(Store& store, const std::string& host_id, const std::string& error);

// Associated data binding a host's sealed password to its row.
std::string host_aad(std::string_view host_id);

// This module's rows of the SQL function table (the host registry).
std::vector<api::Function> functions();

}  // namespace envdb::postgres
