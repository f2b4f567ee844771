"""Who may do what: API tokens with scopes (users and roles come with the portal)."""
