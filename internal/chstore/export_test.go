package chstore

// RestartReplica is what SettleDoubt does to a table whose parts in doubt
// it detaches.
var RestartReplica = restartReplica
