"""The ``custodia`` command line: thin typer wrappers; nothing imports this package."""
