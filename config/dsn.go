package config

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// kvPassword finds password=... in a keyword/value connection string, quoted or not.
var kvPassword = regexp.MustCompile(`(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN returns dsn with its password replaced by xxxxx, for logs and status output.
// A URL that does not parse is replaced whole, since its password cannot be located safely.
func RedactDSN(dsn string) string {
	scheme, rest, isURL := strings.Cut(dsn, "://")
	if !isURL {
		return kvPassword.ReplaceAllString(dsn, "password="+redactedMark)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return scheme + "://" + redactedMark
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redactedMark)
	} else if strings.Contains(rest, "password=") {
		q := u.Query()
		q.Set("password", redactedMark)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dsnSecrets returns every spelling of the DSN's password that could end up in a message:
// as pgconn decodes it and as written (percent-encoded, quoted or escaped). It works on
// DSNs that do not parse too, because those are exactly the ones that produce errors.
func dsnSecrets(dsn string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		add(cfg.Password)
	}
	_, rest, isURL := strings.Cut(dsn, "://")
	if !isURL {
		for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
			add(m[1])
			add(strings.Trim(m[1], "'"))
		}
		return out
	}
	authority, query, _ := strings.Cut(rest, "?")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if _, pw, has := strings.Cut(authority[:at], ":"); has {
			add(pw)
			if dec, err := url.PathUnescape(pw); err == nil {
				add(dec)
			}
		}
	}
	values, _ := url.ParseQuery(query) // keeps what parsed even when some pair does not
	for _, pw := range values["password"] {
		add(pw)
		add(url.QueryEscape(pw))
	}
	return out
}
