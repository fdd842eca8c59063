// A libpq session on a registered database host, for check() (the server
// facts and their repairs). Plain C++ and libpq: no Postgres server header,
// no SPI, so it may run in any backend.
#pragma once
#include <memory>

#include "postgres/provisioner.hpp"

namespace envdb::pg {

// Connects to the host's maintenance database as its username (password
// opened by the caller); envdb::Error (internal) with libpq's first line when
// it cannot.
std::unique_ptr<pgdriver::ServerSession> connect_registered_server(const pgdriver::Server& server);

}  // namespace envdb::pg
