"""The command line: `benchkit` and its subcommands (one module each under `commands/`), and the console tables `run` prints."""
