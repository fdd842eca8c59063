// Every conversion between a Postgres Datum and an envdb::Value, for both
// directions the host moves values: SQL function arguments and results
// (envdb_pg.cpp) and SPI parameters and result columns (spi_store.cpp).
// jsonb travels as its text, bytea as a Blob, timestamptz as an ISO 8601
// string in UTC with milliseconds (the core's clock format).
#pragma once

extern "C" {
#include "postgres.h"
}

#include <string>

#include "core/value.hpp"

namespace envdb::api {
// The function table's argument and result types (api.hpp). Declared here so
// that this header, included after the Postgres headers, pulls in no
// nlohmann-json: its std::snprintf would meet Postgres's snprintf macro.
enum class Type;
}  // namespace envdb::api

namespace envdb::pg {

// --- SPI: a bound parameter and a result column.

// The type a parameter is sent as: bigint, boolean, double precision, bytea,
// or text (also for NULL; the core casts where a column is not text).
Oid param_type(const Value& v);
// The Datum of a non-NULL parameter; text and bytea are palloc'd in the
// current memory context.
Datum param_datum(const Value& v);
// A non-NULL column of type `type`: integers, booleans, doubles, text, bytea
// (Blob), jsonb (its text), timestamptz (ISO, or "infinity"/"-infinity");
// any other type is its text output.
Value column_value(Datum d, Oid type);

// --- A SQL function call: arguments and result.

// A non-NULL argument of the function table's type. A timestamp that is not
// finite is invalid_parameter.
Value arg_value(Datum d, api::Type type);
// The jsonb argument of a request form, as text.
std::string jsonb_text(Datum d);
// The function's result in the caller's memory context; *is_null for NULL.
Datum result_datum(const Value& v, api::Type type, bool* is_null);

}  // namespace envdb::pg
