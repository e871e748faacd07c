"""The engine: executes an instance of a definition step by step."""
