package builds

import "github.com/pgrollup/pgrollup/rollup"

// idleStatus is the status of a state with no build running.
func idleStatus(st *rollup.State) rollup.Status {
	switch {
	case st.Building != nil:
		return rollup.StatusBuilding
	case st.Active == nil && st.LastError != "" && st.LastBroken() != nil && st.LastBroken().Kind == rollup.KindMismatch:
		// A verified mismatch took the version out of service: quarantined
		// until the rebuild starts.
		return rollup.StatusQuarantined
	case !st.QueuedAt.IsZero() && st.Active == nil && st.LastError != "" && st.LastBroken() != nil:
		// A broken file took the version out of service: failed, not pending,
		// until the rebuild starts.
		return rollup.StatusFailed
	case !st.QueuedAt.IsZero() && st.Active == nil:
		return rollup.StatusPending
	case !st.QueuedAt.IsZero():
		return rollup.StatusStale
	case st.LastError != "":
		return rollup.StatusFailed
	case st.Active != nil:
		return rollup.StatusActive
	}
	return rollup.StatusPending
}
