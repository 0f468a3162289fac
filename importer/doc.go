// Package importer translates the pre-aggregations other tools declare into
// pgrollup's tables and rollups: Cube's YAML data models (Cube) and dbt
// schema.yml files with Lightdash metadata (Lightdash). It reads the files
// as YAML nodes so that every error and every item it cannot translate is
// reported with its file and line, and it prints a YAML document with only
// the keys tables and rollups, which config loads (Result.YAML). It does no
// I/O: the pgrollup import command reads the files and prints the result.
package importer
