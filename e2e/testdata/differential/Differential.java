import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;

/**
 * The pgjdbc side of pgrollup's differential suite (e2e/differential_clients_test.go).
 * It runs statements the way Metabase and Tableau do and prints a canonical text of
 * what the driver reports; the Go test runs it against Postgres and through pgrollup
 * and requires the same text. Usage:
 * java -cp postgresql.jar:. Differential JDBC_URL USER PASSWORD STATEMENTS_FILE
 *
 * Each line of the file is: time zone, TAB, 1 if the statement's ORDER BY is total
 * (else its rows are printed sorted), TAB, the statement in base64.
 *
 * Each statement runs once through a Statement (unnamed extended-protocol statement,
 * text results) and six times through one PreparedStatement: from the fifth execution
 * (prepareThreshold) pgjdbc uses a named server-side statement and binary results for
 * the types it reads in binary. Every distinct rendering is printed.
 */
public class Differential {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "disable");
        props.setProperty("ApplicationName", "e2e-differential");
        List<String> lines = Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8);
        Connection c = DriverManager.getConnection(args[0], props);
        try {
            String zone = "";
            int n = 0;
            for (String line : lines) {
                if (c.isClosed()) {
                    // The server side went away (a crash): say so, and go on
                    // with a new connection so the rest is still compared.
                    System.out.println("connection lost; reconnecting");
                    c = reconnect(args[0], props);
                    zone = "";
                }
                if (line.isEmpty()) {
                    continue;
                }
                String[] f = line.split("\t");
                String sql = new String(Base64.getDecoder().decode(f[2]), StandardCharsets.UTF_8);
                boolean ordered = f[1].equals("1");
                n++;
                if (!f[0].equals(zone)) {
                    zone = f[0];
                    try (Statement st = c.createStatement()) {
                        st.execute("SET TIME ZONE '" + zone + "'");
                    }
                }
                System.out.println("== " + n + " " + zone);
                String plain;
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
                    plain = render(rs, ordered);
                } catch (SQLException e) {
                    plain = "error " + e.getSQLState() + ": " + e.getMessage() + "\n";
                }
                System.out.print("statement:\n" + plain);
                List<String> seen = new ArrayList<>();
                List<String> seenRounded = new ArrayList<>();
                if (c.isClosed()) {
                    continue;
                }
                try (PreparedStatement ps = c.prepareStatement(sql)) {
                    for (int i = 1; i <= 6; i++) {
                        String out;
                        try (ResultSet rs = ps.executeQuery()) {
                            out = render(rs, ordered);
                        } catch (SQLException e) {
                            out = "error " + e.getSQLState() + ": " + e.getMessage() + "\n";
                        }
                        // Floats may differ in their last bits from one execution
                        // to the next (DESIGN.md 4): a rendering counts as new
                        // only if it differs with floats rounded.
                        String rounded = roundFloats(out);
                        if (!seenRounded.contains(rounded)) {
                            seenRounded.add(rounded);
                            seen.add(out);
                            System.out.print("prepared, execution " + i + ":\n" + out);
                        }
                    }
                }
            }
            System.out.println("== end " + n);
        } finally {
            c.close();
        }
    }

    static Connection reconnect(String url, Properties props) throws Exception {
        SQLException last = null;
        for (int i = 0; i < 120; i++) {
            try {
                return DriverManager.getConnection(url, props);
            } catch (SQLException e) {
                last = e;
                Thread.sleep(500);
            }
        }
        throw last;
    }

    static final java.util.regex.Pattern FLOAT = java.util.regex.Pattern.compile("(Double|Float):([-0-9.E]+)");

    static String roundFloats(String s) {
        java.util.regex.Matcher m = FLOAT.matcher(s);
        StringBuffer sb = new StringBuffer();
        while (m.find()) {
            double v = Double.parseDouble(m.group(2));
            if (v == 0) {
                v = 0.0; // -0.0 rounds with 0.0: which zero a float aggregate ends on is order's
            }
            String r = String.format("%.6g", v);
            m.appendReplacement(sb, m.group(1) + ":" + r);
        }
        m.appendTail(sb);
        return sb.toString();
    }

    // sortKey orders unordered rows by their exact values first and their
    // floats (rounded, zeros unsigned) last, so that rows whose floats differ
    // in their last bits or in the sign of a zero still pair up: rounding
    // alone would split values on either side of a rounding boundary.
    static String sortKey(String row) {
        return FLOAT.matcher(row).replaceAll("$1:?") + "\n" + roundFloats(row);
    }

    static String render(ResultSet rs, boolean ordered) throws SQLException {
        StringBuilder sb = new StringBuilder();
        ResultSetMetaData md = rs.getMetaData();
        int n = md.getColumnCount();
        sb.append("cols");
        for (int i = 1; i <= n; i++) {
            sb.append(" | ").append(md.getColumnLabel(i)).append(' ').append(md.getColumnTypeName(i))
                .append('/').append(md.getColumnType(i)).append(" p=").append(md.getPrecision(i))
                .append(" s=").append(md.getScale(i)).append(" nullable=").append(md.isNullable(i))
                .append(" class=").append(md.getColumnClassName(i))
                .append(" table=").append(md.getTableName(i)).append('.').append(md.getColumnName(i));
        }
        sb.append('\n');
        List<String> rows = new ArrayList<>();
        while (rs.next()) {
            StringBuilder row = new StringBuilder("row");
            for (int i = 1; i <= n; i++) {
                Object o = rs.getObject(i);
                String v;
                if (o == null) {
                    v = "NULL";
                } else if (o instanceof Double || o instanceof Float) {
                    // Every digit; the Go side compares floats with the
                    // tolerance of DESIGN.md 4.
                    v = o.getClass().getSimpleName() + ":" + o;
                } else {
                    v = o.getClass().getSimpleName() + ":" + rs.getString(i);
                }
                row.append(" | ").append(v);
            }
            rows.add(row.toString());
        }
        if (!ordered) {
            rows.sort(java.util.Comparator.comparing(Differential::sortKey)
                .thenComparing(java.util.Comparator.naturalOrder()));
        }
        for (String r : rows) {
            sb.append(r).append('\n');
        }
        sb.append("rows=").append(rows.size()).append('\n');
        return sb.toString();
    }
}
