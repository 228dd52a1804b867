// The daemon's files see the system module (Sys, Blocking, ConfigLoader) and
// the IdP client (IdPClient, HTTPClient, TokenVerifier) without importing them.
@_exported import FedloginOIDC
@_exported import FedloginSystem
