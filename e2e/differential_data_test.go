package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The differential suite's dataset. It is generated in Go from a fixed seed,
// so every run (and every engineer) compares the same rows, and it is shaped
// after the traps of DESIGN.md §4: NULLs in every measured column and in the
// dimensions, negative and zero amounts, numeric(12,2) values near its limit,
// bigint values whose sum overflows int64, float specials (NaN, infinity,
// -0), text that sorts differently by bytes than by letters, orphan and NULL
// foreign keys, and timestamps packed around the DST changes of Europe and
// the US, on midnights of the zones the sessions use, and on month edges.

const (
	diffDB       = "e2e_diff"
	diffDataSeed = 20240331 // the seed of the rows; changing it changes every expected answer
)

// diffSchema mirrors the schema of rewrite's own tests (rewrite/helpers_test.go
// testTypes and testCatalog), plus `big` and `segment`, so that their
// statements run here unchanged.
const diffSchema = `
CREATE TABLE customers (
	id int PRIMARY KEY,
	country text,
	segment text,
	name text
);
CREATE TABLE stores (
	id int PRIMARY KEY,
	region text
);
CREATE TABLE products (id int PRIMARY KEY);
CREATE TABLE orders (
	id int PRIMARY KEY,
	status text,
	amount numeric(12,2),
	price float8,
	quantity int,
	big bigint,
	customer_id int,
	store_id int,
	created_at timestamptz NOT NULL,
	order_date date,
	local_ts timestamp,
	note text
);
`

// diffTickets is a second fact table whose joined table has a column of the
// same name as a fact column (status): a rollup over it must still build and
// answer.
const diffTickets = `
CREATE TABLE accounts (id int PRIMARY KEY, status text, tier text);
CREATE TABLE tickets (id int PRIMARY KEY, status text, account_id int, opened_at timestamptz NOT NULL);
INSERT INTO accounts SELECT g, (ARRAY['open', 'closed'])[1 + g % 2], (ARRAY['gold', 'silver', NULL])[1 + g % 3] FROM generate_series(1, 20) g;
INSERT INTO tickets SELECT g, (ARRAY['open', 'solved', 'closed', NULL])[1 + g % 4], 1 + g % 23,
	timestamptz '2024-01-01 00:00:00+00' + g * interval '97 minutes' FROM generate_series(1, 2000) g;
`

// diffDSTChanges are the instants (UTC) at which Europe/Berlin or America/New_York
// change their offset within the data's range.
var diffDSTChanges = []time.Time{
	time.Date(2023, 3, 12, 7, 0, 0, 0, time.UTC),  // US spring forward
	time.Date(2023, 3, 26, 1, 0, 0, 0, time.UTC),  // EU spring forward
	time.Date(2023, 10, 29, 1, 0, 0, 0, time.UTC), // EU fall back
	time.Date(2023, 11, 5, 6, 0, 0, 0, time.UTC),  // US fall back
	time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC),
	time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC),
	time.Date(2024, 10, 27, 1, 0, 0, 0, time.UTC),
	time.Date(2024, 11, 3, 6, 0, 0, 0, time.UTC),
}

var (
	diffDataStart = time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)
	diffDataEnd   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

// diffStatuses are weighted; 'Paid' sorts before 'cancelled' bytewise but
// not alphabetically, 'on hold' has a space, 'café' a multi-byte letter.
var diffStatuses = []struct {
	v string
	w int
}{
	{"paid", 34}, {"shipped", 19}, {"new", 15}, {"cancelled", 12}, {"refunded", 8},
	{"", 5}, // NULL
	{"Paid", 3}, {"on hold", 2}, {"café", 2},
}

var diffCountries = []string{"DE", "FR", "US", "IN", "GB", ""}
var diffSegments = []string{"smb", "mid", "enterprise", ""}
var diffRegions = []string{"north", "south", "east", ""}

type diffRNG struct{ *rand.Rand }

func (r diffRNG) pct(p int) bool { return r.IntN(100) < p }

func (r diffRNG) pick(vals []string) string { return vals[r.IntN(len(vals))] }

// diffCSVField renders one CSV field; "" is NULL (COPY's CSV default), so a
// non-NULL empty string would need quoting, which this data never has.
func diffCSVField(b *bytes.Buffer, s string, last bool) {
	if s != "" && (bytes.ContainsAny([]byte(s), ",\"\n")) {
		s = `"` + string(bytes.ReplaceAll([]byte(s), []byte(`"`), []byte(`""`))) + `"`
	}
	b.WriteString(s)
	if last {
		b.WriteByte('\n')
	} else {
		b.WriteByte(',')
	}
}

// diffInstant picks a created_at: mostly uniform over the range, a fifth
// within a day and a half of a DST change, and a tenth exactly on an edge
// that some zone's bucket starts or ends at.
func diffInstant(r diffRNG, zones []*time.Location) time.Time {
	span := diffDataEnd.Sub(diffDataStart)
	switch k := r.IntN(100); {
	case k < 70:
		t := diffDataStart.Add(time.Duration(r.Int64N(int64(span))))
		if r.pct(50) {
			t = t.Truncate(time.Second)
		}
		return t
	case k < 90:
		c := diffDSTChanges[r.IntN(len(diffDSTChanges))]
		return c.Add(time.Duration(r.Int64N(int64(72*time.Hour))) - 36*time.Hour).Truncate(time.Minute)
	default:
		// Midnight, month start or a whole hour in one of the zones, or a
		// microsecond before it.
		loc := zones[r.IntN(len(zones))]
		day := diffDataStart.Add(time.Duration(r.IntN(int(span/(24*time.Hour)))) * 24 * time.Hour)
		y, m, d := day.Date()
		var t time.Time
		switch r.IntN(3) {
		case 0:
			t = time.Date(y, m, d, 0, 0, 0, 0, loc)
		case 1:
			t = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		default:
			t = time.Date(y, m, d, r.IntN(24), 0, 0, 0, loc)
		}
		if r.pct(30) {
			t = t.Add(-time.Microsecond)
		}
		if t.Before(diffDataStart) {
			t = diffDataStart
		}
		if !t.Before(diffDataEnd) {
			t = diffDataEnd.Add(-time.Second)
		}
		return t
	}
}

func diffAmount(r diffRNG) string {
	switch k := r.IntN(100); {
	case k < 4:
		return ""
	case k < 7:
		return "0.00"
	case k < 15:
		return fmt.Sprintf("-%d.%02d", r.IntN(500), r.IntN(100))
	case k < 16:
		// Near numeric(12,2)'s limit: sums need more digits than the column.
		return fmt.Sprintf("%d.%02d", 9_000_000_000+r.IntN(999_999_999), r.IntN(100))
	default:
		return fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
	}
}

func diffPrice(r diffRNG, status string) string {
	switch k := r.IntN(1000); {
	case k < 50:
		return ""
	case k < 60:
		return "0"
	case k < 62:
		return "-0"
	case k < 80:
		return "-" + strconv.FormatFloat(float64(r.IntN(100000))/100, 'g', -1, 64)
	case k < 90 && status == "refunded":
		return "NaN" // about a dozen rows: their groups' float sums are NaN
	case k < 85 && status == "on hold":
		return "Infinity"
	default:
		// Two decimals: not exact in binary, so sums differ in their last
		// bits when added in another order (DESIGN §4 allows it).
		return strconv.FormatFloat(float64(r.IntN(1_000_000))/100, 'g', -1, 64)
	}
}

func diffQuantity(r diffRNG) string {
	switch k := r.IntN(1000); {
	case k < 30:
		return ""
	case k < 60:
		return "0"
	case k < 90:
		return strconv.Itoa(-1 - r.IntN(3))
	case k < 92:
		return "2147483647"
	default:
		return strconv.Itoa(1 + r.IntN(10))
	}
}

func diffBig(r diffRNG) string {
	switch k := r.IntN(100); {
	case k < 5:
		return ""
	case k < 25:
		// Sums of these overflow int64: SUM(bigint) is numeric in Postgres.
		v := r.Int64N(4_000_000_000_000_000_000)
		if r.pct(40) {
			v = -v
		}
		return strconv.FormatInt(v, 10)
	default:
		return strconv.FormatInt(r.Int64N(2_000_000)-1_000_000, 10)
	}
}

// diffData returns the CSV of customers, stores and orders.
func diffData(orders int) (customers, stores, ordersCSV []byte) {
	r := diffRNG{rand.New(rand.NewPCG(diffDataSeed, 1))}
	berlin := diffZone("Europe/Berlin")
	newYork := diffZone("America/New_York")
	kolkata := diffZone("Asia/Kolkata")
	zones := []*time.Location{time.UTC, berlin, newYork, kolkata}

	var cb bytes.Buffer
	for id := 1; id <= 500; id++ {
		diffCSVField(&cb, strconv.Itoa(id), false)
		diffCSVField(&cb, r.pick(diffCountries), false)
		diffCSVField(&cb, r.pick(diffSegments), false)
		diffCSVField(&cb, "customer "+strconv.Itoa(id), true)
	}
	var sb bytes.Buffer
	for id := 1; id <= 8; id++ {
		diffCSVField(&sb, strconv.Itoa(id), false)
		diffCSVField(&sb, r.pick(diffRegions), true)
	}
	total := 0
	for _, s := range diffStatuses {
		total += s.w
	}
	var ob bytes.Buffer
	for id := 1; id <= orders; id++ {
		k := r.IntN(total)
		status := ""
		for _, s := range diffStatuses {
			if k < s.w {
				status = s.v
				break
			}
			k -= s.w
		}
		at := diffInstant(r, zones)
		cust := ""
		switch k := r.IntN(100); {
		case k < 3:
		case k < 8:
			cust = strconv.Itoa(501 + r.IntN(40)) // orphan: no such customer
		default:
			cust = strconv.Itoa(1 + r.IntN(500))
		}
		store := ""
		if !r.pct(4) {
			store = strconv.Itoa(1 + r.IntN(10)) // 9 and 10 are orphans
		}
		orderDate := at.In(newYork).Format("2006-01-02")
		if r.pct(3) {
			orderDate = ""
		}
		local := at.In(berlin).Format("2006-01-02 15:04:05.999999")
		switch {
		case r.pct(4):
			local = ""
		case r.pct(3):
			local = at.Add(time.Duration(r.IntN(48))*time.Hour - 24*time.Hour).In(berlin).Format("2006-01-02 15:04:05")
		}
		note := ""
		if r.pct(30) {
			note = "note " + strconv.Itoa(r.IntN(50))
		}
		diffCSVField(&ob, strconv.Itoa(id), false)
		diffCSVField(&ob, status, false)
		diffCSVField(&ob, diffAmount(r), false)
		diffCSVField(&ob, diffPrice(r, status), false)
		diffCSVField(&ob, diffQuantity(r), false)
		diffCSVField(&ob, diffBig(r), false)
		diffCSVField(&ob, cust, false)
		diffCSVField(&ob, store, false)
		diffCSVField(&ob, at.UTC().Format("2006-01-02 15:04:05.999999+00"), false)
		diffCSVField(&ob, orderDate, false)
		diffCSVField(&ob, local, false)
		diffCSVField(&ob, note, true)
	}
	return cb.Bytes(), sb.Bytes(), ob.Bytes()
}

func diffZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// loadDiffData creates the tables in conn's database and copies the rows in.
func loadDiffData(ctx context.Context, conn *pgx.Conn, orders int) error {
	if _, err := conn.Exec(ctx, diffSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	customers, stores, ordersCSV := diffData(orders)
	for _, c := range []struct {
		table string
		data  []byte
	}{{"customers", customers}, {"stores", stores}, {"orders", ordersCSV}} {
		if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(c.data), "COPY "+c.table+" FROM STDIN (FORMAT csv)"); err != nil {
			return fmt.Errorf("copy %s: %w", c.table, err)
		}
	}
	if _, err := conn.Exec(ctx, diffTickets); err != nil {
		return fmt.Errorf("tickets: %w", err)
	}
	_, err := conn.Exec(ctx, "ANALYZE customers, stores, products, orders, accounts, tickets")
	return err
}
