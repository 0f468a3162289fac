package routing

import (
	"context"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Continuous verification of lambda hits (docs/freshness.md,
// "Verification"). A lambda rollup claims to be exact below its version's
// cutoff, whatever happens above it, so its part of an answer is checked
// there and nowhere else: the partial core's rows from the rollup again,
// against the warehouse's own partial core over the rows below the cutoff.
// The modification counters play no part (the rows above the cutoff move
// them all the time); any difference is a row below the cutoff that changed
// or arrived after the build, which the version no longer holds.

// verifyLambda offers a lambda hit, the partial core sql answered from d in
// snapshot snap, to the Verifier; below writes the same partial core over
// the warehouse's rows below a cutoff (rewrite.LambdaCore.BelowCutoff, or
// rewrite.EdgeSplit.BelowCutoff for the whole buckets of a split at edges).
func (r *Router) verifyLambda(snap *snapshot, sql string, d *rewrite.Decision, sess *proxy.SessionInfo, below func(table, column, cutoff string) (string, error)) {
	if r.opts.Verify == nil || r.opts.Verify.sampling() <= 0 {
		return
	}
	name := d.Rollup
	job := func() (string, error) {
		cut, err := snap.cutOf(name)
		if err != nil {
			return "", err
		}
		return below(cut.table, cut.column, cut.literal)
	}
	r.opts.Verify.sample(d, sql, nil, sess, nil, r.verifyView(sess), job)
}

// checkBelow checks a lambda hit below its version's cutoff.
func (v *Verifier) checkBelow(ctx context.Context, j *verifyJob) (result, detail string) {
	sql, err := j.below()
	if err != nil {
		return verifySkipped, err.Error()
	}
	want, err := v.rollupRows(ctx, j)
	if err != nil {
		return verifySkipped, err.Error()
	}
	below := *j
	below.sql = sql
	got, _, err := v.warehouseRows(ctx, &below, nil, nil)
	if err != nil {
		return verifySkipped, err.Error()
	}
	if diff := compareRows(want, got, j.decision.Columns, false); diff != "" {
		return verifyMismatch, "below the cutoff: " + diff
	}
	return verifyMatch, ""
}
