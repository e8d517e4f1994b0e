package agent

// TLSPrincipal exposes tlsPrincipal to the black-box tests.
var TLSPrincipal = tlsPrincipal
