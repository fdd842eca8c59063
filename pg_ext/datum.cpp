// The core's headers first: nlohmann-json before Postgres's snprintf macro.
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "surface/api.hpp"

#include "datum.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

#include <cstring>

#include "jsonb_build.hpp"
#include "pg_guard.hpp"

namespace envdb::pg {

namespace {

// Postgres epoch (2000-01-01) in Unix milliseconds.
constexpr int64_t kPostgresEpochMs = 946684800000LL;

// A finite timestamptz (microseconds since 2000) as the core's ISO text.
std::string iso_of(TimestampTz ts) {
  int64_t ms = ts / 1000;
  if (ts % 1000 < 0) --ms;  // floor for instants before 2000
  return iso_from_ms(ms + kPostgresEpochMs);
}

// The bytes of a text, varchar or bytea Datum, detoasted.
std::string varlena_bytes(Datum d) {
  struct varlena* v =
      guarded([&] { return pg_detoast_datum_packed((struct varlena*)DatumGetPointer(d)); });
  return std::string(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

}  // namespace

Oid param_type(const Value& v) {
  if (std::holds_alternative<int64_t>(v)) return INT8OID;
  if (std::holds_alternative<bool>(v)) return BOOLOID;
  if (std::holds_alternative<double>(v)) return FLOAT8OID;
  if (std::holds_alternative<Blob>(v)) return BYTEAOID;
  return TEXTOID;  // text, and NULL (the core casts where the column is not text)
}

Datum param_datum(const Value& v) {
  if (auto iv = std::get_if<int64_t>(&v)) return Int64GetDatum(*iv);
  if (auto b = std::get_if<bool>(&v)) return BoolGetDatum(*b);
  if (auto dv = std::get_if<double>(&v)) return Float8GetDatum(*dv);
  const std::string& bytes = std::holds_alternative<Blob>(v) ? std::get<Blob>(v).bytes
                                                             : std::get<std::string>(v);
  const char* data = bytes.data();
  const size_t len = bytes.size();
  struct varlena* var = guarded([&] {
    auto* p = static_cast<struct varlena*>(palloc(len + VARHDRSZ));
    SET_VARSIZE(p, len + VARHDRSZ);
    memcpy(VARDATA(p), data, len);
    return p;
  });
  return PointerGetDatum(var);
}

Value column_value(Datum d, Oid type) {
  switch (type) {
    case BOOLOID: return static_cast<bool>(DatumGetBool(d));
    case INT2OID: return static_cast<int64_t>(DatumGetInt16(d));
    case INT4OID: return static_cast<int64_t>(DatumGetInt32(d));
    case INT8OID: return static_cast<int64_t>(DatumGetInt64(d));
    case FLOAT8OID: return DatumGetFloat8(d);
    case TIMESTAMPTZOID: {
      const TimestampTz ts = DatumGetTimestampTz(d);
      if (TIMESTAMP_NOT_FINITE(ts)) return std::string(ts < 0 ? "-infinity" : "infinity");
      return iso_of(ts);
    }
    case BYTEAOID: return Blob{varlena_bytes(d)};
    case TEXTOID:
    case VARCHAROID: return varlena_bytes(d);
    case JSONBOID: return jsonb_text(d);
    default: {
      // The type's own text output (what SPI_getvalue prints).
      char* text = guarded([&] {
        Oid output = InvalidOid;
        bool varlena = false;
        getTypeOutputInfo(type, &output, &varlena);
        return OidOutputFunctionCall(output, d);
      });
      return std::string(text ? text : "");
    }
  }
}

Value arg_value(Datum d, api::Type type) {
  switch (type) {
    case api::Type::text: return varlena_bytes(d);
    case api::Type::json: return jsonb_text(d);
    case api::Type::integer: return static_cast<int64_t>(DatumGetInt64(d));
    case api::Type::boolean: return static_cast<bool>(DatumGetBool(d));
    case api::Type::interval: {
      const Interval* iv = DatumGetIntervalP(d);
      return static_cast<int64_t>(
          iv->time / USECS_PER_SEC +
          (static_cast<int64_t>(iv->day) + static_cast<int64_t>(iv->month) * DAYS_PER_MONTH) *
              SECS_PER_DAY);
    }
    case api::Type::timestamp: {
      const TimestampTz ts = DatumGetTimestampTz(d);
      if (TIMESTAMP_NOT_FINITE(ts))
        throw Error(Code::invalid_parameter, "timestamps must be finite");
      return iso_of(ts);
    }
  }
  return null_value();
}

std::string jsonb_text(Datum d) {
  char* text = guarded([&] {
    Jsonb* jb = DatumGetJsonbP(d);
    return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
  });
  return std::string(text);
}

Datum result_datum(const Value& v, api::Type type, bool* is_null) {
  *is_null = false;
  if (envdb::is_null(v)) {
    *is_null = true;
    return (Datum)0;
  }
  switch (type) {
    case api::Type::boolean: {
      if (auto b = std::get_if<bool>(&v)) return BoolGetDatum(*b);
      return BoolGetDatum(std::get<int64_t>(v) != 0);
    }
    case api::Type::integer: return Int64GetDatum(std::get<int64_t>(v));
    case api::Type::json: {
      const std::string& json = std::get<std::string>(v);
      if (Jsonb* jb = jsonb_from_text(json)) return JsonbPGetDatum(jb);
      const char* text = json.c_str();
      return guarded([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(text)); });
    }
    default: {
      const std::string& s = std::get<std::string>(v);
      const char* data = s.data();
      const int len = static_cast<int>(s.size());
      return guarded([&] { return PointerGetDatum(cstring_to_text_with_len(data, len)); });
    }
  }
}

}  // namespace envdb::pg
