// Stands first on the core's include path (CMake, envdb_core_objects), so a
// core file that includes <sqlite3.h> anywhere, before or after other headers,
// stops the build: shared/ is the host-neutral core. Host files never see it.
#error "shared/ is the host-neutral core: do not include sqlite3.h here"
