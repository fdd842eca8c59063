#include "postgres/statements.hpp"
// A libpq session on a registered database host, for check() (the server
// facts and their repairs). Plain C++ and libpq: no Postgres server header,
// no SPI, so it may run in any backend.
#pragma once
#include <memory>


namespace envdb::pg {

// Connects to the host's maintenance database as its username (password
// opened by the caller); envdb::Error (internal) with libpq's first line when
// it cannot.
std::unique_ptr<postgres::ServerSession> connect_registered_server(const postgres::Server& server);

}  // namespace envdb::pg
