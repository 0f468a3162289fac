package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// hbaTrustQuery lists the pg_hba.conf lines that let TCP connections in
// without a password, and the address the warehouse sees pgrollup connect
// from. pg_hba_file_rules is readable by superusers and roles granted it.
const hbaTrustQuery = `SELECT r.line_number, r.type, r.database::text, r.user_name::text,
  coalesce(r.address, ''), coalesce(r.netmask, ''), coalesce(host(inet_client_addr()), '')
FROM pg_catalog.pg_hba_file_rules r
WHERE r.auth_method = 'trust' AND r.error IS NULL AND r.type <> 'local'`

// hbaRule is one trust line of pg_hba.conf.
type hbaRule struct {
	line                    int
	typ, databases, users   string
	address, netmask, proxy string
}

// mayMatch reports whether the rule can apply to connections from proxy.
// Host names, samehost and samenet are taken to match: the warning errs on
// the side of being said.
func (r hbaRule) mayMatch() bool {
	ip := net.ParseIP(r.proxy)
	if ip == nil {
		return true
	}
	switch r.address {
	case "all", "samehost", "samenet", "":
		return true
	}
	addr := net.ParseIP(r.address)
	if addr == nil {
		return true // a host name
	}
	mask := net.IPMask(net.ParseIP(r.netmask))
	if v4 := net.ParseIP(r.netmask).To4(); v4 != nil && addr.To4() != nil {
		mask = net.IPMask(v4)
	}
	if addr.To4() != nil {
		addr, ip = addr.To4(), ip.To4()
		if ip == nil {
			return false
		}
	}
	if len(mask) != len(addr) {
		return addr.Equal(ip)
	}
	return addr.Mask(mask).Equal(ip.Mask(mask))
}

// warnTrustedAddress warns when the warehouse lets pgrollup's own address in
// without a password: whoever reaches pgrollup then logs in as those users,
// because pgrollup relays the login from its address (the classic proxy
// hazard). A warehouse that does not show its rules to the service account
// is not checked, and says so at debug level.
func warnTrustedAddress(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, hbaTrustQuery)
	if err != nil {
		log.Debug("pg_hba.conf not checked for trust lines (pg_hba_file_rules needs superuser or a grant)", "err", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var r hbaRule
		if err := rows.Scan(&r.line, &r.typ, &r.databases, &r.users, &r.address, &r.netmask, &r.proxy); err != nil {
			log.Debug("pg_hba.conf not checked for trust lines", "err", err)
			return
		}
		if !r.mayMatch() {
			continue
		}
		log.Warn("the warehouse trusts pgrollup's address without a password: anyone who reaches pgrollup logs in as these users; use scram-sha-256 for pgrollup's address",
			"pg_hba_line", r.line, "rule", strings.TrimSpace(fmt.Sprintf("%s %s %s %s %s trust", r.typ, strings.Trim(r.databases, "{}"), strings.Trim(r.users, "{}"), r.address, r.netmask)),
			"pgrollup_address", r.proxy)
	}
}
