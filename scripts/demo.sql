-- envdb in the sqlite3 shell: a control plane in one file.
.load @ENVDB@
.mode line
SELECT envdb_version() AS version;
SELECT envdb_init() AS init;
SELECT envdb_config('sqlite_data_dir', 'environments') AS sqlite_data_dir;
