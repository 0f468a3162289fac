package proxy

// readOnlyFuncs are built-in functions that modify no data and no setting,
// by the names the parser gives them (EXTRACT is pg_catalog.extract, AT TIME
// ZONE pg_catalog.timezone, TRIM pg_catalog.btrim, ...). A query calling any
// other function may write: nextval, set_config, pg_advisory_lock, or a
// user's function that does anything. The list is closed on purpose: a
// function missing from it only makes a transaction pass through.
var readOnlyFuncs = setOf(
	// Aggregates.
	"count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp",
	"variance", "var_pop", "var_samp", "bool_and", "bool_or", "every", "bit_and",
	"bit_or", "bit_xor", "string_agg", "array_agg", "json_agg", "jsonb_agg",
	"json_object_agg", "jsonb_object_agg", "percentile_cont", "percentile_disc",
	"mode", "corr", "covar_pop", "covar_samp", "any_value",
	// Window functions.
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value",
	// Date and time.
	"now", "date_trunc", "date_part", "extract", "date_bin", "age", "make_date",
	"make_time", "make_timestamp", "make_timestamptz", "make_interval",
	"justify_days", "justify_hours", "justify_interval", "to_char", "to_date",
	"to_timestamp", "to_number", "timezone", "isfinite", "clock_timestamp",
	"statement_timestamp", "transaction_timestamp", "timeofday",
	// Numbers.
	"abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "mod", "power",
	"pow", "sqrt", "cbrt", "exp", "ln", "log", "log10", "div", "width_bucket",
	"pi", "degrees", "radians", "sin", "cos", "tan", "asin", "acos", "atan",
	"atan2", "gcd", "lcm", "factorial", "scale", "numeric", "int2", "int4",
	"int8", "float4", "float8",
	// Strings.
	"lower", "upper", "initcap", "length", "char_length", "character_length",
	"octet_length", "bit_length", "substr", "substring", "position", "strpos",
	"btrim", "ltrim", "rtrim", "replace", "translate", "concat", "concat_ws",
	"left", "right", "lpad", "rpad", "repeat", "reverse", "split_part",
	"starts_with", "format", "md5", "quote_ident", "quote_literal",
	"quote_nullable", "regexp_replace", "regexp_match", "regexp_matches",
	"regexp_split_to_array", "regexp_split_to_table", "regexp_like",
	"regexp_count", "regexp_substr", "ascii", "chr", "to_hex", "overlay",
	"string_to_array", "array_to_string", "encode", "decode", "convert_from",
	"convert_to", "normalize", "like_escape",
	// Arrays and sets.
	"array_length", "array_lower", "array_upper", "array_dims", "array_ndims",
	"cardinality", "unnest", "array_position", "array_positions", "array_cat",
	"array_append", "array_prepend", "array_remove", "array_replace",
	"generate_series", "generate_subscripts", "num_nulls", "num_nonnulls",
	// JSON.
	"to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object",
	"jsonb_build_object", "json_build_array", "jsonb_build_array",
	"json_extract_path", "jsonb_extract_path", "json_extract_path_text",
	"jsonb_extract_path_text", "json_array_length", "jsonb_array_length",
	"json_typeof", "jsonb_typeof", "json_each", "jsonb_each",
	"json_array_elements", "jsonb_array_elements", "json_object_keys",
	"jsonb_object_keys",
	// Session and catalog information, as BI tools ask for it.
	"current_setting", "current_database", "current_schema", "current_schemas",
	"version", "pg_backend_pid", "inet_server_addr", "inet_server_port",
	"pg_postmaster_start_time", "pg_conf_load_time", "pg_is_in_recovery",
	"pg_client_encoding", "pg_encoding_to_char", "pg_char_to_encoding",
	"format_type", "pg_typeof", "pg_column_size", "pg_collation_for",
	"pg_get_expr", "pg_get_userbyid", "pg_get_constraintdef",
	"pg_get_indexdef", "pg_get_viewdef", "pg_get_triggerdef",
	"pg_get_functiondef", "pg_get_function_arguments",
	"pg_get_function_result", "pg_get_function_identity_arguments",
	"pg_get_serial_sequence", "pg_get_partkeydef", "pg_get_keywords",
	"pg_table_is_visible", "pg_type_is_visible", "pg_function_is_visible",
	"pg_my_temp_schema", "pg_is_other_temp_schema", "obj_description",
	"col_description", "shobj_description", "has_table_privilege",
	"has_column_privilege", "has_schema_privilege", "has_database_privilege",
	"has_function_privilege", "has_sequence_privilege", "pg_has_role",
	"pg_relation_size", "pg_total_relation_size", "pg_table_size",
	"pg_indexes_size", "pg_database_size", "pg_size_pretty",
	"pg_tablespace_location", "to_regclass", "to_regtype", "to_regproc",
	"to_regnamespace", "pg_sleep",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
