// The daemon's files see the system module (Sys, Blocking) without importing it.
@_exported import FedloginSystem
