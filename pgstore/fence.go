package pgstore

import "github.com/jackc/pgx/v5"

// Fence implements queue.Tx: the check of the lease (fenceSQL, which holds
// the lease's row FOR SHARE until the commit, so a takeover waits for this
// transaction and sees what it wrote) is queued with the transaction's next
// statements and costs no round trip of its own. A fenced transaction
// fails at its next read or at its COMMIT with ErrFenced (queue.ErrFenced)
// and writes nothing. The dispatcher's writes call it first (see
// groups.Ledger.Fenced).
func (t *txn) Fence(epoch uint64) error {
	if err := t.writable(); err != nil {
		return err
	}
	if t.err != nil {
		return t.err
	}
	e := int64(epoch)
	t.b.Queue(fenceSQL, t.tenant, e).QueryRow(func(row pgx.Row) error {
		var one int
		return fenceResult(t.tenant, e, row.Scan(&one))
	})
	return nil
}
