package postgres

// EventBatchRow is how many creation events a bulk page writes to one
// change_events row.
const EventBatchRow = eventBatchRow

// RelaxCommit is the statement that lets an implicit transaction commit
// without waiting for the disk.
const RelaxCommit = relaxCommit
