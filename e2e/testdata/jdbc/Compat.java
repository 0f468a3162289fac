import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

/**
 * pgjdbc compatibility workload for pgrollup's e2e suite. It prints a canonical
 * text of everything it observes; the Go test runs it once against Postgres and
 * once through pgrollup and requires the same text. Usage:
 * java -cp postgresql.jar:. Compat JDBC_URL USER PASSWORD
 *
 * It exercises what Metabase and Tableau depend on: server-side prepared
 * statements after prepareThreshold (5) executions with binary transfer,
 * fetchSize with autocommit off (named portals, PortalSuspended), setMaxRows,
 * DatabaseMetaData as Metabase's sync uses it, and Statement.cancel().
 */
public class Compat {
    static void p(String s) {
        System.out.println(s);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "disable");
        props.setProperty("ApplicationName", "e2e-jdbc");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            section("connection");
            p("valid=" + c.isValid(5));
            p("autocommit=" + c.getAutoCommit() + " isolation=" + c.getTransactionIsolation() + " readonly=" + c.isReadOnly());
            query(c, "SELECT current_user, current_setting('application_name'), current_setting('DateStyle'), current_setting('extra_float_digits'), current_setting('TimeZone')");
            metadata(c);
            prepared(c);
            types(c);
            fetchSize(c);
            maxRows(c);
            errors(c);
            batch(c);
            cancel(args[0], props, c);
            section("end");
            p("valid=" + c.isValid(5));
        }
    }

    static void section(String name) {
        p("== " + name);
    }

    static String v(Object o) {
        if (o == null) {
            return "NULL";
        }
        if (o instanceof byte[]) {
            StringBuilder sb = new StringBuilder("bytes:");
            for (byte b : (byte[]) o) {
                sb.append(String.format("%02x", b));
            }
            return sb.toString();
        }
        return o.getClass().getSimpleName() + ":" + o;
    }

    static void printResultSet(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        int n = md.getColumnCount();
        StringBuilder head = new StringBuilder("cols");
        for (int i = 1; i <= n; i++) {
            head.append(" | ").append(md.getColumnLabel(i)).append(' ').append(md.getColumnTypeName(i))
                .append('/').append(md.getColumnType(i)).append(" p=").append(md.getPrecision(i))
                .append(" s=").append(md.getScale(i)).append(" class=").append(md.getColumnClassName(i));
        }
        p(head.toString());
        int rows = 0;
        while (rs.next()) {
            rows++;
            StringBuilder sb = new StringBuilder("row");
            for (int i = 1; i <= n; i++) {
                Object o = rs.getObject(i);
                // getString of a binary-transferred bytea is byte[].toString(), an identity hash.
                String str = o instanceof byte[] ? "(bytes)" : rs.getString(i);
                sb.append(" | ").append(v(o)).append(" str=").append(str);
            }
            p(sb.toString());
        }
        p("rows=" + rows);
    }

    static void query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            printResultSet(rs);
        }
    }

    static void printMeta(ResultSet rs, String... cols) throws SQLException {
        while (rs.next()) {
            StringBuilder sb = new StringBuilder();
            for (String col : cols) {
                sb.append(col).append('=').append(rs.getString(col)).append(' ');
            }
            p(sb.toString().trim());
        }
        rs.close();
    }

    /** What Metabase's sync asks: schemas, tables, columns, keys. */
    static void metadata(Connection c) throws SQLException {
        section("metadata");
        DatabaseMetaData md = c.getMetaData();
        p("product=" + md.getDatabaseProductName() + " version=" + md.getDatabaseProductVersion()
            + " major=" + md.getDatabaseMajorVersion() + " quote=" + md.getIdentifierQuoteString());
        printMeta(md.getSchemas(), "TABLE_SCHEM");
        printMeta(md.getTables(null, "jdbc", "%", new String[] {"TABLE", "PARTITIONED TABLE", "VIEW", "FOREIGN TABLE", "MATERIALIZED VIEW"}),
            "TABLE_CAT", "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS");
        printMeta(md.getColumns(null, "jdbc", "%", "%"), "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME",
            "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "COLUMN_DEF", "ORDINAL_POSITION", "IS_NULLABLE", "IS_AUTOINCREMENT", "REMARKS");
        printMeta(md.getPrimaryKeys(null, "jdbc", "orders"), "TABLE_NAME", "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
        printMeta(md.getImportedKeys(null, "jdbc", "orders"), "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_NAME", "FKCOLUMN_NAME", "FK_NAME");
        printMeta(md.getIndexInfo(null, "jdbc", "orders", false, true), "INDEX_NAME", "COLUMN_NAME", "NON_UNIQUE");
    }

    /** More than prepareThreshold executions: the driver switches to a named server-side statement and binary results. */
    static void prepared(Connection c) throws SQLException {
        section("prepared");
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT id, customer_id, amount, status, created_at, note FROM jdbc.orders WHERE id = ? OR amount > ? ORDER BY id LIMIT 3")) {
            for (int i = 1; i <= 9; i++) {
                ps.setInt(1, i);
                ps.setBigDecimal(2, new BigDecimal("4990.5"));
                try (ResultSet rs = ps.executeQuery()) {
                    printResultSet(rs);
                }
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*), sum(amount) FROM jdbc.orders WHERE created_at >= ? AND status = ?")) {
            for (int i = 0; i < 7; i++) {
                ps.setTimestamp(1, Timestamp.from(Instant.parse("2024-01-01T00:00:00Z").plusSeconds(86400L * i)));
                ps.setString(2, i % 2 == 0 ? "paid" : "new");
                try (ResultSet rs = ps.executeQuery()) {
                    printResultSet(rs);
                }
            }
        }
        // The server-side statements the driver created on this session.
        query(c, "SELECT name, statement, parameter_types::text FROM pg_prepared_statements ORDER BY name");
    }

    static void types(Connection c) throws SQLException {
        section("types");
        try (PreparedStatement ps = c.prepareStatement("SELECT * FROM public.types WHERE id <= ? ORDER BY id")) {
            for (int i = 0; i < 7; i++) { // the last runs use binary transfer
                ps.setInt(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    if (i == 0 || i == 6) {
                        printResultSet(rs);
                        ResultSetMetaData md = rs.getMetaData();
                        for (int col = 1; col <= md.getColumnCount(); col++) {
                            p("meta " + md.getColumnName(col) + " table=" + md.getTableName(col) + " schema=" + md.getSchemaName(col)
                                + " nullable=" + md.isNullable(col) + " auto=" + md.isAutoIncrement(col));
                        }
                    }
                }
            }
        }
    }

    /** fetchSize with autocommit off: a named portal fetched 10 rows at a time. */
    static void fetchSize(Connection c) throws SQLException {
        section("fetchSize");
        c.setAutoCommit(false);
        try (Statement st = c.createStatement()) {
            st.setFetchSize(10);
            try (ResultSet rs = st.executeQuery("SELECT g, md5(g::text) AS h FROM generate_series(1, 100) g")) {
                printResultSet(rs);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT id, amount FROM jdbc.orders WHERE id > ? ORDER BY id")) {
            ps.setFetchSize(10);
            for (int i = 0; i < 6; i++) {
                ps.setInt(1, 50 + i);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        n++;
                    }
                    p("prepared fetch rows=" + n);
                }
            }
        }
        c.commit();
        c.setAutoCommit(true);
    }

    /** setMaxRows becomes Execute's row limit. */
    static void maxRows(Connection c) throws SQLException {
        section("maxRows");
        try (Statement st = c.createStatement()) {
            st.setMaxRows(7);
            try (ResultSet rs = st.executeQuery("SELECT g FROM generate_series(1, 100) g")) {
                printResultSet(rs);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT id FROM jdbc.orders ORDER BY id")) {
            ps.setMaxRows(3);
            for (int i = 0; i < 6; i++) {
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        n++;
                    }
                    p("maxRows prepared rows=" + n);
                }
            }
        }
    }

    static void printError(String label, SQLException e) {
        p(label + ": state=" + e.getSQLState() + " message=" + e.getMessage());
    }

    static void errors(Connection c) throws SQLException {
        section("errors");
        String[] bad = {
            "SELECT 1/0",
            "SELECT nosuch FROM jdbc.orders",
            "SELEC 1",
            "INSERT INTO jdbc.customers (id, name, country) VALUES (1, 'dup', 'XX')",
        };
        for (String sql : bad) {
            try (Statement st = c.createStatement()) {
                st.execute(sql);
                p("no error for " + sql);
            } catch (SQLException e) {
                printError(sql, e);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::int")) {
            ps.setString(1, "not a number");
            ps.executeQuery();
        } catch (SQLException e) {
            printError("bad parameter", e);
        }
        c.setAutoCommit(false);
        try (Statement st = c.createStatement()) {
            try {
                st.execute("SELECT 1/0");
            } catch (SQLException e) {
                printError("in transaction", e);
            }
            try {
                st.execute("SELECT 1");
            } catch (SQLException e) {
                printError("after error in transaction", e);
            }
        }
        c.rollback();
        c.setAutoCommit(true);
        query(c, "SELECT 'recovered' AS status");
    }

    static void batch(Connection c) throws SQLException {
        section("batch");
        try (Statement st = c.createStatement()) {
            st.execute("CREATE TEMP TABLE jb (k int PRIMARY KEY, v text)");
        }
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO jb (k, v) VALUES (?, ?)")) {
            for (int i = 0; i < 20; i++) {
                ps.setInt(1, i);
                ps.setString(2, "v" + i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            p("batch counts=" + java.util.Arrays.toString(counts));
            ps.setInt(1, 100);
            ps.setString(2, "ok");
            ps.addBatch();
            ps.setInt(1, 5);
            ps.setString(2, "duplicate");
            ps.addBatch();
            ps.executeBatch();
        } catch (SQLException e) {
            printError("batch", e);
            if (e.getNextException() != null) {
                printError("batch next", e.getNextException());
            }
        }
        query(c, "SELECT count(*), max(k) FROM jb");
    }

    /** Statement.cancel() from another thread while pg_sleep(30) runs. */
    static void cancel(String url, Properties props, Connection c) throws Exception {
        section("cancel");
        Statement st = c.createStatement();
        AtomicReference<Exception> cancelErr = new AtomicReference<>();
        Thread canceller = new Thread(() -> {
            try (Connection watcher = DriverManager.getConnection(url, props);
                 PreparedStatement ps = watcher.prepareStatement(
                     "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")) {
                long deadline = System.currentTimeMillis() + 10000;
                while (System.currentTimeMillis() < deadline) {
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        if (rs.getInt(1) > 0) {
                            st.cancel();
                            return;
                        }
                    }
                    Thread.sleep(20);
                }
                throw new IllegalStateException("pg_sleep(30) never showed up in pg_stat_activity");
            } catch (Exception e) {
                cancelErr.set(e);
            }
        });
        canceller.start();
        long start = System.nanoTime();
        try {
            st.executeQuery("SELECT pg_sleep(30)");
            p("not cancelled");
        } catch (SQLException e) {
            long ms = (System.nanoTime() - start) / 1000000;
            printError("cancelled", e);
            p("cancelled within 5s=" + (ms < 5000));
        }
        canceller.join();
        if (cancelErr.get() != null) {
            p("canceller failed: " + cancelErr.get());
        }
        st.close();
        query(c, "SELECT 'usable after cancel' AS status");
    }
}
