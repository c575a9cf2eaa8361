package postgres

// EventBatchRow is how many creation events a bulk page writes to one
// change_events row.
const EventBatchRow = eventBatchRow
