package sqlstate

// SQLSTATE codes (Postgres's errcodes.txt), by class.
const (
	// Class 08: connection exception.
	ConnectionFailure                             = "08006"
	SQLClientUnableToEstablishSQLConnection       = "08001"
	SQLServerRejectedEstablishmentOfSQLConnection = "08004"
	ProtocolViolation                             = "08P01"

	// Class 0A: feature not supported.
	FeatureNotSupported = "0A000"

	// Class 22: data exception.
	InvalidParameterValue = "22023"

	// Class 25: invalid transaction state.
	InFailedSQLTransaction = "25P02"

	// Class 26: invalid SQL statement name (such as an unknown prepared
	// statement).
	InvalidSQLStatementName = "26000"

	// Class 28: invalid authorization specification.
	InvalidAuthorizationSpecification = "28000"
	InvalidPassword                   = "28P01"

	// Class 42: syntax error or access rule violation.
	InsufficientPrivilege      = "42501"
	UndefinedTable             = "42P01"
	DuplicatePreparedStatement = "42P05"

	// Class 53: insufficient resources.
	TooManyConnections = "53300"

	// Class 54: program limit exceeded.
	StatementTooComplex = "54001"

	// Class 57: operator intervention.
	QueryCanceled    = "57014"
	AdminShutdown    = "57P01"
	CrashShutdown    = "57P02"
	CannotConnectNow = "57P03"

	// Class XX: internal error.
	InternalError = "XX000"
)

// SQLSTATE classes: the first two characters of a code.
const (
	ClassFeatureNotSupported                = "0A"
	ClassCardinalityViolation               = "21"
	ClassDataException                      = "22"
	ClassSQLRoutineException                = "2F"
	ClassExternalRoutineException           = "38"
	ClassExternalRoutineInvocationException = "39"
	ClassSyntaxErrorOrAccessRuleViolation   = "42"
)

// Class is the class of code: its first two characters, or "" when code is
// not a SQLSTATE (five characters).
func Class(code string) string {
	if len(code) != 5 {
		return ""
	}
	return code[:2]
}
