"""HTTP routes, one module per resource group, assembled in api.main."""
