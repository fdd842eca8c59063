// The registered Postgres servers (sys_database_host): their SQL functions,
// where a new postgres database is placed, and a server's sealed password.
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

// The server a new postgres database of `region` goes to: the registered
// host of that region holding the fewest databases (by name on a tie), or
// nullopt for the server envdb runs on.
std::optional<std::string> place(Store& store, const std::string& region);

// Associated data binding a host's sealed password to its row.
std::string host_aad(std::string_view host_id);

// This module's rows of the SQL function table (the host registry).
std::vector<api::Function> functions();

}  // namespace envdb::postgres
