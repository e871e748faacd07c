"""The procctl agent: definitions, expressions, the engine, tasks and the daemon."""

VERSION = "0.1.0"
