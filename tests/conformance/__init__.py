"""The conformance suite every venue adapter passes (README: "Conformance")."""
